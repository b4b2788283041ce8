#include "node_ipam.h"

#include <algorithm>

namespace podium::controllers {

namespace res = client::resources;

NodeIpamController::NodeIpamController(client::InformerFactory& f, client::EventRecorder& events,
                                       net::Cidr clusterCidr, int maskSize)
    : Controller("node-ipam", f.client(), f.clock(), 1),
      events_(events),
      nodes_(f.informer(res::kNodes)),
      cluster_(clusterCidr),
      maskSize_(maskSize) {
  nodes_.addHandlers(enqueueHandlers(true));
}

void NodeIpamController::markUsed(const net::Cidr& range, std::set<uint32_t>& used) const {
  // The part of `range` inside the cluster CIDR, as block numbers.
  uint64_t first = std::max<uint64_t>(range.base, cluster_.base);
  uint64_t last = std::min<uint64_t>(uint64_t(range.base) + range.size(),
                                     uint64_t(cluster_.base) + cluster_.size());
  for (uint64_t ip = first; ip < last; ip += uint64_t(1) << (32 - maskSize_))
    used.insert(static_cast<uint32_t>((ip - cluster_.base) >> (32 - maskSize_)));
}

SyncResult NodeIpamController::sync(const std::string& name) {
  ObjectPtr node = nodes_.get("", name);
  std::lock_guard<std::mutex> lock(mu_);
  if (!node) {
    allocated_.erase(name);
    return SyncResult::ok();
  }
  if (!json::getString(*node, {"spec", "podCIDR"}).empty()) {
    allocated_.erase(name);  // the cache has it now
    return SyncResult::ok();
  }
  // Blocks in use: every node's range (a range wider than a block takes all it covers), and
  // what was handed out but is not in the cache yet.
  std::set<uint32_t> used;
  for (const auto& n : nodes_.list()) {
    for (const auto& cidr : at(*n, {"spec", "podCIDRs"}))
      if (cidr.is_string())
        if (auto c = net::Cidr::parse(cidr.get<std::string>())) markUsed(*c, used);
    if (auto c = net::Cidr::parse(json::getString(*n, {"spec", "podCIDR"}))) markUsed(*c, used);
  }
  for (const auto& [other, block] : allocated_)
    if (other != name) used.insert(block);
  uint64_t blocks = uint64_t(1) << (maskSize_ - cluster_.bits);
  std::optional<uint32_t> free;
  for (uint64_t b = 0; b < blocks && !free; ++b)
    if (!used.count(static_cast<uint32_t>(b))) free = static_cast<uint32_t>(b);
  if (!free) {
    events_.record(*node, "Normal", "CIDRNotAvailable",
                   "Node " + name + " status is now: CIDRNotAvailable");
    return SyncResult::after(std::chrono::seconds(30));
  }
  std::string cidr = net::formatIpv4(cluster_.base + (*free << (32 - maskSize_))) + "/" +
                     std::to_string(maskSize_);
  // An update, not a patch: it fails if the node changed since the cache saw it (another
  // writer set a range meanwhile), and the next sync sees why.
  Json obj = *node;
  obj["spec"]["podCIDR"] = cidr;
  obj["spec"]["podCIDRs"] = Json::array({cidr});
  auto r = client_.update(res::kNodes, "", obj);
  if (!r) return SyncResult::of(r, "allocate " + cidr + " to node " + name, {404});
  allocated_[name] = *free;
  events_.record(*node, "Normal", "CIDRAssignmentSucceeded",
                 "Node " + name + " was given pod range " + cidr);
  return SyncResult::ok();
}

}  // namespace podium::controllers
