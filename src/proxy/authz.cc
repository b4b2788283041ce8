#include "authz.h"

#include "podium/common/net.h"
#include "podium/common/strings.h"

namespace podium::proxy {

namespace {

using json::at;

std::vector<std::string> stringList(const Json& list) {
  std::vector<std::string> out;
  if (!list.is_array()) return out;
  for (const auto& v : list)
    if (v.is_string())
      out.push_back(v.get<std::string>());
    else if (v.is_number_integer())
      out.push_back(std::to_string(v.get<int64_t>()));
  return out;
}

// Istio's string match: exact, "prefix*", "*suffix", or "*" for any non-empty value.
bool glob(const std::string& pattern, const std::string& value) {
  if (pattern == "*") return !value.empty();
  if (!pattern.empty() && pattern.back() == '*')
    return value.rfind(pattern.substr(0, pattern.size() - 1), 0) == 0;
  if (!pattern.empty() && pattern.front() == '*')
    return value.size() >= pattern.size() - 1 &&
           value.compare(value.size() - (pattern.size() - 1), pattern.size() - 1,
                         pattern.substr(1)) == 0;
  return pattern == value;
}

bool inCidr(const std::string& cidr, uint32_t ip) {
  auto range = net::Cidr::parse(cidr);
  return range && range->contains(ip);
}

}  // namespace

void AuthzPolicies::build(const Json& snapshot, const std::string& rootNamespace) {
  root_ = rootNamespace;
  auto values = [](const Json& obj, const char* field) {
    Values v;
    std::string notField =
        std::string("not") + static_cast<char>(std::toupper(field[0])) + (field + 1);
    v.present = obj.contains(field) || obj.contains(notField);
    v.in = stringList(at(obj, {field}));
    v.notIn = stringList(at(obj, {notField}));
    return v;
  };
  for (const auto& ap : at(snapshot, {"authorizationPolicies"})) {
    Policy p;
    p.ns = json::getString(ap, {"metadata", "namespace"});
    p.name = json::getString(ap, {"metadata", "name"});
    const Json& spec = at(ap, {"spec"});
    if (const Json& sel = at(spec, {"selector", "matchLabels"}); sel.is_object()) {
      std::map<std::string, std::string> m;
      for (const auto& [k, v] : sel.items())
        if (v.is_string()) m[k] = v.get<std::string>();
      p.selector = std::move(m);
    }
    std::string action = json::str(spec, "action", "ALLOW");
    p.action = action == "DENY"     ? Policy::Action::Deny
               : action == "AUDIT"  ? Policy::Action::Audit
               : action == "CUSTOM" ? Policy::Action::Custom
                                    : Policy::Action::Allow;
    for (const auto& r : at(spec, {"rules"})) {
      Rule rule;
      for (const auto& f : at(r, {"from"})) {
        const Json& s = at(f, {"source"});
        rule.from.push_back(
            {values(s, "principals"), values(s, "namespaces"), values(s, "ipBlocks")});
      }
      for (const auto& t : at(r, {"to"})) {
        const Json& o = at(t, {"operation"});
        rule.to.push_back(
            {values(o, "hosts"), values(o, "ports"), values(o, "methods"), values(o, "paths")});
      }
      for (const auto& w : at(r, {"when"})) {
        Condition c{json::str(w, "key"), values(w, "values")};
        rule.when.push_back(std::move(c));
      }
      p.rules.push_back(std::move(rule));
    }
    policies_.push_back(std::move(p));
  }
}

bool AuthzPolicies::applies(const Policy& p, const std::string& ns,
                            const std::map<std::string, std::string>& labels) const {
  if (p.ns != ns && p.ns != root_) return false;
  if (!p.selector) return true;
  for (const auto& [k, v] : *p.selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

bool AuthzPolicies::matches(const Rule& rule, const AuthzRequest& r) {
  // One field: the value must match one of `in` (when given) and none of `notIn`.
  auto field = [](const Values& v, const auto& match) {
    if (!v.present) return true;
    if (!v.in.empty()) {
      bool any = false;
      for (const auto& x : v.in) any = any || match(x);
      if (!any) return false;
    }
    for (const auto& x : v.notIn)
      if (match(x)) return false;
    return true;
  };
  auto str = [](const std::string& value) {
    return [&value](const std::string& pattern) { return glob(pattern, value); };
  };
  std::string port = std::to_string(r.destinationPort);
  if (!rule.from.empty()) {
    bool any = false;
    for (const auto& s : rule.from) {
      any = any || (field(s.principals, str(r.sourcePrincipal)) &&
                    field(s.namespaces, str(r.sourceNamespace)) &&
                    field(s.ipBlocks, [&](const std::string& c) { return inCidr(c, r.sourceIp); }));
    }
    if (!any) return false;
  }
  if (!rule.to.empty()) {
    bool any = false;
    for (const auto& o : rule.to) {
      // HTTP-only fields never match a TCP connection (Istio's rule).
      if (!r.http && (o.hosts.present || o.methods.present || o.paths.present)) continue;
      std::string host = strings::toLower(r.host.substr(0, r.host.rfind(':')));
      any = any || (field(o.hosts,
                          [&](const std::string& h) {
                            return glob(strings::toLower(h), host) ||
                                   glob(strings::toLower(h), strings::toLower(r.host));
                          }) &&
                    field(o.ports, str(port)) && field(o.methods, str(r.method)) &&
                    field(o.paths, str(r.path)));
    }
    if (!any) return false;
  }
  for (const auto& c : rule.when) {
    std::string value;
    bool known = true;
    if (c.key.rfind("request.headers[", 0) == 0 && c.key.back() == ']') {
      if (!r.http || !r.head) return false;
      std::string name = c.key.substr(16, c.key.size() - 17);
      if (!r.head->has(name)) return false;
      value = r.head->header(name);
    } else if (c.key == "source.ip" || c.key == "remote.ip") {
      if (!field(c.values, [&](const std::string& x) { return inCidr(x, r.sourceIp); }))
        return false;
      continue;
    } else if (c.key == "source.namespace") {
      value = r.sourceNamespace;
    } else if (c.key == "source.principal") {
      value = r.sourcePrincipal;
    } else if (c.key == "destination.port") {
      value = port;
    } else {
      known = false;  // request.auth.*, experimental keys: unsupported, so never matched
    }
    if (!known || !field(c.values, str(value))) return false;
  }
  return true;
}

bool AuthzPolicies::allowed(const std::string& ns, const std::map<std::string, std::string>& labels,
                            const AuthzRequest& r, std::string* policy) const {
  bool anyAllow = false;
  const Policy* allowedBy = nullptr;
  for (const auto& p : policies_) {
    if (!applies(p, ns, labels)) continue;
    bool hit = false;
    for (const auto& rule : p.rules) hit = hit || matches(rule, r);
    switch (p.action) {
      case Policy::Action::Deny:
        if (hit) {
          if (policy) *policy = p.ns + "/" + p.name;
          return false;
        }
        break;
      case Policy::Action::Allow:
        anyAllow = true;
        if (hit && !allowedBy) allowedBy = &p;
        break;
      case Policy::Action::Custom:  // an external authorizer we do not have: fail closed
        if (policy) *policy = p.ns + "/" + p.name;
        return false;
      case Policy::Action::Audit:
        break;
    }
  }
  if (policy) *policy = allowedBy ? allowedBy->ns + "/" + allowedBy->name : "";
  return !anyAllow || allowedBy;
}

}  // namespace podium::proxy
