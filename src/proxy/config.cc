#include "config.h"

#include "podium/mesh/workload.h"

#include "podium/common/net.h"
#include "podium/common/strings.h"

namespace podium::proxy {

namespace {

using json::at;

}  // namespace

std::map<std::string, std::string> labelsOf(const Json& labels) {
  std::map<std::string, std::string> out;
  if (labels.is_object())
    for (const auto& [k, v] : labels.items())
      if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

// Istio's rule: appProtocol, else the port name's prefix (http, http2, grpc, grpc-web, h2c,
// tcp, tls, https, mongo, mysql, redis, ...); a port declaring neither is sniffed.
Protocol protocolOf(const Json& sp) {
  std::string app = strings::toLower(json::str(sp, "appProtocol"));
  std::string name = strings::toLower(json::str(sp, "name"));
  auto prefix = name.substr(0, name.find('-'));
  for (const std::string& p : {app, prefix}) {
    if (p.empty()) continue;
    if (p == "http" || p == "http1" || p == "kubernetes.io/h1c") return Protocol::Http;
    if (p == "http2" || p == "grpc" || p == "grpc-web" || p == "h2c" || p == "kubernetes.io/h2c")
      return Protocol::Http2;
    if (p == "tcp" || p == "tls" || p == "https" || p == "mongo" || p == "mysql" || p == "redis" ||
        p == "udp" || p == "kubernetes.io/ws" || p == "kubernetes.io/wss")
      return Protocol::Tcp;
  }
  return Protocol::Auto;
}

std::shared_ptr<const ProxyConfig> ProxyConfig::build(const Json& snap, const std::string& domain) {
  auto c = std::make_shared<ProxyConfig>();
  c->domain_ = domain;
  for (const auto& p : at(snap, {"pods"})) {
    uint32_t ip;
    if (!net::parseIpv4(json::getString(p, {"status", "podIP"}), &ip)) continue;
    Endpoint e;
    e.ip = ip;
    e.pod = json::getString(p, {"metadata", "name"});
    e.ns = json::getString(p, {"metadata", "namespace"});
    e.labels = labelsOf(at(p, {"metadata", "labels"}));
    std::string sa = json::getString(p, {"spec", "serviceAccountName"});
    if (!sa.empty()) e.serviceAccount = sa;
    e.meshed = mesh::inMesh(p);
    c->pods_[ip] = std::move(e);
  }
  std::map<std::string, const Json*> endpoints;
  for (const auto& ep : at(snap, {"endpoints"}))
    endpoints[json::getString(ep, {"metadata", "namespace"}) + "/" +
              json::getString(ep, {"metadata", "name"})] = &ep;
  for (const auto& s : at(snap, {"services"})) {
    Service svc;
    svc.ns = json::getString(s, {"metadata", "namespace"});
    svc.name = json::getString(s, {"metadata", "name"});
    svc.type = json::getString(s, {"spec", "type"});
    if (svc.type.empty()) svc.type = "ClusterIP";
    svc.labels = labelsOf(at(s, {"metadata", "labels"}));
    uint32_t ip;
    if (net::parseIpv4(json::getString(s, {"spec", "clusterIP"}), &ip)) svc.clusterIp = ip;
    const Json* ep =
        endpoints.count(svc.ns + "/" + svc.name) ? endpoints[svc.ns + "/" + svc.name] : nullptr;
    for (const auto& p : at(s, {"spec", "ports"})) {
      if (json::str(p, "protocol", "TCP") != "TCP") continue;
      ServicePort sp;
      sp.name = json::str(p, "name");
      sp.port = static_cast<uint16_t>(json::integer(p, "port"));
      sp.nodePort = static_cast<uint16_t>(json::integer(p, "nodePort"));
      sp.protocol = protocolOf(p);
      if (ep)
        for (const auto& subset : at(*ep, {"subsets"})) {
          uint16_t target = 0;
          for (const auto& epp : at(subset, {"ports"}))
            if (json::str(epp, "name") == sp.name)
              target = static_cast<uint16_t>(json::integer(epp, "port"));
          if (!target) continue;
          for (const char* kind : {"addresses", "notReadyAddresses"})
            for (const auto& a : at(subset, {kind})) {
              uint32_t aip;
              if (!net::parseIpv4(json::str(a, "ip"), &aip)) continue;
              Endpoint e;
              e.ip = aip;
              e.port = target;
              e.ready = std::string(kind) == "addresses";
              e.pod = json::getString(a, {"targetRef", "name"});
              e.ns = json::getString(a, {"targetRef", "namespace"});
              if (auto it = c->pods_.find(aip); it != c->pods_.end()) {
                e.labels = it->second.labels;
                e.serviceAccount = it->second.serviceAccount;
                e.meshed = it->second.meshed;
              }
              sp.endpoints.push_back(std::move(e));
            }
        }
      svc.ports.push_back(std::move(sp));
    }
    size_t idx = c->services_.size();
    if (svc.clusterIp) c->byIp_[svc.clusterIp] = idx;
    c->byName_[svc.ns + "/" + svc.name] = idx;
    c->services_.push_back(std::move(svc));
  }
  // Oldest first where two Services claim one host port (the API server keeps nodePorts
  // unique; LoadBalancer ports may collide).
  for (const auto& svc : c->services_)
    for (const auto& sp : svc.ports) {
      if (sp.nodePort) c->exposed_.emplace(sp.nodePort, Exposed{&svc, &sp});
      if (svc.type == "LoadBalancer") c->exposed_.emplace(sp.port, Exposed{&svc, &sp});
    }
  c->routes_ = MeshRoutes::build(snap, domain);
  c->tls_.build(snap);
  c->authz_.build(snap);
  c->mesh_.build(snap, domain);
  // A tracing provider's service ("ns/host" or a host, from istio-system; or an IPv4 address):
  // one of its ready endpoints, as Envoy's cluster for it would pick.
  auto resolve = [&c](const std::string& service, uint16_t port, uint32_t* ip, uint16_t* to) {
    if (net::parseIpv4(service, ip)) {
      *to = port;
      return true;
    }
    auto slash = service.find('/');
    const Service* svc = slash == std::string::npos
                             ? c->byHost(service, "istio-system")
                             : c->byHost(service.substr(slash + 1), service.substr(0, slash));
    const ServicePort* sp = svc ? svc->port(port) : nullptr;
    if (!sp) return false;
    for (const auto& e : sp->endpoints)
      if (e.ready) {
        *ip = e.ip;
        *to = e.port;
        return true;
      }
    return false;
  };
  c->tracing_.build(snap, resolve);
  return c;
}

const Service* ProxyConfig::byClusterIp(uint32_t ip) const {
  auto it = byIp_.find(ip);
  return it == byIp_.end() ? nullptr : &services_[it->second];
}

const Service* ProxyConfig::find(const std::string& ns, const std::string& name) const {
  auto it = byName_.find(ns + "/" + name);
  return it == byName_.end() ? nullptr : &services_[it->second];
}

const Service* ProxyConfig::byHost(const std::string& hostPort, const std::string& fromNs) const {
  std::string host = strings::toLower(hostPort.substr(
      0, hostPort.rfind(':') == std::string::npos || hostPort.find(']') != std::string::npos
             ? hostPort.size()
             : hostPort.rfind(':')));
  if (!host.empty() && host.back() == '.') host.pop_back();
  uint32_t ip;
  if (net::parseIpv4(host, &ip)) return byClusterIp(ip);
  std::string suffix = ".svc." + domain_;
  if (host.size() > suffix.size() &&
      host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0)
    host.resize(host.size() - suffix.size());
  else if (host.size() > 4 && host.compare(host.size() - 4, 4, ".svc") == 0)
    host.resize(host.size() - 4);
  auto parts = strings::split(host, '.');
  if (parts.size() == 1) return find(fromNs, parts[0]);
  if (parts.size() == 2) return find(parts[1], parts[0]);
  return nullptr;
}

const Endpoint* ProxyConfig::podByIp(uint32_t ip) const {
  auto it = pods_.find(ip);
  return it == pods_.end() ? nullptr : &it->second;
}

}  // namespace podium::proxy
