#include "podium/mesh/routes.h"

#include <re2/re2.h>
#include <algorithm>
#include <cctype>

#include "podium/common/strings.h"
#include "podium/common/time.h"

namespace podium::mesh {

namespace {

using json::at;

std::string lower(const std::string& s) { return strings::toLower(s); }

// Istio resolves short host names against the resource's namespace.
std::string resolveHost(const std::string& host, const std::string& ns, const std::string& domain) {
  std::string h = lower(host);
  if (h.find('*') != std::string::npos) return h;
  if (h.find('.') == std::string::npos) return h + "." + ns + ".svc." + domain;
  if (h.size() > 4 && h.compare(h.size() - 4, 4, ".svc") == 0) return h + "." + domain;
  return h;
}

std::string gatewayRef(const std::string& g, const std::string& ns) {
  if (g == "mesh") return g;
  return g.find('/') == std::string::npos ? ns + "/" + g : g;
}

double percentOf(const Json& obj, double dflt) {
  if (const Json* p = json::find(obj, {"percentage", "value"}); p && p->is_number())
    return p->get<double>();
  if (const Json* p = json::find(obj, {"percent"}); p && p->is_number()) return p->get<double>();
  return dflt;
}

HeaderOps headerOps(const Json& h) {
  HeaderOps ops;
  for (const auto& [k, v] : at(h, {"set"}).items())
    if (v.is_string()) ops.set.emplace_back(k, v.get<std::string>());
  for (const auto& [k, v] : at(h, {"add"}).items())
    if (v.is_string()) ops.add.emplace_back(k, v.get<std::string>());
  for (const auto& r : at(h, {"remove"}))
    if (r.is_string()) ops.remove.push_back(lower(r.get<std::string>()));
  return ops;
}

RouteDestination destination(const Json& d, const std::string& ns, const std::string& domain) {
  RouteDestination out;
  out.host = resolveHost(json::getString(d, {"destination", "host"}), ns, domain);
  out.subset = json::getString(d, {"destination", "subset"});
  out.port = static_cast<uint16_t>(json::integer(at(d, {"destination", "port"}), "number"));
  out.weight = json::integer(d, "weight", 0);
  out.requestHeaders = headerOps(at(d, {"headers", "request"}));
  out.responseHeaders = headerOps(at(d, {"headers", "response"}));
  return out;
}

HttpMatch match(const Json& m) {
  HttpMatch out;
  out.uri = StringMatch::from(at(m, {"uri"}));
  out.scheme = StringMatch::from(at(m, {"scheme"}));
  out.method = StringMatch::from(at(m, {"method"}));
  out.authority = StringMatch::from(at(m, {"authority"}));
  for (const auto& [k, v] : at(m, {"headers"}).items())
    out.headers.emplace_back(lower(k), StringMatch::from(v));
  for (const auto& [k, v] : at(m, {"withoutHeaders"}).items())
    out.withoutHeaders.push_back(lower(k));
  for (const auto& [k, v] : at(m, {"queryParams"}).items())
    out.queryParams.emplace_back(k, StringMatch::from(v));
  out.port = static_cast<uint16_t>(json::integer(m, "port"));
  for (const auto& g : at(m, {"gateways"}))
    if (g.is_string()) out.gateways.push_back(g.get<std::string>());
  for (const auto& [k, v] : at(m, {"sourceLabels"}).items())
    if (v.is_string()) out.sourceLabels[k] = v.get<std::string>();
  out.sourceNamespace = json::str(m, "sourceNamespace");
  out.ignoreUriCase = json::boolean(m, "ignoreUriCase");
  return out;
}

TrafficPolicy policy(const Json& p, const TrafficPolicy& base) {
  TrafficPolicy t = base;
  if (!p.is_object()) return t;
  std::string tls = json::getString(p, {"tls", "mode"});
  if (tls == "DISABLE") t.plaintext = true;
  if (tls == "ISTIO_MUTUAL") t.plaintext = false;
  const Json& lb = at(p, {"loadBalancer"});
  std::string simple = json::str(lb, "simple");
  if (simple == "LEAST_REQUEST" || simple == "LEAST_CONN")
    t.lb = TrafficPolicy::Lb::LeastRequest;
  else if (simple == "RANDOM")
    t.lb = TrafficPolicy::Lb::Random;
  else if (simple == "ROUND_ROBIN")
    t.lb = TrafficPolicy::Lb::RoundRobin;
  if (const Json* ch = json::find(lb, {"consistentHash"}); ch && ch->is_object()) {
    t.lb = TrafficPolicy::Lb::ConsistentHash;
    t.hashHeader = lower(json::str(*ch, "httpHeaderName"));
    t.hashCookie = json::getString(*ch, {"httpCookie", "name"});
    t.hashSourceIp = json::boolean(*ch, "useSourceIp");
  }
  const Json& pool = at(p, {"connectionPool"});
  if (const Json* v = json::find(pool, {"tcp", "maxConnections"}); v && v->is_number_integer())
    t.maxConnections = static_cast<int>(std::max<int64_t>(1, v->get<int64_t>()));
  if (auto d = parseDuration(json::getString(pool, {"tcp", "connectTimeout"})))
    t.connectTimeoutMs = *d;
  if (const Json* v = json::find(pool, {"http", "http1MaxPendingRequests"});
      v && v->is_number_integer())
    t.maxPendingRequests = static_cast<int>(std::max<int64_t>(1, v->get<int64_t>()));
  if (const Json* v = json::find(pool, {"http", "http2MaxRequests"}); v && v->is_number_integer())
    t.maxRequests = static_cast<int>(std::max<int64_t>(1, v->get<int64_t>()));
  if (const Json* v = json::find(pool, {"http", "maxRequestsPerConnection"});
      v && v->is_number_integer())
    t.maxRequestsPerConnection = static_cast<int>(v->get<int64_t>());
  const Json& od = at(p, {"outlierDetection"});
  if (od.is_object()) {
    t.outlier = true;
    t.consecutive5xx = static_cast<int>(json::integer(od, "consecutive5xxErrors", 5));
    t.consecutiveGatewayErrors = static_cast<int>(
        json::integer(od, "consecutiveGatewayErrors", json::integer(od, "consecutiveErrors", 0)));
    if (auto d = parseDuration(json::str(od, "interval"))) t.intervalMs = *d;
    if (auto d = parseDuration(json::str(od, "baseEjectionTime"))) t.baseEjectionMs = *d;
    t.maxEjectionPercent = static_cast<int>(json::integer(od, "maxEjectionPercent", 10));
  }
  return t;
}

HttpRoute route(const Json& r, const std::string& ns, const std::string& domain) {
  HttpRoute out;
  out.name = json::str(r, "name");
  for (const auto& m : at(r, {"match"})) out.match.push_back(match(m));
  for (const auto& d : at(r, {"route"})) out.route.push_back(destination(d, ns, domain));
  // A single destination without a weight gets all the traffic.
  if (out.route.size() == 1 && out.route[0].weight == 0) out.route[0].weight = 100;
  if (r.contains("redirect") && r["redirect"].is_object()) out.redirect = r["redirect"];
  if (const Json& dr = at(r, {"directResponse"}); dr.is_object()) {
    std::string body = json::getString(dr, {"body", "string"});
    if (body.empty())
      body = strings::base64Decode(json::getString(dr, {"body", "bytes"})).value_or("");
    out.directResponse = std::make_pair(static_cast<int>(json::integer(dr, "status", 200)), body);
  }
  if (const Json& rw = at(r, {"rewrite"}); rw.is_object()) {
    if (rw.contains("uri")) out.rewriteUri = json::str(rw, "uri");
    if (rw.contains("authority")) out.rewriteAuthority = json::str(rw, "authority");
  }
  if (auto d = parseDuration(json::str(r, "timeout"))) out.timeoutMs = *d;
  if (const Json& rt = at(r, {"retries"}); rt.is_object()) {
    out.retries.attempts = static_cast<int>(json::integer(rt, "attempts", 0));
    if (auto d = parseDuration(json::str(rt, "perTryTimeout"))) out.retries.perTryTimeoutMs = *d;
    if (rt.contains("retryOn")) {
      out.retries.retryOn.clear();
      for (const auto& t : strings::split(json::str(rt, "retryOn"), ',')) {
        std::string tok = std::string(strings::trim(t));
        if (auto code = strings::parseInt(tok)) {
          out.retries.statusCodes.insert(static_cast<int>(*code));
          out.retries.retryOn.insert("retriable-status-codes");
        } else if (!tok.empty()) {
          out.retries.retryOn.insert(tok);
        }
      }
    }
  }
  if (const Json& f = at(r, {"fault"}); f.is_object()) {
    if (const Json& d = at(f, {"delay"}); d.is_object()) {
      out.delayPercent = percentOf(d, 100);
      out.delayMs = parseDuration(json::str(d, "fixedDelay")).value_or(0);
    }
    if (const Json& a = at(f, {"abort"}); a.is_object()) {
      out.abortPercent = percentOf(a, 100);
      out.abortStatus = static_cast<int>(json::integer(a, "httpStatus", 503));
    }
  }
  out.requestHeaders = headerOps(at(r, {"headers", "request"}));
  out.responseHeaders = headerOps(at(r, {"headers", "response"}));
  if (const Json& m = at(r, {"mirror"}); m.is_object()) {
    out.mirror = destination(Json{{"destination", m}}, ns, domain);
    const Json& mp = at(r, {"mirrorPercentage", "value"});
    out.mirrorPercent = mp.is_number() ? mp.get<double>() : 100.0;
  }
  return out;
}

}  // namespace

bool StringMatch::matches(const std::string& s, bool ignoreCase) const {
  switch (kind) {
    case Kind::Exact:
      return ignoreCase ? lower(s) == lower(value) : s == value;
    case Kind::Prefix:
      return ignoreCase ? lower(s).rfind(lower(value), 0) == 0 : s.rfind(value, 0) == 0;
    case Kind::Regex:
      return re && s.size() <= kMaxMatchInput && re2::RE2::FullMatch(s, *re);
  }
  return false;
}

std::optional<StringMatch> StringMatch::from(const Json& m) {
  if (!m.is_object()) return std::nullopt;
  StringMatch out;
  if (m.contains("exact")) {
    out.kind = Kind::Exact;
    out.value = json::str(m, "exact");
  } else if (m.contains("prefix")) {
    out.kind = Kind::Prefix;
    out.value = json::str(m, "prefix");
  } else if (m.contains("regex")) {
    out.kind = Kind::Regex;
    out.value = json::str(m, "regex");
    re2::RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_shared<const re2::RE2>(out.value, options);
    if (re->ok()) out.re = std::move(re);  // else it matches nothing
  } else {
    return std::nullopt;
  }
  return out;
}

std::optional<int64_t> parseDuration(const std::string& d) {
  auto ms = timefmt::parseGoDuration(d);
  if (!ms) return std::nullopt;
  return ms->count();
}

bool hostMatches(const std::string& pattern, const std::string& host) {
  return hostSpecificity(pattern, host) >= 0;
}

int hostSpecificity(const std::string& pattern, const std::string& host) {
  if (pattern == "*") return 0;
  if (pattern.rfind("*.", 0) == 0)
    return host.size() > pattern.size() - 1 &&
                   host.compare(host.size() - (pattern.size() - 1), pattern.size() - 1,
                                pattern.substr(1)) == 0
               ? static_cast<int>(pattern.size())
               : -1;
  return pattern == host ? 100000 : -1;
}

MeshRoutes MeshRoutes::build(const Json& snap, const std::string& domain) {
  MeshRoutes out;
  auto nsOf = [](const Json& o) { return json::getString(o, {"metadata", "namespace"}); };
  auto nameOf = [](const Json& o) { return json::getString(o, {"metadata", "name"}); };
  // Oldest first: Istio resolves conflicting rules by creation time.
  std::vector<const Json*> vss;
  for (const auto& vs : at(snap, {"virtualServices"})) vss.push_back(&vs);
  std::stable_sort(vss.begin(), vss.end(), [](const Json* a, const Json* b) {
    return json::getString(*a, {"metadata", "creationTimestamp"}) <
           json::getString(*b, {"metadata", "creationTimestamp"});
  });
  for (const Json* vsp : vss) {
    const Json& vs = *vsp;
    VirtualService v;
    v.ns = nsOf(vs);
    v.name = nameOf(vs);
    for (const auto& h : at(vs, {"spec", "hosts"}))
      if (h.is_string()) v.hosts.push_back(resolveHost(h.get<std::string>(), v.ns, domain));
    for (const auto& g : at(vs, {"spec", "gateways"}))
      if (g.is_string()) v.gateways.push_back(gatewayRef(g.get<std::string>(), v.ns));
    if (v.gateways.empty()) v.gateways.push_back("mesh");
    for (const auto& r : at(vs, {"spec", "http"})) {
      HttpRoute hr = route(r, v.ns, domain);
      for (auto& m : hr.match)
        for (auto& g : m.gateways) g = gatewayRef(g, v.ns);
      v.http.push_back(std::move(hr));
    }
    out.virtualServices_.push_back(std::move(v));
  }
  for (const auto& dr : at(snap, {"destinationRules"})) {
    DestinationRule d;
    d.ns = nsOf(dr);
    d.name = nameOf(dr);
    d.host = resolveHost(json::getString(dr, {"spec", "host"}), d.ns, domain);
    d.policy = policy(at(dr, {"spec", "trafficPolicy"}), TrafficPolicy{});
    for (const auto& s : at(dr, {"spec", "subsets"})) {
      Subset sub;
      sub.name = json::str(s, "name");
      for (const auto& [k, v] : at(s, {"labels"}).items())
        if (v.is_string()) sub.labels[k] = v.get<std::string>();
      sub.policy = policy(at(s, {"trafficPolicy"}), d.policy);
      d.subsets.push_back(std::move(sub));
    }
    out.rules_.push_back(std::move(d));
  }
  for (const auto& gw : at(snap, {"gateways"})) {
    Gateway g;
    g.ns = nsOf(gw);
    g.name = nameOf(gw);
    for (const auto& s : at(gw, {"spec", "servers"})) {
      GatewayServer srv;
      srv.port = static_cast<uint16_t>(json::integer(at(s, {"port"}), "number"));
      srv.protocol = json::getString(s, {"port", "protocol"});
      for (const auto& h : at(s, {"hosts"})) {
        if (!h.is_string()) continue;
        std::string host = lower(h.get<std::string>());
        if (auto slash = host.find('/'); slash != std::string::npos) host = host.substr(slash + 1);
        srv.hosts.push_back(host);
      }
      srv.tlsMode = json::getString(s, {"tls", "mode"});
      if (const Json* r = json::find(s, {"tls", "httpsRedirect"}); r && r->is_boolean())
        srv.httpsRedirect = r->get<bool>();
      srv.credentialName = json::getString(s, {"tls", "credentialName"});
      g.servers.push_back(std::move(srv));
    }
    out.gateways_.push_back(std::move(g));
  }
  for (const auto& ing : at(snap, {"ingresses"})) {
    std::string ns = nsOf(ing);
    auto backend = [&](const Json& b, IngressPath p) {
      p.ns = ns;
      p.service = json::getString(b, {"service", "name"});
      p.port = static_cast<uint16_t>(json::integer(at(b, {"service", "port"}), "number"));
      p.portName = json::getString(b, {"service", "port", "name"});
      if (!p.service.empty()) out.ingress_.push_back(std::move(p));
    };
    for (const auto& rule : at(ing, {"spec", "rules"}))
      for (const auto& path : at(rule, {"http", "paths"})) {
        IngressPath p;
        p.host = lower(json::str(rule, "host"));
        p.path = json::str(path, "path", "/");
        p.pathType = json::str(path, "pathType", "Prefix");
        backend(at(path, {"backend"}), p);
      }
    if (const Json& d = at(ing, {"spec", "defaultBackend"}); d.is_object()) {
      IngressPath p;
      p.path = "/";
      p.pathType = "Default";
      backend(d, p);
    }
  }
  return out;
}

// Like Envoy's virtual hosts: the exact name wins over the longest wildcard, "*" comes last;
// among equals, the oldest resource.
const VirtualService* MeshRoutes::forMesh(const std::string& fqdn) const {
  const VirtualService* best = nullptr;
  int bestScore = -1;
  for (const auto& v : virtualServices_) {
    if (std::find(v.gateways.begin(), v.gateways.end(), "mesh") == v.gateways.end()) continue;
    for (const auto& h : v.hosts)
      if (int score = hostSpecificity(h, fqdn); score > bestScore) best = &v, bestScore = score;
  }
  return best;
}

const VirtualService* MeshRoutes::forGateway(const std::string& host, bool https,
                                             std::string* gatewayName, bool* httpsRedirect) const {
  const VirtualService* best = nullptr;  // the most specific host, as forMesh
  int bestScore = -1;
  for (const auto& g : gateways_) {
    std::string ref = g.ns + "/" + g.name;
    for (const auto& s : g.servers) {
      // The node's HTTP listener serves every plain-HTTP server, its HTTPS listener every server
      // that terminates TLS, whatever port number the Gateway gives them.
      bool tls = s.protocol == "HTTPS" && (s.tlsMode.empty() || s.tlsMode == "SIMPLE");
      bool plain = s.protocol == "HTTP" || s.protocol == "HTTP2" || s.protocol.empty();
      if (https ? !tls : !plain) continue;
      bool served = false;
      for (const auto& h : s.hosts) served = served || hostMatches(h, host);
      if (!served) continue;
      for (const auto& v : virtualServices_) {
        if (std::find(v.gateways.begin(), v.gateways.end(), ref) == v.gateways.end()) continue;
        for (const auto& h : v.hosts)
          if (int score = hostSpecificity(h, host); score > bestScore) {
            best = &v, bestScore = score;
            if (gatewayName) *gatewayName = ref;
            if (httpsRedirect) *httpsRedirect = s.httpsRedirect;
          }
      }
    }
  }
  return best;
}

const DestinationRule* MeshRoutes::ruleFor(const std::string& fqdn) const {
  const DestinationRule* best = nullptr;
  int bestScore = -1;
  for (const auto& d : rules_)
    if (int score = hostSpecificity(d.host, fqdn); score > bestScore) best = &d, bestScore = score;
  return best;
}

std::vector<std::string> MeshRoutes::problems(const VirtualService& v) const {
  std::vector<std::string> out;
  auto check = [&](const RouteDestination& d) {
    if (d.subset.empty()) return;
    const DestinationRule* dr = ruleFor(d.host);
    if (dr && dr->subset(d.subset)) return;
    std::string p =
        "Referenced host+subset in destinationrule not found: \"" + d.host + "+" + d.subset + "\"";
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(std::move(p));
  };
  for (const auto& r : v.http) {
    for (const auto& d : r.route) check(d);
    if (r.mirror) check(*r.mirror);
  }
  return out;
}

const IngressPath* MeshRoutes::ingressFor(const std::string& host, const std::string& path) const {
  const IngressPath* best = nullptr;
  const IngressPath* fallback = nullptr;
  for (const auto& p : ingress_) {
    if (p.pathType == "Default") {
      fallback = &p;
      continue;
    }
    if (!p.host.empty() && !hostMatches(p.host, host)) continue;
    bool ok =
        p.pathType == "Exact"
            ? path == p.path
            : (path == p.path || path.rfind(p.path.back() == '/' ? p.path : p.path + "/", 0) == 0 ||
               p.path == "/");
    if (!ok) continue;
    if (!best || p.path.size() > best->path.size() ||
        (p.pathType == "Exact" && best->pathType != "Exact"))
      best = &p;
  }
  return best ? best : fallback;
}

}  // namespace podium::mesh
