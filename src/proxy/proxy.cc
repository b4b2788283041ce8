#include "podium/proxy/proxy.h"

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "http_conn.h"
#include "podium/common/log.h"
#include "podium/common/net.h"
#include "podium/common/strings.h"
#include "worker.h"

namespace podium::proxy {

namespace {

class ProxyImpl : public Proxy {
 public:
  explicit ProxyImpl(ProxyOptions o) : opts_(std::move(o)) {}
  ~ProxyImpl() override { stop(); }

  Expected<void, std::string> start() {
    std::string err;
    size_t workers = static_cast<size_t>(std::max(1, opts_.workers));
    // One listener per worker (SO_REUSEPORT). An ingress port something else holds is logged
    // and left off: the node and its mesh still run, as a cluster does when its ingress
    // controller cannot bind.
    auto openAll = [&](uint16_t port, const char* what) {
      std::vector<int> fds;
      for (size_t i = 0; i < workers; ++i) {
        int fd = listenSocket(opts_.address, port, &err);
        if (fd < 0) {
          for (int f : fds) close(f);
          PODIUM_LOG(Error) << "proxy: no " << what << " listener: " << err;
          return std::vector<int>{};
        }
        port = localPort(fd);
        fds.push_back(fd);
      }
      return fds;
    };
    std::vector<int> http =
        opts_.ingressHttpPort ? openAll(opts_.ingressHttpPort, "ingress HTTP") : std::vector<int>{};
    std::vector<int> https = opts_.ingressHttpsPort
                                 ? openAll(opts_.ingressHttpsPort, "ingress HTTPS")
                                 : std::vector<int>{};
    if (!https.empty()) {
      front_ = newFrontContext(
          [](void* self) {
            auto config = static_cast<ProxyImpl*>(self)->state_.config();
            return std::shared_ptr<const TlsCerts>(config, &config->tls());
          },
          this);
      if (!front_) return Unexpected(std::string("TLS context: out of memory"));
    }
    uint16_t capture = opts_.capturePort;
    for (size_t i = 0; i < workers; ++i) {
      int fd = listenSocket(opts_.address, capture, &err);
      if (fd < 0) return Unexpected("capture listener: " + err);
      capture = localPort(fd);
      auto w = std::make_unique<Worker>(state_, fd);
      Worker* wp = w.get();
      if (!http.empty()) {
        uint16_t port = localPort(http[i]);
        w->addListener(http[i], [wp, port](int c, const sockaddr_in& peer) {
          startIngressConnection(*wp, c, port, ntohl(peer.sin_addr.s_addr));
        });
      }
      if (!https.empty()) {
        uint16_t port = localPort(https[i]);
        SSL_CTX* front = front_;
        w->addListener(https[i], [wp, port, front](int c, const sockaddr_in& peer) {
          startIngressConnection(*wp, c, port, ntohl(peer.sin_addr.s_addr), front);
        });
      }
      workers_.push_back(std::move(w));
    }
    ingressPort_ = http.empty() ? 0 : localPort(http[0]);
    ingressTlsPort_ = https.empty() ? 0 : localPort(https[0]);
    capturePort_ = capture;
    metricsFd_ = listenSocket(opts_.address, opts_.metricsPort, &err);
    if (metricsFd_ < 0) return Unexpected("metrics listener: " + err);
    metricsPort_ = localPort(metricsFd_);
    for (auto& w : workers_) w->start();
    metricsThread_ = std::thread([this] { serveMetrics(); });
    state_.tracer.start(
        [this] {
          auto config = state_.config();
          return std::shared_ptr<const TracingConfig>(config, &config->tracing());
        },
        std::chrono::seconds(1));
    return {};
  }

  void update(const Json& snapshot) override {
    auto config = ProxyConfig::build(snapshot, opts_.clusterDomain);
    state_.setConfig(config);
    exposeServicePorts(*config);
    exposeMeshPods(*config);
    // What the configuration now served was built from (GET /config): tests and operators wait
    // on it instead of guessing when a change arrived.
    std::lock_guard<std::mutex> lock(meshMu_);
    ++generation_;
    versions_ = json::at(snapshot, {"versions"});
  }
  uint16_t capturePort() const override { return capturePort_; }
  uint16_t metricsPort() const override { return metricsPort_; }
  uint16_t ingressHttpPort() const override { return ingressPort_; }
  uint16_t ingressHttpsPort() const override { return ingressTlsPort_; }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    for (auto& w : workers_) w->stop();
    workers_.clear();
    state_.tracer.stop();
    if (metricsFd_ >= 0) shutdown(metricsFd_, SHUT_RDWR);
    if (metricsThread_.joinable()) metricsThread_.join();
    if (metricsFd_ >= 0) close(metricsFd_);
    metricsFd_ = -1;
    if (front_) SSL_CTX_free(front_);
    front_ = nullptr;
  }

 private:
  // A minimal HTTP server for Prometheus: GET /metrics and /healthz, one request per connection.
  void serveMetrics() {
    int ticks = 0;
    while (!stopped_) {
      pollfd p{metricsFd_, POLLIN, 0};
      // The access log (stdout) reaches its file within a second, as Envoy's flush interval
      // does, without a write per request.
      if (++ticks % 5 == 0) fflush(stdout);
      if (poll(&p, 1, 200) <= 0) continue;
      int c = accept4(metricsFd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      timeval tv{2, 0};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      std::string path = req.substr(0, req.find("\r\n"));
      std::string body, type = "text/plain; version=0.0.4; charset=utf-8";
      int status = 200;
      if (path.rfind("GET /metrics", 0) == 0) {
        body = state_.metrics.render() + state_.tracer.renderMetrics();
      } else if (path.rfind("GET /stats/traces", 0) == 0) {
        // Recent spans (Zipkin JSON v2), of one trace with ?traceId=ID.
        std::string traceId;
        if (auto q = path.find("traceId="); q != std::string::npos)
          traceId = path.substr(q + 8, path.find_first_of("& ", q + 8) - q - 8);
        body = state_.tracer.renderRecent(traceId);
        type = "application/json";
      } else if (path.rfind("GET /stats/pods", 0) == 0) {
        body = state_.metrics.renderPods();
        type = "application/json";
      } else if (path.rfind("GET /stats/edges", 0) == 0) {
        body = state_.metrics.renderEdges();
        type = "application/json";
      } else if (path.rfind("GET /mesh/pods", 0) == 0) {
        // The meshed pods whose listeners are open (the agent waits for a new pod's here).
        std::lock_guard<std::mutex> lock(meshMu_);
        Json ips = Json::array();
        for (const auto& [ip, netns] : meshPods_) ips.push_back(net::formatIpv4(ip));
        body = json::dump(ips) + "\n";
        type = "application/json";
      } else if (path.rfind("GET /config", 0) == 0) {
        // The configuration served: how many snapshots it took, and the resourceVersion of each
        // kind the last one included (every change up to it is in).
        std::lock_guard<std::mutex> lock(meshMu_);
        body = json::dump(Json{{"generation", generation_}, {"versions", versions_}}) + "\n";
        type = "application/json";
      } else if (path.rfind("GET /healthz", 0) == 0 || path.rfind("GET /ready", 0) == 0)
        body = "ok\n";
      else
        status = 404, body = "not found\n";
      std::string resp = "HTTP/1.1 " + std::to_string(status) +
                         (status == 200 ? " OK" : " Not Found") + "\r\nContent-Type: " + type +
                         "\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nConnection: close\r\n\r\n" + body;
      size_t off = 0;
      while (off < resp.size()) {
        ssize_t n = send(c, resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      close(c);
    }
  }

  // Opens a listener (one per worker) for each host port the config exposes and closes those
  // no longer exposed. A port something else holds is tried again with the next snapshot.
  void exposeServicePorts(const ProxyConfig& config) {
    for (auto it = exposed_.begin(); it != exposed_.end();) {
      if (config.exposed().count(*it)) {
        ++it;
        continue;
      }
      for (auto& w : workers_) w->removeServicePort(*it);
      PODIUM_LOG(Info) << "proxy: closed service port " << *it;
      it = exposed_.erase(it);
    }
    for (const auto& [port, e] : config.exposed()) {
      if (exposed_.count(port) || port == capturePort_ || port == ingressPort_ ||
          port == ingressTlsPort_ || port == metricsPort_)
        continue;
      std::vector<int> fds;
      std::string err;
      for (size_t i = 0; i < workers_.size(); ++i) {
        int fd = listenSocket(opts_.address, port, &err);
        if (fd < 0) break;
        fds.push_back(fd);
      }
      if (fds.size() != workers_.size()) {
        for (int fd : fds) close(fd);
        PODIUM_LOG(Warn) << "proxy: cannot serve port " << port << " for Service " << e.service->ns
                         << "/" << e.service->name << ": " << err;
        continue;
      }
      for (size_t i = 0; i < workers_.size(); ++i) workers_[i]->addServicePort(fds[i], port);
      exposed_.insert(port);
      PODIUM_LOG(Info) << "proxy: serving port " << port << " for Service " << e.service->ns << "/"
                       << e.service->name;
    }
  }

  // Opens each new meshed pod's listeners inside its network namespace (one pair per worker),
  // and closes those of pods that are gone.
  void exposeMeshPods(const ProxyConfig& config) {
    const auto& pods = config.mesh().pods();
    for (auto it = meshPods_.begin(); it != meshPods_.end();) {
      auto now = pods.find(it->first);
      if (now != pods.end() && now->second == it->second) {
        ++it;
        continue;
      }
      for (auto& w : workers_) w->removePodListeners(it->first);
      std::lock_guard<std::mutex> lock(meshMu_);
      it = meshPods_.erase(it);
    }
    for (const auto& [ip, netns] : pods) {
      if (meshPods_.count(ip)) continue;
      std::vector<int> out, in;
      std::string err;
      bool entered = inNetns(netns, [&] {
        for (size_t i = 0; i < workers_.size(); ++i) {
          int o = listenSocket("0.0.0.0", kMeshOutboundPort, &err);
          int n = o < 0 ? -1 : listenSocket("0.0.0.0", kMeshInboundPort, &err);
          if (n < 0) {
            if (o >= 0) close(o);
            break;
          }
          out.push_back(o);
          in.push_back(n);
        }
      });
      if (!entered || out.size() != workers_.size()) {
        for (int fd : out) close(fd);
        for (int fd : in) close(fd);
        PODIUM_LOG(Warn) << "proxy: cannot listen in the network namespace " << netns << ": "
                         << (entered ? err : std::string(strerror(errno)));
        continue;
      }
      for (size_t i = 0; i < workers_.size(); ++i) workers_[i]->addPodListeners(ip, out[i], in[i]);
      std::lock_guard<std::mutex> lock(meshMu_);
      meshPods_[ip] = netns;
    }
  }

  ProxyOptions opts_;
  ProxyState state_;
  std::mutex meshMu_;  // guards meshPods_, generation_, versions_ against the metrics thread
  uint64_t generation_ = 0;
  Json versions_ = Json::object();
  std::map<uint32_t, std::string> meshPods_;  // with listeners: IP -> network namespace
  std::set<uint16_t> exposed_;                // host ports with listeners on every worker
  std::vector<std::unique_ptr<Worker>> workers_;
  uint16_t capturePort_ = 0, metricsPort_ = 0, ingressPort_ = 0, ingressTlsPort_ = 0;
  SSL_CTX* front_ = nullptr;  // the HTTPS ingress listener's (SNI picks the certificate)
  int metricsFd_ = -1;
  std::thread metricsThread_;
  std::atomic<bool> stopped_{false};
};

const char* kUsage = R"(Usage: podium proxy [flags]

The node proxy. Reads cluster snapshots (one JSON document per line) on standard input and
exits when it closes; the node agent starts and feeds it.

Flags:
  --address ADDR           listen address (default 0.0.0.0)
  --capture-port PORT      redirected ClusterIP traffic (default 15001, 0: any)
  --ingress-http-port PORT the node's ingress listener for Gateways and Ingresses (default 0: off)
  --ingress-https-port PORT the same with TLS from the Gateways' and Ingresses' Secrets (0: off)
  --metrics-port PORT      Prometheus /metrics (default 15090, 0: any)
  --workers N              worker threads (default 1)
  --port-file FILE         write the ports in use here as JSON once listening
  --no-access-log          do not log requests
)";

}  // namespace

Expected<std::unique_ptr<Proxy>, std::string> startProxy(const ProxyOptions& options) {
  auto p = std::make_unique<ProxyImpl>(options);
  if (auto r = p->start(); !r) return Unexpected(r.error());
  return std::unique_ptr<Proxy>(std::move(p));
}

int proxyCommand(const std::vector<std::string>& args) {
  ProxyOptions o;
  std::string portFile;
  bool accessLog = true;
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&](const char* flag) -> std::optional<std::string> {
      std::string a = args[i];
      std::string f = std::string("--") + flag;
      if (a == f && i + 1 < args.size()) return args[++i];
      if (a.rfind(f + "=", 0) == 0) return a.substr(f.size() + 1);
      return std::nullopt;
    };
    auto port = [](const std::string& v) -> std::optional<uint16_t> {
      auto n = strings::parseInt(v);
      if (!n || *n < 0 || *n > 65535) return std::nullopt;
      return static_cast<uint16_t>(*n);
    };
    std::optional<std::string> v;
    if ((v = value("address")))
      o.address = *v;
    else if ((v = value("capture-port"))) {
      if (!port(*v)) return std::cerr << "podium proxy: bad --capture-port\n", 2;
      o.capturePort = *port(*v);
    } else if ((v = value("ingress-http-port"))) {
      if (!port(*v)) return std::cerr << "podium proxy: bad --ingress-http-port\n", 2;
      o.ingressHttpPort = *port(*v);
    } else if ((v = value("ingress-https-port"))) {
      if (!port(*v)) return std::cerr << "podium proxy: bad --ingress-https-port\n", 2;
      o.ingressHttpsPort = *port(*v);
    } else if ((v = value("metrics-port"))) {
      if (!port(*v)) return std::cerr << "podium proxy: bad --metrics-port\n", 2;
      o.metricsPort = *port(*v);
    } else if ((v = value("workers"))) {
      auto n = strings::parseInt(*v);
      if (!n || *n < 1 || *n > 64) return std::cerr << "podium proxy: bad --workers\n", 2;
      o.workers = static_cast<int>(*n);
    } else if ((v = value("port-file"))) {
      portFile = *v;
    } else if (args[i] == "--no-access-log") {
      accessLog = false;
    } else if (args[i] == "--help") {
      std::cout << kUsage;
      return 0;
    } else {
      std::cerr << "podium proxy: unknown flag " << args[i] << "\n\n" << kUsage;
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  setAccessLog(accessLog);
  auto proxy = startProxy(o);
  if (!proxy) {
    std::cerr << "podium proxy: " << proxy.error() << "\n";
    return 1;
  }
  if (!portFile.empty()) {
    Json ports = {{"capture", (*proxy)->capturePort()},
                  {"metrics", (*proxy)->metricsPort()},
                  {"ingressHttp", (*proxy)->ingressHttpPort()},
                  {"ingressHttps", (*proxy)->ingressHttpsPort()}};
    std::string tmp = portFile + ".tmp";
    std::ofstream(tmp) << ports.dump() << "\n";
    std::rename(tmp.c_str(), portFile.c_str());
  }
  PODIUM_LOG(Info) << "proxy listening: capture " << (*proxy)->capturePort() << ", metrics "
                   << (*proxy)->metricsPort() << ", ingress " << (*proxy)->ingressHttpPort() << "/"
                   << (*proxy)->ingressHttpsPort();
  // Snapshots, one per line, until the agent goes away.
  std::string line;
  while (std::getline(std::cin, line)) {
    auto parsed = json::parse(line);
    if (!parsed || !parsed->value.is_object()) {
      PODIUM_LOG(Warn) << "proxy: ignoring an unreadable snapshot";
      continue;
    }
    (*proxy)->update(parsed->value);
    fflush(stdout);
  }
  (*proxy)->stop();
  return 0;
}

}  // namespace podium::proxy
