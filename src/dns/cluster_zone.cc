#include "podium/common/net.h"
#include "podium/common/strings.h"
#include "podium/dns/cluster_dns.h"

namespace podium::dns {

namespace {

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const Json& field(const Json& obj, std::initializer_list<std::string_view> path) {
  static const Json kNull;
  const Json* v = json::find(obj, path);
  return v ? *v : kNull;
}

// Ready addresses of an Endpoints object.
std::vector<std::string> readyAddresses(const Json& ep) {
  std::vector<std::string> out;
  for (const auto& s : field(ep, {"subsets"}))
    for (const auto& a : field(s, {"addresses"}))
      if (!json::str(a, "ip").empty()) out.push_back(json::str(a, "ip"));
  return out;
}

}  // namespace

ClusterZone::ClusterZone(std::string domain, Lookup service, Lookup endpoints, ListAll services,
                         uint32_t ttl)
    : domain_(strings::toLower(domain)),
      service_(std::move(service)),
      endpoints_(std::move(endpoints)),
      services_(std::move(services)),
      ttl_(ttl) {}

bool ClusterZone::authoritativeFor(const Question& q) const {
  if (q.name == domain_ || endsWith(q.name, "." + domain_)) return true;
  if (q.type == kPTR && endsWith(q.name, ".in-addr.arpa")) {
    // Only for addresses that are some Service's ClusterIP.
    auto parts = strings::split(q.name, '.');
    if (parts.size() != 6) return false;
    std::string ip = parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0];
    for (const auto& svc : services_())
      if (json::getString(*svc, {"spec", "clusterIP"}) == ip) return true;
  }
  return false;
}

void ClusterZone::nxdomain(Message& r) const {
  r.rcode = kNXDomain;
  r.authority.push_back(
      {domain_, kSOA, kClassIN, ttl_,
       rdataSoa("ns.dns." + domain_, "hostmaster." + domain_, 1, 7200, 1800, 86400, ttl_)});
}

void ClusterZone::answer(const Question& q, Message& r) const {
  r.authoritative = true;
  auto soaOnly = [&] {  // the name exists, but has no record of this type
    r.authority.push_back(
        {domain_, kSOA, kClassIN, ttl_,
         rdataSoa("ns.dns." + domain_, "hostmaster." + domain_, 1, 7200, 1800, 86400, ttl_)});
  };
  if (q.type == kPTR && endsWith(q.name, ".in-addr.arpa")) {
    auto parts = strings::split(q.name, '.');
    std::string ip = parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0];
    for (const auto& svc : services_())
      if (json::getString(*svc, {"spec", "clusterIP"}) == ip) {
        std::string target = json::getString(*svc, {"metadata", "name"}) + "." +
                             json::getString(*svc, {"metadata", "namespace"}) + ".svc." + domain_;
        r.answers.push_back({q.name, kPTR, kClassIN, ttl_, rdataName(target)});
        return;
      }
    nxdomain(r);
    return;
  }
  std::string rel = q.name == domain_ ? "" : q.name.substr(0, q.name.size() - domain_.size() - 1);
  auto labels = rel.empty() ? std::vector<std::string>{} : strings::split(rel, '.');
  // <zone>, svc.<zone>, <ns>.svc.<zone>, pod.<zone>, <ns>.pod.<zone>: names that exist.
  if (labels.empty() ||
      (labels.size() <= 2 && (labels.back() == "svc" || labels.back() == "pod"))) {
    if (labels.empty() && (q.type == kSOA || q.type == kANY))
      r.answers.push_back(
          {domain_, kSOA, kClassIN, ttl_,
           rdataSoa("ns.dns." + domain_, "hostmaster." + domain_, 1, 7200, 1800, 86400, ttl_)});
    else
      soaOnly();
    return;
  }
  size_t n = labels.size();
  // a-b-c-d.<ns>.pod.<zone>
  if (n == 3 && labels[2] == "pod") {
    std::string ip = labels[0];
    std::replace(ip.begin(), ip.end(), '-', '.');
    uint32_t v;
    if (!net::parseIpv4(ip, &v)) return nxdomain(r);
    if (q.type == kA || q.type == kANY)
      r.answers.push_back({q.name, kA, kClassIN, ttl_, rdataA(v)});
    else
      soaOnly();
    return;
  }
  // <hostname>.<svc>.<ns>.svc.<zone>: one pod of a headless Service (a StatefulSet's)
  if (n == 4 && labels.back() == "svc") {
    auto svc = service_(labels[2], labels[1]);
    auto ep = svc && json::getString(*svc, {"spec", "clusterIP"}) == "None"
                  ? endpoints_(labels[2], labels[1])
                  : nullptr;
    if (!ep) return nxdomain(r);
    for (const auto& s : field(*ep, {"subsets"}))
      for (const auto& a : field(s, {"addresses"})) {
        uint32_t v;
        if (json::str(a, "hostname") != labels[0] || !net::parseIpv4(json::str(a, "ip"), &v))
          continue;
        if (q.type == kA || q.type == kANY)
          r.answers.push_back({q.name, kA, kClassIN, ttl_, rdataA(v)});
        else
          soaOnly();
        return;
      }
    return nxdomain(r);
  }
  // [_port._proto.]<svc>.<ns>.svc.<zone>
  if (labels.back() != "svc" || (n != 3 && n != 5)) return nxdomain(r);
  std::string ns = labels[n - 2], name = labels[n - 3];
  auto svc = service_(ns, name);
  if (!svc) return nxdomain(r);
  std::string svcName = name + "." + ns + ".svc." + domain_;
  auto srv = [&](const Json& port) {  // one SRV answer pointing at the Service's name
    r.answers.push_back(
        {q.name, kSRV, kClassIN, ttl_,
         rdataSrv(0, 100, static_cast<uint16_t>(json::integer(port, "port")), svcName)});
  };
  std::string type = json::getString(*svc, {"spec", "type"});
  std::string clusterIp = json::getString(*svc, {"spec", "clusterIP"});
  std::vector<uint32_t> ips;
  if (clusterIp == "None") {
    if (auto ep = endpoints_(ns, name))
      for (const auto& a : readyAddresses(*ep)) {
        uint32_t v;
        if (net::parseIpv4(a, &v)) ips.push_back(v);
      }
  } else if (uint32_t v; net::parseIpv4(clusterIp, &v)) {
    ips.push_back(v);
  }
  if (n == 5) {  // SRV for one named port
    std::string port = labels[0], proto = labels[1];
    if (port.size() < 2 || port[0] != '_' || proto.size() < 2 || proto[0] != '_')
      return nxdomain(r);
    for (const auto& p : field(*svc, {"spec", "ports"})) {
      if (json::str(p, "name") != port.substr(1) ||
          strings::toLower(json::str(p, "protocol", "TCP")) != proto.substr(1))
        continue;
      if (q.type == kSRV || q.type == kANY) {
        srv(p);
        for (uint32_t ip : ips) r.additional.push_back({svcName, kA, kClassIN, ttl_, rdataA(ip)});
      } else {
        soaOnly();
      }
      return;
    }
    return nxdomain(r);
  }
  if (type == "ExternalName") {
    std::string target = strings::toLower(json::getString(*svc, {"spec", "externalName"}));
    r.answers.push_back({q.name, kCNAME, kClassIN, ttl_, rdataName(target)});
    return;
  }
  if (q.type == kA || q.type == kANY) {
    for (uint32_t ip : ips) r.answers.push_back({q.name, kA, kClassIN, ttl_, rdataA(ip)});
    if (ips.empty()) soaOnly();
  } else if (q.type == kSRV) {
    for (const auto& p : field(*svc, {"spec", "ports"})) srv(p);
    for (uint32_t ip : ips) r.additional.push_back({svcName, kA, kClassIN, ttl_, rdataA(ip)});
  } else {
    soaOnly();
  }
}

std::string handleQuery(std::string_view packet, const ClusterZone& zone,
                        const std::function<std::string(std::string_view)>& forward,
                        size_t maxSize) {
  auto query = parse(packet);
  Message r;
  if (!query) {
    if (packet.size() < 12) return "";  // not even a header: nothing to answer to
    r.id = static_cast<uint16_t>((static_cast<uint8_t>(packet[0]) << 8) |
                                 static_cast<uint8_t>(packet[1]));
    r.response = true;
    r.rcode = kFormErr;
    return serialize(r);
  }
  if (query->response) return "";  // never answer answers
  r.id = query->id;
  r.response = true;
  r.opcode = query->opcode;
  r.recursionDesired = query->recursionDesired;
  r.recursionAvailable = true;
  r.questions = query->questions;
  if (query->opcode != 0) {
    r.rcode = kNotImp;
    return serialize(r);
  }
  if (query->questions.size() != 1) {
    r.rcode = kFormErr;
    return serialize(r);
  }
  const Question& q = query->questions[0];
  if (q.klass != kClassIN || !zone.authoritativeFor(q)) {
    std::string upstream = forward ? forward(packet) : "";
    if (!upstream.empty()) return upstream;
    r.rcode = kServFail;
    return serialize(r);
  }
  zone.answer(q, r);
  size_t limit = maxSize;
  if (query->ednsUdpSize > 0) limit = std::min<size_t>(maxSize, query->ednsUdpSize);
  return serialize(r, limit);
}

}  // namespace podium::dns
