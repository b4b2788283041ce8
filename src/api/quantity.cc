#include "podium/api/quantity.h"

#include <cmath>
#include <cstdlib>

namespace podium::api {

std::optional<double> parseQuantity(const std::string& text) {
  if (text.empty()) return std::nullopt;
  size_t i = 0;
  if (text[i] == '+' || text[i] == '-') ++i;
  size_t digits = i;
  while (i < text.size() && (isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == digits) return std::nullopt;
  char* end = nullptr;
  std::string number = text.substr(0, i);
  double v = std::strtod(number.c_str(), &end);
  if (!end || *end != 0) return std::nullopt;
  std::string suffix = text.substr(i);
  static const struct {
    const char* s;
    double m;
  } kSuffixes[] = {{"", 1},
                   {"n", 1e-9},
                   {"u", 1e-6},
                   {"m", 1e-3},
                   {"k", 1e3},
                   {"M", 1e6},
                   {"G", 1e9},
                   {"T", 1e12},
                   {"P", 1e15},
                   {"E", 1e18},
                   {"Ki", 1024.0},
                   {"Mi", 1048576.0},
                   {"Gi", 1073741824.0},
                   {"Ti", 1099511627776.0},
                   {"Pi", 1125899906842624.0},
                   {"Ei", 1152921504606846976.0}};
  for (const auto& s : kSuffixes)
    if (suffix == s.s) return v * s.m;
  if (!suffix.empty() && (suffix[0] == 'e' || suffix[0] == 'E')) {
    char* e2 = nullptr;
    long exp = std::strtol(suffix.c_str() + 1, &e2, 10);
    if (e2 && *e2 == 0) return v * std::pow(10.0, static_cast<double>(exp));
  }
  return std::nullopt;
}

int64_t milliValue(const Json& q) {
  std::optional<double> v;
  if (q.is_number())
    v = q.get<double>();
  else if (q.is_string())
    v = parseQuantity(q.get<std::string>());
  return v ? static_cast<int64_t>(std::ceil(*v * 1000.0 - 1e-9)) : 0;
}

int64_t value(const Json& q) {
  std::optional<double> v;
  if (q.is_number())
    v = q.get<double>();
  else if (q.is_string())
    v = parseQuantity(q.get<std::string>());
  return v ? static_cast<int64_t>(std::ceil(*v - 1e-9)) : 0;
}

}  // namespace podium::api
