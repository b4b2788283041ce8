#include "podium/api/aggregated.h"

#include "podium/common/strings.h"

namespace podium::api {

bool parseAggregatedPath(const std::string& target, AggregatedPath* out) {
  auto q = target.find('?');
  std::string path = target.substr(0, q);
  std::vector<std::string> parts;
  for (auto& s : strings::split(path, '/'))
    if (!s.empty()) parts.push_back(strings::urlDecode(s, false));
  if (parts.size() < 4 || parts[0] != "apis") return false;
  out->group = parts[1];
  out->version = parts[2];
  out->rest.clear();
  for (size_t i = 3; i < parts.size(); ++i) out->rest += (i > 3 ? "/" : "") + parts[i];
  out->query = {};
  if (q == std::string::npos) return true;
  for (const auto& kv : strings::split(target.substr(q + 1), '&')) {
    auto eq = kv.find('=');
    std::string key = strings::urlDecode(kv.substr(0, eq), true);
    std::string value = eq == std::string::npos ? "" : strings::urlDecode(kv.substr(eq + 1), true);
    if (key == "labelSelector") out->query.labelSelector = value;
    if (key == "fieldSelector") out->query.fieldSelector = value;
    if (key == "metricLabelSelector") out->query.metricLabelSelector = value;
    if (key == "limit") out->query.limit = strings::parseInt(value).value_or(-1);
  }
  return true;
}

}  // namespace podium::api
