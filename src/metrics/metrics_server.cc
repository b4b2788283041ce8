// The scrape loop: one thread per node reads its agent every interval, so a node that stopped
// answering delays only its own numbers; a thread of its own adds and retires the per-node
// threads as nodes come and go.
#include "podium/metrics/metrics_server.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "metrics_apis.h"
#include "podium/client/objects.h"
#include "podium/client/remote_client.h"
#include "podium/common/log.h"
#include "traces.h"

namespace podium::metrics {

namespace {

class HttpsNodeSource : public NodeSource {
 public:
  explicit HttpsNodeSource(std::string token) : token_(std::move(token)) {}

  Expected<Json, std::string> get(const Json& node, const std::string& path) override {
    std::string address;
    if (const Json* addrs = json::find(node, {"status", "addresses"}); addrs && addrs->is_array())
      for (const auto& a : *addrs)
        if (json::str(a, "type") == "InternalIP" && address.empty())
          address = json::str(a, "address");
    int64_t port = 0;
    if (const Json* ep = json::find(node, {"status", "daemonEndpoints", "kubeletEndpoint"}))
      port = json::integer(*ep, "Port");
    if (address.empty() || port <= 0 || port > 65535)
      return Unexpected("node " + client::nameOf(node) + " publishes no agent endpoint");
    std::string server = "https://" + address + ":" + std::to_string(port);
    client::Client* c = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& slot = clients_[server];
      if (!slot) {
        client::RemoteOptions o;
        o.server = server;
        o.token = token_;
        o.insecureSkipTlsVerify = true;
        o.timeout = std::chrono::milliseconds(2000);
        auto made = client::newRemoteClient(o);
        if (!made) return Unexpected(made.error());
        slot = std::move(*made);
      }
      c = slot.get();  // kept for the source's life; each node's thread uses its own
    }
    auto r = c->getRaw(path);
    if (!r) return Unexpected(r.error().message());
    return std::move(*r);
  }

 private:
  std::string token_;
  std::mutex mu_;  // guards clients_
  std::map<std::string, client::ClientPtr> clients_;
};

class MetricsServerImpl : public MetricsServer {
 public:
  MetricsServerImpl(client::Client& client, NodeSource& source, const MetricsOptions& o)
      : source_(source),
        options_(o),
        store_(std::make_shared<UsageStore>(o.rateWindow, 5 * o.scrapeInterval)),
        spans_(std::make_shared<SpanReader>(&source)),
        informers_(
            std::make_shared<client::InformerFactory>(client, std::chrono::seconds(0), *o.clock)) {
    ClusterView view{store_, spans_, informers_, o.clock};
    // Created before they start.
    view.nodes(), view.pods(), view.services(), view.virtualServices(), view.destinationRules();
    resourceApi_ = newResourceMetricsApi(view);
    customApi_ = newCustomMetricsApi(view);
    graphApi_ = newMeshGraphApi(view);
  }
  ~MetricsServerImpl() override { stop(); }

  void start() {
    informers_->start();
    informers_->waitForSync(std::chrono::seconds(10));
    manager_ = std::thread([this] { manage(); });
  }

  api::AggregatedApiPtr resourceMetrics() override { return resourceApi_; }
  api::AggregatedApiPtr customMetrics() override { return customApi_; }
  api::AggregatedApiPtr meshGraph() override { return graphApi_; }

  void stop() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    if (manager_.joinable()) manager_.join();
    for (auto& [name, t] : scrapers_) t.join();
    scrapers_.clear();
    informers_->stop();
    spans_->detach();
  }

 private:
  // Waits one interval; false once stopping.
  bool pause(std::chrono::steady_clock::time_point until) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, until, [&] { return stopping_; });
    return !stopping_;
  }

  void manage() {
    auto& nodes = informers_->informer(client::resources::kNodes);
    do {
      std::set<std::string> present;
      for (const auto& n : nodes.list()) present.insert(client::nameOf(*n));
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& name : retired_) {  // ended because its node did (or seemed to)
        scrapers_.at(name).join();
        scrapers_.erase(name);
        if (!present.count(name)) store_->forgetNode(name);
      }
      retired_.clear();
      for (const auto& name : present)
        if (!scrapers_.count(name))
          scrapers_.emplace(name, std::thread([this, name] { scrape(name); }));
    } while (pause(std::chrono::steady_clock::now() + options_.scrapeInterval));
  }

  // One node's thread: reads its agent every interval until the node is gone.
  void scrape(const std::string& name) {
    auto& nodes = informers_->informer(client::resources::kNodes);
    auto next = std::chrono::steady_clock::now();
    std::string lastError;
    for (;;) {
      auto node = nodes.get("", name);
      if (!node) break;
      for (const char* path : {"/stats/summary", "/stats/mesh"}) {
        auto doc = source_.get(*node, path);
        auto at = options_.clock->monotonic();
        if (!doc) {
          if (doc.error() != lastError)
            PODIUM_LOG(Warn) << "metrics: node " << name << " " << path << ": " << doc.error();
          lastError = doc.error();
          break;
        }
        lastError.clear();
        if (std::string(path) == "/stats/summary")
          store_->addSummary(name, *doc, at);
        else
          store_->addMesh(name, *doc, at);
      }
      next += options_.scrapeInterval;
      auto now = std::chrono::steady_clock::now();
      if (next < now) next = now;  // a slow node: no burst of catch-up reads
      if (!pause(next)) return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    retired_.insert(name);
  }

  NodeSource& source_;
  MetricsOptions options_;
  std::shared_ptr<UsageStore> store_;
  std::shared_ptr<SpanReader> spans_;
  std::shared_ptr<client::InformerFactory> informers_;
  api::AggregatedApiPtr resourceApi_, customApi_, graphApi_;
  std::mutex mu_;  // guards stopping_, scrapers_, retired_
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, std::thread> scrapers_;
  std::set<std::string> retired_;  // threads that ended because their node did
  std::thread manager_;
};

}  // namespace

std::unique_ptr<NodeSource> httpsNodeSource(std::string token) {
  return std::make_unique<HttpsNodeSource>(std::move(token));
}

Expected<std::unique_ptr<MetricsServer>, std::string> startMetricsServer(
    client::Client& client, NodeSource& source, const MetricsOptions& options) {
  if (options.scrapeInterval.count() <= 0)
    return Unexpected(std::string("the metrics scrape interval must be positive"));
  auto server = std::make_unique<MetricsServerImpl>(client, source, options);
  server->start();
  return std::unique_ptr<MetricsServer>(std::move(server));
}

}  // namespace podium::metrics
