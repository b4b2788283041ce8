// The cluster DNS server: one UDP socket and one TCP listener, answered from informer caches;
// names outside the zone go to the host's resolvers on a small pool of forwarding threads.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <thread>

#include "podium/client/informer.h"
#include "podium/common/log.h"
#include "podium/common/net.h"
#include "podium/common/strings.h"
#include "podium/dns/cluster_dns.h"

namespace podium::dns {

namespace {

namespace res = client::resources;

std::vector<std::string> hostResolvers() {
  std::vector<std::string> out;
  std::ifstream f("/etc/resolv.conf");
  std::string line;
  while (std::getline(f, line)) {
    auto parts = strings::split(std::string(strings::trim(line)), ' ');
    uint32_t ip;
    if (parts.size() >= 2 && parts[0] == "nameserver" && net::parseIpv4(parts[1], &ip))
      out.push_back(parts[1]);
  }
  return out;
}

// Sends the query to each upstream in turn (UDP, 2 s each); "" if none answers.
std::string forwardUdp(std::string_view packet, const std::vector<std::string>& upstreams) {
  for (const auto& up : upstreams) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(53);
    inet_pton(AF_INET, up.c_str(), &a.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        send(fd, packet.data(), packet.size(), 0) == static_cast<ssize_t>(packet.size())) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 2000) == 1) {
        char buf[65536];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n >= 12 && buf[0] == packet[0] && buf[1] == packet[1]) {
          close(fd);
          return std::string(buf, static_cast<size_t>(n));
        }
      }
    }
    close(fd);
  }
  return "";
}

class Server : public ClusterDns {
 public:
  Server(client::Client& client, ClusterDnsOptions o)
      : opts_(std::move(o)),
        services_(client, res::kServices),
        endpoints_(client, res::kEndpoints),
        zone_(
            opts_.domain,
            [this](const std::string& ns, const std::string& n) { return services_.get(ns, n); },
            [this](const std::string& ns, const std::string& n) { return endpoints_.get(ns, n); },
            [this] { return services_.list(); }) {
    if (opts_.upstreams.empty()) opts_.upstreams = hostResolvers();
  }
  ~Server() override { stop(); }

  Expected<void, std::string> start() {
    services_.start();
    endpoints_.start();
    services_.waitForSync(std::chrono::seconds(30));
    endpoints_.waitForSync(std::chrono::seconds(30));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(opts_.port);
    if (inet_pton(AF_INET, opts_.address.c_str(), &a.sin_addr) != 1)
      return Unexpected("bad DNS listen address " + opts_.address);
    // UDP and TCP on one port. With port 0 the kernel picks UDP's, which TCP may have in use
    // (a connection's local port): then another pick.
    for (int tries = 0;; ++tries) {
      auto bound = bindBoth(a);
      if (bound) break;
      if (opts_.port != 0 || tries == 20) return Unexpected(bound.error());
      a.sin_port = 0;
    }
    if (pipe2(wake_, O_CLOEXEC) != 0) return Unexpected(std::string("DNS: pipe failed"));
    threads_.emplace_back([this] { udpLoop(); });
    threads_.emplace_back([this] { tcpLoop(); });
    for (int i = 0; i < 4; ++i) threads_.emplace_back([this] { forwardLoop(); });
    PODIUM_LOG(Info) << "cluster DNS on " << opts_.address << ":" << port_ << " (zone "
                     << opts_.domain << ", " << opts_.upstreams.size() << " upstream resolvers)";
    return {};
  }

  uint16_t port() const override { return port_; }

  // Binds udp_ and tcp_ (listening) to `a`; on failure both are closed.
  Expected<void, std::string> bindBoth(sockaddr_in a) {
    auto fail = [&](const char* what) {
      std::string msg = std::string("DNS: bind ") + what + " " + opts_.address + ":" +
                        std::to_string(ntohs(a.sin_port)) + ": " + strerror(errno);
      for (int* fd : {&udp_, &tcp_}) {
        if (*fd >= 0) ::close(*fd);
        *fd = -1;
      }
      return Unexpected(msg);
    };
    int one = 1;
    udp_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    setsockopt(udp_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(udp_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return fail("udp");
    socklen_t len = sizeof a;
    getsockname(udp_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    tcp_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(tcp_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(tcp_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(tcp_, 64) != 0)
      return fail("tcp");
    return {};
  }

  void stop() override {
    if (stopping_.exchange(true)) return;
    if (wake_[1] >= 0) (void)!write(wake_[1], "x", 1);
    {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    }
    for (auto& t : threads_) t.join();
    threads_.clear();
    // TCP connections end within their 5 s read timeout.
    for (int i = 0; i < 600 && tcpActive_ > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    for (int fd : {udp_, tcp_, wake_[0], wake_[1]})
      if (fd >= 0) close(fd);
    udp_ = tcp_ = wake_[0] = wake_[1] = -1;
    services_.stop();
    endpoints_.stop();
  }

 private:
  struct Pending {
    std::string packet;
    sockaddr_in from;
  };

  void udpLoop() {
    char buf[65536];
    while (!stopping_) {
      pollfd p[2] = {{udp_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (poll(p, 2, -1) <= 0 || p[1].revents) continue;
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ssize_t n = recvfrom(udp_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0) continue;
      std::string_view packet(buf, static_cast<size_t>(n));
      bool forwarded = false;
      std::string answer = handleQuery(
          packet, zone_,
          [&](std::string_view) {
            // Forwarding may take seconds: hand it to the forwarders, answer later.
            std::lock_guard<std::mutex> lock(mu_);
            if (pending_.size() < 1024) pending_.push_back({std::string(packet), from});
            cv_.notify_one();
            forwarded = true;
            return std::string("-");
          },
          512);
      if (forwarded || answer.empty()) continue;
      sendto(udp_, answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }

  void forwardLoop() {
    while (true) {
      Pending p;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
        if (stopping_) return;
        p = std::move(pending_.front());
        pending_.pop_front();
      }
      std::string answer = forwardUdp(p.packet, opts_.upstreams);
      if (answer.empty()) {
        answer = handleQuery(p.packet, zone_, nullptr, 512);  // SERVFAIL
      }
      sendto(udp_, answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&p.from),
             sizeof p.from);
    }
  }

  // DNS over TCP: 2-byte length prefix per message; a connection gets 5 s per message.
  void tcpLoop() {
    while (!stopping_) {
      pollfd p[2] = {{tcp_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (poll(p, 2, -1) <= 0 || p[1].revents) continue;
      int fd = accept4(tcp_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++tcpActive_;
      std::thread([this, fd] {
        serveTcp(fd);
        --tcpActive_;
      }).detach();
    }
  }

  void serveTcp(int fd) {
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    auto readFull = [&](char* out, size_t n) {
      size_t got = 0;
      while (got < n) {
        ssize_t r = read(fd, out + got, n - got);
        if (r <= 0) return false;
        got += static_cast<size_t>(r);
      }
      return true;
    };
    unsigned char lenBuf[2];
    while (!stopping_ && readFull(reinterpret_cast<char*>(lenBuf), 2)) {
      size_t len = (static_cast<size_t>(lenBuf[0]) << 8) | lenBuf[1];
      std::string packet(len, '\0');
      if (!readFull(packet.data(), len)) break;
      std::string answer = handleQuery(
          packet, zone_, [&](std::string_view q) { return forwardUdp(q, opts_.upstreams); }, 65535);
      if (answer.empty()) break;
      std::string framed;
      framed += static_cast<char>(answer.size() >> 8);
      framed += static_cast<char>(answer.size() & 0xFF);
      framed += answer;
      if (write(fd, framed.data(), framed.size()) != static_cast<ssize_t>(framed.size())) break;
    }
    close(fd);
  }

  ClusterDnsOptions opts_;
  client::Informer services_;
  client::Informer endpoints_;
  ClusterZone zone_;
  int udp_ = -1, tcp_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> tcpActive_{0};
  std::mutex mu_;  // guards pending_
  std::condition_variable cv_;
  std::deque<Pending> pending_;
  std::vector<std::thread> threads_;
};

}  // namespace

Expected<std::unique_ptr<ClusterDns>, std::string> startClusterDns(
    client::Client& client, const ClusterDnsOptions& options) {
  auto s = std::make_unique<Server>(client, options);
  if (auto r = s->start(); !r) return Unexpected(r.error());
  return std::unique_ptr<ClusterDns>(std::move(s));
}

}  // namespace podium::dns
