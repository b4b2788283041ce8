#include "util.h"

#include <cmath>

#include "podium/common/strings.h"

namespace podium::controllers {

namespace {
// Drops the hash label and null/empty creationTimestamp so templates compare as the user wrote
// them.
Json normalizeTemplate(const Json& t) {
  Json out = t.is_object() ? t : Json::object();
  if (out.contains("metadata") && out["metadata"].is_object()) {
    Json& m = out["metadata"];
    if (m.contains("labels") && m["labels"].is_object()) {
      m["labels"].erase("pod-template-hash");
      if (m["labels"].empty()) m.erase("labels");
    }
    m.erase("creationTimestamp");
    if (m.empty()) out.erase("metadata");
  }
  return out;
}
}  // namespace

std::string templateHash(const Json& podTemplate, int64_t collisionCount) {
  std::string text = json::dump(normalizeTemplate(podTemplate));
  uint32_t h = 2166136261u;
  for (unsigned char c : text) {
    h ^= c;
    h *= 16777619u;
  }
  if (collisionCount > 0) {
    for (int i = 0; i < 8; ++i) {
      h ^= static_cast<uint8_t>(collisionCount >> (i * 8));
      h *= 16777619u;
    }
  }
  // rand.SafeEncodeString: every digit of the decimal hash mapped to a consonant or digit.
  static const char* alphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string digits = std::to_string(h), out;
  for (char d : digits) out.push_back(alphabet[(d - '0') % 27]);
  return out;
}

bool equalIgnoringHash(const Json& a, const Json& b) {
  return normalizeTemplate(a) == normalizeTemplate(b);
}

int64_t resolveIntOrPercent(const Json& value, int64_t total, bool roundUp, int64_t dflt) {
  if (value.is_number_integer()) return value.get<int64_t>();
  if (!value.is_string()) return dflt;
  std::string s = value.get<std::string>();
  if (s.empty()) return dflt;
  if (s.back() == '%') {
    auto pct = strings::parseInt(s.substr(0, s.size() - 1));
    if (!pct) return dflt;
    double v = static_cast<double>(*pct) * static_cast<double>(total) / 100.0;
    return static_cast<int64_t>(roundUp ? std::ceil(v) : std::floor(v));
  }
  return strings::parseInt(s).value_or(dflt);
}

std::string jobFinishedAs(const Json& job) {
  for (const char* t : {"Complete", "Failed"}) {
    const Json* c = findCondition(job, t);
    if (c && json::str(*c, "status") == "True") return t;
  }
  return "";
}

Json podFromTemplate(const Json& owner, const Json& podTemplate) {
  Json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}};
  Json meta = podTemplate.is_object() && podTemplate.contains("metadata") &&
                      podTemplate["metadata"].is_object()
                  ? podTemplate["metadata"]
                  : Json::object();
  meta.erase("name");
  meta.erase("creationTimestamp");
  meta["generateName"] = nameOf(owner) + "-";
  meta["namespace"] = namespaceOf(owner);
  meta["ownerReferences"] = Json::array({controllerRef(owner)});
  pod["metadata"] = meta;
  pod["spec"] = podTemplate.is_object() && podTemplate.contains("spec") ? podTemplate["spec"]
                                                                        : Json::object();
  return pod;
}

std::optional<int64_t> argoDurationSeconds(const Json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (!v.is_string() || v.get<std::string>().empty()) return std::nullopt;
  std::string s = v.get<std::string>();
  int64_t unit = 1;
  if (s.back() == 's' || s.back() == 'm' || s.back() == 'h') {
    unit = s.back() == 'h' ? 3600 : s.back() == 'm' ? 60 : 1;
    s.pop_back();
  }
  auto n = strings::parseInt(s);
  if (!n || *n < 0) return std::nullopt;
  return *n * unit;
}

}  // namespace podium::controllers
