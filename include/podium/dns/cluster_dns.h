#pragma once

// The cluster DNS the node agent serves to its pods, with the records CoreDNS's kubernetes
// plugin gives: <svc>.<ns>.svc.<zone> A (the ClusterIP, or the ready endpoints of a headless
// Service), ExternalName CNAMEs, SRV for named ports (_<port>._<proto>.<svc>.<ns>.svc.<zone>),
// pod A records (a-b-c-d.<ns>.pod.<zone>), PTR for ClusterIPs, NXDOMAIN with the zone's SOA for
// names in the zone that do not exist; every other name is forwarded to the host's resolvers.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "podium/client/client.h"
#include "podium/common/expected.h"
#include "podium/common/json.h"
#include "podium/dns/message.h"

namespace podium::dns {

// Answers questions about the cluster zone from the objects it is given (informer caches in
// the server, fixed maps in tests).
class ClusterZone {
 public:
  using Lookup = std::function<client::ObjectPtr(const std::string& ns, const std::string& name)>;
  using ListAll = std::function<std::vector<client::ObjectPtr>()>;
  ClusterZone(std::string domain, Lookup service, Lookup endpoints, ListAll services,
              uint32_t ttl = 5);

  // True if the name is in the zone (or is a PTR name this zone answers for).
  bool authoritativeFor(const Question& q) const;
  // Fills answers/additional/authority and rcode of `response` for one question in the zone.
  void answer(const Question& q, Message& response) const;

 private:
  void nxdomain(Message& response) const;
  std::string domain_;
  Lookup service_, endpoints_;
  ListAll services_;
  uint32_t ttl_;
};

struct ClusterDnsOptions {
  std::string domain = "cluster.local";
  std::string address = "0.0.0.0";
  uint16_t port = 10053;               // 0 picks a free port (tests)
  std::vector<std::string> upstreams;  // default: nameservers of /etc/resolv.conf
};

class ClusterDns {
 public:
  virtual ~ClusterDns() = default;
  virtual uint16_t port() const = 0;
  virtual void stop() = 0;
};

// Serves UDP and TCP on options.address:port with services and endpoints watched through
// `client`.
Expected<std::unique_ptr<ClusterDns>, std::string> startClusterDns(
    client::Client& client, const ClusterDnsOptions& options);

// Handles one query packet with `zone` and, for other names, `forward` (which returns the
// upstream's raw answer or "" on failure). Returns the answer packet, or "" to stay silent.
std::string handleQuery(std::string_view packet, const ClusterZone& zone,
                        const std::function<std::string(std::string_view)>& forward,
                        size_t maxSize);

}  // namespace podium::dns
