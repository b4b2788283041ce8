#include "pod_routes.h"

#include "podium/client/objects.h"
#include "podium/common/log.h"
#include "podium/common/net.h"
#include "podium/common/strings.h"
#include "podium/node/process.h"

namespace podium::node {

namespace res = client::resources;

namespace {

std::string internalIp(const Json& node) {
  for (const auto& a : client::at(node, {"status", "addresses"}))
    if (json::str(a, "type") == "InternalIP") return json::str(a, "address");
  return "";
}

std::set<std::string> localAddresses() {
  std::set<std::string> out;
  for (const auto& a : net::localIpv4Addresses()) out.insert(a.ip);
  return out;
}

Expected<std::vector<KernelRoute>, std::string> readTable() {
  auto r =
      runCommand({"ip", "-j", "-4", "route", "show", "table", "main"}, std::chrono::seconds(10));
  if (r.exitCode != 0) return Unexpected("ip route show: " + r.output);
  auto doc = json::parse(r.output);
  if (!doc || !doc->value.is_array()) return Unexpected("ip route show: not a JSON list");
  std::vector<KernelRoute> out;
  for (const auto& e : doc->value)
    out.push_back({json::str(e, "dst"), json::str(e, "gateway"), json::str(e, "protocol"),
                   json::str(e, "prefsrc")});
  return out;
}

}  // namespace

RoutePlan planPodRoutes(const std::vector<Json>& nodes, const std::string& self,
                        const std::string& ownPodCidr, const std::set<std::string>& localIps,
                        const std::vector<KernelRoute>& table, const std::string& source) {
  const std::string ours = std::to_string(kRouteProtocol);
  std::map<std::string, const KernelRoute*> byDst;
  for (const auto& k : table) byDst[k.dst] = &k;
  RoutePlan plan;
  std::set<std::string> wanted;
  for (const auto& n : nodes) {
    std::string name = json::getString(n, {"metadata", "name"});
    std::string cidr = json::getString(n, {"spec", "podCIDR"});
    std::string ip = internalIp(n);
    if (name == self || cidr.empty() || cidr == ownPodCidr) continue;
    auto range = net::Cidr::parse(cidr);
    if (!range) continue;
    // `ip` names a route by its masked prefix (a /32 without the suffix).
    std::string dst =
        net::formatIpv4(range->base) + (range->bits == 32 ? "" : "/" + std::to_string(range->bits));
    if (ip.empty() || !net::parseIpv4(ip)) {
      plan.skip.emplace_back(dst, "node " + name + " has no InternalIP address");
      continue;
    }
    if (localIps.count(ip)) continue;  // its pods are on a bridge of this machine
    auto k = byDst.find(dst);
    if (k != byDst.end() && k->second->protocol != ours) {
      plan.skip.emplace_back(dst, "the table routes it already (protocol " + k->second->protocol +
                                      "), not via node " + name);
      continue;
    }
    wanted.insert(dst);
    if (k == byDst.end() || k->second->gateway != ip || k->second->prefsrc != source)
      plan.replace[dst] = ip;
  }
  for (const auto& k : table)
    if (k.protocol == ours && !wanted.count(k.dst)) plan.remove.push_back(k.dst);
  return plan;
}

PodRoutes::PodRoutes(client::Client& client, std::string nodeName, std::string podCidr,
                     std::string source)
    : self_(std::move(nodeName)), podCidr_(std::move(podCidr)), source_(std::move(source)) {
  nodes_ = std::make_unique<client::Informer>(client, res::kNodes);
  auto changed = [this](const client::ObjectPtr&) {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_ = true;
    cv_.notify_all();
  };
  // A node's status is written often (conditions, heartbeats); only its range and address
  // matter here.
  auto routed = [](const Json& n) {
    return std::pair{json::getString(n, {"spec", "podCIDR"}), internalIp(n)};
  };
  nodes_->addHandlers({changed,
                       [changed, routed](const client::ObjectPtr& o, const client::ObjectPtr& n) {
                         if (routed(*o) != routed(*n)) changed(n);
                       },
                       changed});
}

void PodRoutes::start() {
  nodes_->start();
  thread_ = std::thread([this] { loop(); });
}

void PodRoutes::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  nodes_->stop();
  auto table = readTable();
  if (!table) return;
  for (const auto& k : *table)
    if (k.protocol == std::to_string(kRouteProtocol))
      runCommand({"ip", "route", "del", k.dst, "proto", std::to_string(kRouteProtocol)},
                 std::chrono::seconds(10));
}

void PodRoutes::loop() {
  nodes_->waitForSync(std::chrono::seconds(30));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    dirty_ = false;
    lock.unlock();
    reconcile();
    lock.lock();
    cv_.wait_for(lock, std::chrono::seconds(30), [this] { return stopping_ || dirty_; });
  }
}

void PodRoutes::reconcile() {
  auto table = readTable();
  if (!table) {
    PODIUM_LOG(Warn) << "pod routes: " << table.error();
    return;
  }
  std::vector<Json> nodes;
  for (const auto& n : nodes_->list()) nodes.push_back(*n);
  RoutePlan plan = planPodRoutes(nodes, self_, podCidr_, localAddresses(), *table, source_);
  const std::string proto = std::to_string(kRouteProtocol);
  auto warn = [this](const std::string& dst, const std::string& why) {
    if (warned_[dst] == why) return;
    warned_[dst] = why;
    PODIUM_LOG(Warn) << "pod routes: no route to " << dst << ": " << why;
  };
  for (const auto& [dst, why] : plan.skip) warn(dst, why);
  for (const auto& [dst, gateway] : plan.replace) {
    std::vector<std::string> cmd = {"ip", "route", "replace", dst, "via", gateway, "proto", proto};
    if (!source_.empty()) cmd.insert(cmd.end(), {"src", source_});
    auto r = runCommand(cmd, std::chrono::seconds(10));
    if (r.exitCode != 0) {
      // host-gw needs the other node on a shared link.
      warn(dst, "ip route replace " + dst + " via " + gateway + ": " +
                    std::string(strings::trim(r.output)) + " (is " + gateway +
                    " on a link of this node's?)");
      continue;
    }
    warned_.erase(dst);
    PODIUM_LOG(Info) << "pod routes: " << dst << " via " << gateway;
  }
  for (const auto& dst : plan.remove) {
    auto r = runCommand({"ip", "route", "del", dst, "proto", proto}, std::chrono::seconds(10));
    if (r.exitCode != 0)
      PODIUM_LOG(Warn) << "pod routes: ip route del " << dst << ": " << r.output;
    else
      PODIUM_LOG(Info) << "pod routes: " << dst << " removed (no node has it)";
  }
}

}  // namespace podium::node
