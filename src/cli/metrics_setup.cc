#include "metrics_setup.h"

#include "podium/api/tls.h"
#include "podium/client/local_client.h"
#include "podium/client/objects.h"
#include "podium/common/strings.h"

namespace podium::cli {

class ServerMetrics::Source : public metrics::NodeSource {
 public:
  Source(ServerMetrics& owner, std::unique_ptr<metrics::NodeSource> remote)
      : owner_(owner), remote_(std::move(remote)) {}
  Expected<Json, std::string> get(const Json& node, const std::string& path) override {
    node::Agent* local = owner_.local_;
    if (local && local->nodeName() == client::nameOf(node)) {
      if (path == "/stats/summary") return local->statsSummary();
      if (path == "/stats/mesh") return local->meshStats();
      if (path.rfind("/stats/traces", 0) == 0) {
        auto q = path.find("?traceId=");
        return local->recentSpans(q == std::string::npos ? "" : path.substr(q + 9));
      }
      return Unexpected("no such node endpoint: " + path);
    }
    return remote_->get(node, path);
  }

 private:
  ServerMetrics& owner_;
  std::unique_ptr<metrics::NodeSource> remote_;
};

void ServerMetrics::stop() {
  local_ = nullptr;
  if (server_) server_->stop();
}

Expected<std::unique_ptr<ServerMetrics>, std::string> startServerMetrics(
    api::ApiServer& server, const std::string& dataDir) {
  auto token = api::tls::readFile(dataDir + "/tls/admin.token");
  if (!token) return Unexpected("metrics: " + token.error());
  auto m = std::make_unique<ServerMetrics>();
  m->source_ = std::make_unique<ServerMetrics::Source>(
      *m, metrics::httpsNodeSource(std::string(strings::trim(*token))));
  m->client_ = client::newLocalClient(server.storage(), "podium-metrics");
  auto started = metrics::startMetricsServer(*m->client_, *m->source_);
  if (!started) return Unexpected("metrics: " + started.error());
  m->server_ = std::move(*started);
  server.storage().registry().addAggregatedApi(m->server_->resourceMetrics());
  server.storage().registry().addAggregatedApi(m->server_->customMetrics());
  server.storage().registry().addAggregatedApi(m->server_->meshGraph());
  return m;
}

}  // namespace podium::cli
