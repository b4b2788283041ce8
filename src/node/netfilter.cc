#include "podium/node/netfilter.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "podium/common/log.h"
#include "podium/common/net.h"
#include "podium/common/strings.h"
#include "podium/mesh/workload.h"
#include "podium/node/process.h"

namespace podium::node {

namespace {
constexpr const char* kLockDir = "/run/podium";
}  // namespace

std::string netfilterScript(const std::string& table, const NetfilterRules& r) {
  auto dns = [&](const char* proto) {
    return "ip daddr " + r.clusterDns + " " + proto +
           " dport 53 redirect to :" + std::to_string(r.dnsPort) + "\n";
  };
  std::string fromPods = "iifname \"" + r.bridge + "\" ";
  std::string capture;
  if (r.capturePort && !r.serviceCidr.empty())
    capture = "    " + fromPods + "ip daddr " + r.serviceCidr +
              " meta l4proto tcp redirect to :" + std::to_string(r.capturePort) + "\n";
  // "add" then "delete" makes the replace work whether or not the table exists; nft applies
  // the whole file as one transaction.
  return "add table ip " + table + "\ndelete table ip " + table + "\ntable ip " + table + " {\n" +
         "  chain prerouting {\n"
         "    type nat hook prerouting priority -100; policy accept;\n" +
         "    " + fromPods + dns("udp") + "    " + fromPods + dns("tcp") + capture +
         "  }\n"
         "  chain output {\n"
         "    type nat hook output priority -100; policy accept;\n" +
         "    " + dns("udp") + "    " + dns("tcp") +
         "  }\n"
         // Pod traffic leaves the node only for other nodes' pods (and as answers to whoever
         // connected to a pod): what the node does not take in, hand to another pod bridge or
         // route to another node's pods is refused.
         "  chain forward {\n"
         "    type filter hook forward priority 0; policy accept;\n" +
         (r.clusterCidr.empty() ? ""
                                : "    " + fromPods + "ip daddr " + r.clusterCidr + " accept\n") +
         "    " + fromPods +
         "ct state established,related accept\n"
         "    " +
         fromPods +
         "oifname != \"podium*\" reject with icmp type admin-prohibited\n"
         "  }\n"
         "}\n";
}

std::string podMeshScript(const std::string& serviceCidr) {
  return "add table ip podium-mesh\ndelete table ip podium-mesh\ntable ip podium-mesh {\n"
         "  chain output {\n"
         "    type nat hook output priority -100; policy accept;\n"
         "    ip daddr " +
         serviceCidr +
         " tcp dport != 53 redirect to :15001\n"
         "  }\n"
         "  chain prerouting {\n"
         "    type nat hook prerouting priority -100; policy accept;\n"
         "    ip saddr " +
         std::string(mesh::kProbeSource) +
         " accept\n"
         "    iifname != \"lo\" meta l4proto tcp redirect to :15006\n"
         "  }\n"
         "}\n";
}

Expected<void, std::string> applyInNetns(const std::string& netnsPath, const std::string& script) {
  static std::atomic<int> seq{0};
  std::string path =
      "/tmp/podium-nft-pod-" + std::to_string(getpid()) + "-" + std::to_string(seq++) + ".nft";
  {
    std::ofstream f(path, std::ios::trunc);
    f << script;
  }
  auto r =
      runCommand({"nsenter", "--net=" + netnsPath, "nft", "-f", path}, std::chrono::seconds(20));
  std::remove(path.c_str());
  if (r.exitCode != 0) return Unexpected("nft in " + netnsPath + ": " + r.output);
  return {};
}

Expected<void, std::string> NodeNetfilter::apply(const NetfilterRules& rules) {
  std::string script = netfilterScript(table_, rules);
  std::string path = "/tmp/podium-nft-" + table_ + "-" + std::to_string(getpid()) + ".nft";
  {
    std::ofstream f(path, std::ios::trunc);
    f << script;
  }
  auto r = runCommand({"nft", "-f", path}, std::chrono::seconds(20));
  std::remove(path.c_str());
  if (r.exitCode != 0) return Unexpected("nft: " + r.output);
  applied_ = true;
  forgetFlows({"-p", "udp", "--orig-dst", rules.clusterDns, "--orig-port-dst", "53"});
  return {};
}

void NodeNetfilter::forgetFlows(const std::vector<std::string>& filter) {
  std::vector<std::string> cmd = {"conntrack", "-D"};
  cmd.insert(cmd.end(), filter.begin(), filter.end());
  auto r = runCommand(cmd, std::chrono::seconds(5));
  // 1: nothing matched.
  if (r.exitCode != 0 && r.exitCode != 1)
    PODIUM_LOG(Warn) << "conntrack -D " << strings::join(filter, " ") << ": " << r.output;
}

NodeNetfilter::~NodeNetfilter() {
  remove();
  if (lockFd_ >= 0) ::close(lockFd_);
}

Expected<std::string, std::string> NodeNetfilter::makeBridge(const std::string& podCidr) {
  auto range = net::Cidr::parse(podCidr);
  if (!range || range->bits > 30) return Unexpected("pod range " + podCidr + " is too small");
  std::string gateway = net::formatIpv4(range->base + 1);
  auto ip = [](std::vector<std::string> args) {
    args.insert(args.begin(), "ip");
    return runCommand(args, std::chrono::seconds(10));
  };
  if (ip({"link", "show", "dev", bridge_}).exitCode != 0)
    if (auto r = ip({"link", "add", bridge_, "type", "bridge"}); r.exitCode != 0)
      return Unexpected("ip link add " + bridge_ + ": " + r.output);
  for (const std::string& a :
       {gateway + "/" + std::to_string(range->bits), std::string(mesh::kProbeSource) + "/32"})
    if (auto r = ip({"addr", "replace", a, "dev", bridge_}); r.exitCode != 0)
      return Unexpected("ip addr replace " + a + " dev " + bridge_ + ": " + r.output);
  if (auto r = ip({"link", "set", bridge_, "up"}); r.exitCode != 0)
    return Unexpected("ip link set " + bridge_ + " up: " + r.output);
  return gateway;
}

Expected<void, std::string> NodeNetfilter::claim() {
  std::error_code ec;
  std::filesystem::create_directories(kLockDir, ec);
  // One bridge of that name per network namespace: the lock is per namespace too (hosts of a
  // test bed are network namespaces of one machine sharing /run).
  struct stat ns {};
  std::string scope = stat("/proc/self/ns/net", &ns) == 0 ? std::to_string(ns.st_ino) : "net";
  std::string path = std::string(kLockDir) + "/" + bridge_ + "." + scope + ".lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Unexpected("open " + path + ": " + strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    std::string holder = n > 0 ? std::string(strings::trim(std::string(buf, n))) : "unknown";
    return Unexpected("the pod network " + bridge_ +
                      " is in use by another podium node agent on this machine (pid " + holder +
                      "): stop it, or give this node a pod range of its own (--pod-cidr)");
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0)
    PODIUM_LOG(Warn) << "could not write the pid to " << path;
  lockFd_ = fd;
  return {};
}

void NodeNetfilter::forgetAddress(const std::string& ip) {
  auto r = runCommand({"ip", "neigh", "flush", "to", ip, "dev", bridge_}, std::chrono::seconds(5));
  if (r.exitCode != 0) PODIUM_LOG(Warn) << "ip neigh flush " << ip << ": " << r.output;
  forgetFlows({"--orig-src", ip});
  forgetFlows({"--orig-dst", ip});
}

void NodeNetfilter::remove() {
  if (!applied_) return;
  applied_ = false;
  auto r = runCommand({"nft", "delete", "table", "ip", table_}, std::chrono::seconds(20));
  if (r.exitCode != 0) PODIUM_LOG(Warn) << "nft delete table " << table_ << ": " << r.output;
}

}  // namespace podium::node
