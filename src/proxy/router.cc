#include "router.h"

#include <algorithm>
#include <map>
#include <random>

#include "podium/common/strings.h"
#include "worker.h"

namespace podium::proxy {

namespace {

thread_local std::mt19937_64 tRng{std::random_device{}()};

std::map<std::string, std::string> queryParams(const std::string& target) {
  std::map<std::string, std::string> out;
  auto q = target.find('?');
  if (q == std::string::npos) return out;
  for (const auto& part : strings::split(target.substr(q + 1), '&')) {
    auto eq = part.find('=');
    out[strings::urlDecode(part.substr(0, eq), true)] =
        eq == std::string::npos ? "" : strings::urlDecode(part.substr(eq + 1), true);
  }
  return out;
}

bool matches(const ProxyConfig& config, const http1::Head& req, const RequestSource& from,
             const HttpMatch& m, const std::string& path, const std::string& gateway,
             uint16_t port) {
  if (!m.gateways.empty() &&
      std::find(m.gateways.begin(), m.gateways.end(), gateway) == m.gateways.end())
    return false;
  if (m.uri && !m.uri->matches(path, m.ignoreUriCase)) return false;
  if (m.method && !m.method->matches(req.method)) return false;
  if (m.authority && !m.authority->matches(req.header("host"))) return false;
  if (m.scheme && !m.scheme->matches(from.tls ? "https" : "http")) return false;
  if (m.port && m.port != port) return false;
  for (const auto& [name, sm] : m.headers) {
    if (!req.has(name)) return false;
    if (sm && !sm->matches(req.header(name))) return false;
  }
  for (const auto& name : m.withoutHeaders)
    if (req.has(name)) return false;
  if (!m.queryParams.empty()) {
    auto q = queryParams(req.target);
    for (const auto& [name, sm] : m.queryParams) {
      auto it = q.find(name);
      if (it == q.end() || (sm && !sm->matches(it->second))) return false;
    }
  }
  if (!m.sourceLabels.empty() || !m.sourceNamespace.empty()) {
    const Endpoint* src = config.podByIp(from.ip);
    if (!src) return false;
    if (!m.sourceNamespace.empty() && src->ns != m.sourceNamespace) return false;
    for (const auto& [k, v] : m.sourceLabels) {
      auto it = src->labels.find(k);
      if (it == src->labels.end() || it->second != v) return false;
    }
  }
  return true;
}

}  // namespace

bool authorized(const ProxyConfig& config, uint32_t srcIp, const Endpoint& dest,
                const http1::Head* req, const std::string* principal) {
  if (config.authz().empty()) return true;
  AuthzRequest r;
  if (principal) {
    r.sourcePrincipal = *principal;  // "<trust domain>/ns/<ns>/sa/<sa>"
    if (auto at = principal->find("/ns/"); at != std::string::npos)
      r.sourceNamespace = principal->substr(at + 4, principal->find('/', at + 4) - at - 4);
  } else if (const Endpoint* src = config.podByIp(srcIp)) {
    r.sourcePrincipal = src->principal(config.domain());
    r.sourceNamespace = src->ns;
  }
  r.sourceIp = srcIp;
  r.destinationPort = dest.port;
  r.http = req != nullptr;
  if (req) {
    r.host = req->header("host");
    r.method = req->method;
    r.path = req->target.substr(0, req->target.find('?'));
    r.head = req;
  }
  return config.authz().allowed(dest.ns, dest.labels, r);
}

void applyOps(http1::Head& h, const HeaderOps& ops) {
  for (const auto& r : ops.remove) h.remove(r);
  for (const auto& [k, v] : ops.set) h.set(k, v);
  for (const auto& [k, v] : ops.add) h.add(k, v);
}

void applyOps(std::vector<std::pair<std::string, std::string>>& h, const HeaderOps& ops) {
  auto drop = [&h](const std::string& name) {
    std::erase_if(h, [&](const auto& kv) { return strings::iequals(kv.first, name); });
  };
  for (const auto& r : ops.remove) drop(r);
  for (const auto& [k, v] : ops.set) drop(k), h.emplace_back(strings::toLower(k), v);
  for (const auto& [k, v] : ops.add) h.emplace_back(strings::toLower(k), v);
}

double uniform(double max) { return std::uniform_real_distribution<double>(0, max)(tRng); }
uint64_t randomU64() { return tRng(); }

std::string hostOnly(const std::string& host) {
  std::string h = strings::toLower(host);
  if (h.empty() || h[0] == '[') return h;
  auto colon = h.rfind(':');
  return colon == std::string::npos ? h : h.substr(0, colon);
}

std::string findTarget(const ProxyConfig& config, const RequestSource& from,
                       const RouteDestination* dest, const std::string& host, uint16_t port,
                       Target* t) {
  *t = Target{};
  const Service* svc = config.byHost(host, from.svcNs.empty() ? "default" : from.svcNs);
  if (!svc) return "no healthy upstream: " + host + " is not a Service of this cluster\n";
  const ServicePort* sp = nullptr;
  if (port)
    sp = svc->port(port);
  else if (svc->ports.size() == 1)
    sp = &svc->ports[0];
  else if (svc->ns == from.svcNs && svc->name == from.svcName)
    sp = svc->port(from.svcPort);
  if (!sp && !svc->ports.empty()) sp = &svc->ports[0];
  if (!sp) return "no healthy upstream: " + host + " has no port\n";
  t->service = svc;
  t->port = sp;
  std::string fqdn = svc->fqdn(config.domain());
  const DestinationRule* dr = config.routes().ruleFor(fqdn);
  static const TrafficPolicy kDefault;
  t->policy = dr ? &dr->policy : &kDefault;
  const Subset* subset = nullptr;
  if (dest && !dest->subset.empty()) {
    subset = dr ? dr->subset(dest->subset) : nullptr;
    if (!subset)
      return "no healthy upstream: subset \"" + dest->subset + "\" of " + fqdn +
             " is not defined by any DestinationRule\n";
    t->subset = subset->name;
    t->policy = &subset->policy;
  }
  t->cluster = "outbound|" + std::to_string(sp->port) + "|" + t->subset + "|" + fqdn;
  for (const auto& e : sp->endpoints) {
    if (!e.ready) continue;
    bool in = true;
    if (subset)
      for (const auto& [k, v] : subset->labels) {
        auto it = e.labels.find(k);
        if (it == e.labels.end() || it->second != v) in = false;
      }
    if (in) t->endpoints.push_back(&e);
  }
  return "";
}

void routeRequest(const ProxyConfig& config, http1::Head& req, const RequestSource& from,
                  Routed* result) {
  *result = Routed{};
  Routed& out = *result;
  auto local = [&out](int status, std::string body, const char* flags,
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
    out.localStatus = status;
    out.localBody = std::move(body);
    out.localFlags = flags;
    out.localHeaders = std::move(headers);
  };
  auto resolve = [&](const RouteDestination* dest, const std::string& host, uint16_t port) {
    std::string error = findTarget(config, from, dest, host, port, &out.target);
    if (!error.empty()) local(503, error, "NR");
  };
  std::string path = req.target.substr(0, req.target.find('?'));
  std::string host = hostOnly(req.header("host"));
  const VirtualService* vs = nullptr;
  uint16_t port = from.svcPort;
  if (from.ingressPort) {
    port = from.tls ? 443 : 80;
    bool toHttps = false;
    out.gateway.clear();
    vs = config.routes().forGateway(host, from.tls, &out.gateway, &toHttps);
    if (vs && toHttps) return local(301, "", "-", {{"location", "https://" + host + req.target}});
    if (!vs) {
      if (const IngressPath* ing = config.routes().ingressFor(host, path)) {
        const Service* svc = config.find(ing->ns, ing->service);
        uint16_t p = ing->port;
        if (svc && !ing->portName.empty())
          for (const auto& sp : svc->ports)
            if (sp.name == ing->portName) p = sp.port;
        return resolve(nullptr, ing->service + "." + ing->ns + ".svc." + config.domain(), p);
      }
      return local(404, "no route for host \"" + host + "\"\n", "NR");
    }
  } else {
    const Service* svc = config.find(from.svcNs, from.svcName);
    if (!svc) return local(503, "no healthy upstream\n", "NR");
    vs = config.routes().forMesh(svc->fqdn(config.domain()));
    if (!vs) return resolve(nullptr, svc->fqdn(config.domain()), from.svcPort);
  }
  for (const auto& r : vs->http) {
    bool ok = r.match.empty();
    for (const auto& m : r.match) ok = ok || matches(config, req, from, m, path, out.gateway, port);
    if (ok) {
      out.route = &r;
      break;
    }
  }
  if (!out.route) return local(404, "no route matched\n", "NR");
  const HttpRoute& r = *out.route;
  if (r.redirect) {
    const Json& rd = *r.redirect;
    std::string scheme = json::str(rd, "scheme", "http");
    std::string authority = json::str(rd, "authority", req.header("host"));
    if (rd.contains("port"))
      authority = hostOnly(authority) + ":" + std::to_string(json::integer(rd, "port"));
    std::string uri = rd.contains("uri") ? json::str(rd, "uri") : req.target;
    int code = static_cast<int>(json::integer(rd, "redirectCode", 301));
    return local(code, "", "-", {{"location", scheme + "://" + authority + uri}});
  }
  if (r.directResponse) return local(r.directResponse->first, r.directResponse->second, "-");
  if (r.route.empty()) return local(404, "route has no destination\n", "NR");
  int64_t total = 0;
  for (const auto& d : r.route) total += std::max<int64_t>(0, d.weight);
  if (total <= 0) {
    out.dest = &r.route[0];
  } else {
    double pick = uniform(static_cast<double>(total));
    for (const auto& d : r.route) {
      pick -= static_cast<double>(std::max<int64_t>(0, d.weight));
      if (pick < 0) {
        out.dest = &d;
        break;
      }
    }
    if (!out.dest) out.dest = &r.route.back();
  }
  if (r.rewriteUri) {
    std::string query =
        req.target.find('?') == std::string::npos ? "" : req.target.substr(req.target.find('?'));
    std::string prefix;
    for (const auto& m : r.match)
      if (m.uri && m.uri->kind == StringMatch::Kind::Prefix && path.rfind(m.uri->value, 0) == 0)
        prefix = m.uri->value;
    std::string newPath =
        prefix.empty() ? *r.rewriteUri : *r.rewriteUri + path.substr(prefix.size());
    if (newPath.empty()) newPath = "/";
    req.target = newPath + query;
  }
  if (r.rewriteAuthority) req.set("host", *r.rewriteAuthority);
  return resolve(out.dest, out.dest->host, out.dest->port);
}

const Endpoint* pickEndpoint(Worker& w, const Target& t, const http1::Head& req, uint32_t srcIp,
                             const std::set<const Endpoint*>& tried) {
  int64_t now = w.loop().nowMs();
  std::vector<const Endpoint*> healthy, untried;
  for (const Endpoint* e : t.endpoints) {
    // Ejections are outlier detection's, for the clusters that have it: the pod's own inbound
    // listener (no outlier detection) always reaches its workload, even while senders that saw
    // it fail have it ejected.
    EndpointHealth& h = w.health(e->ip, e->port);
    if (t.policy->outlier && h.ejectedUntilMs > now) continue;
    healthy.push_back(e);
    if (!tried.count(e)) untried.push_back(e);
  }
  // Istio sets the panic threshold to 0: with every host ejected there is no host.
  std::vector<const Endpoint*>& pool = untried.empty() ? healthy : untried;
  if (pool.empty()) return nullptr;
  const TrafficPolicy& p = *t.policy;
  switch (p.lb) {
    case TrafficPolicy::Lb::Random:
      return pool[randomU64() % pool.size()];
    case TrafficPolicy::Lb::LeastRequest: {
      // Power of two choices, as Envoy does.
      const Endpoint* a = pool[randomU64() % pool.size()];
      const Endpoint* b = pool[randomU64() % pool.size()];
      return w.health(a->ip, a->port).active <= w.health(b->ip, b->port).active ? a : b;
    }
    case TrafficPolicy::Lb::ConsistentHash: {
      std::string key = p.hashSourceIp ? std::to_string(srcIp) : req.header(p.hashHeader);
      if (!p.hashCookie.empty()) {
        std::string cookies = req.header("cookie");
        auto at = cookies.find(p.hashCookie + "=");
        if (at != std::string::npos) key = cookies.substr(at, cookies.find(';', at) - at);
      }
      std::vector<const Endpoint*> sorted = pool;
      std::sort(sorted.begin(), sorted.end(),
                [](const Endpoint* x, const Endpoint* y) { return x->ip < y->ip; });
      return sorted[std::hash<std::string>{}(key) % sorted.size()];
    }
    case TrafficPolicy::Lb::RoundRobin:
    default:
      return pool[w.nextIndex(t.cluster) % pool.size()];
  }
}

void recordOutcome(Worker& w, const Target& t, const Endpoint& e, int status, bool failure) {
  EndpointHealth& h = w.health(e.ip, e.port);
  const TrafficPolicy& p = *t.policy;
  bool gatewayError = failure || status == 502 || status == 503 || status == 504;
  if (!failure && status < 500) {
    h.consecutive5xx = 0;
    h.consecutiveGateway = 0;
    return;
  }
  if (!p.outlier) return;  // only clusters with outlier detection count errors
  ++h.consecutive5xx;
  if (gatewayError) ++h.consecutiveGateway;
  bool eject =
      (p.consecutive5xx > 0 && h.consecutive5xx >= p.consecutive5xx) ||
      (p.consecutiveGatewayErrors > 0 && h.consecutiveGateway >= p.consecutiveGatewayErrors);
  if (!eject) return;
  int64_t now = w.loop().nowMs();
  size_t ejected = 0;
  for (const Endpoint* o : t.endpoints)
    if (w.health(o->ip, o->port).ejectedUntilMs > now) ++ejected;
  // Envoy ejects at least one host whatever maxEjectionPercent says.
  size_t limit =
      std::max<size_t>(1, t.endpoints.size() * static_cast<size_t>(p.maxEjectionPercent) / 100);
  if (ejected >= limit) return;
  ++h.ejections;
  h.ejectedUntilMs = now + p.baseEjectionMs * h.ejections;
  h.consecutive5xx = 0;
  h.consecutiveGateway = 0;
}

}  // namespace podium::proxy
