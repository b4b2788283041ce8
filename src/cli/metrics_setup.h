#pragma once

// The metrics half of `podium server`: a metrics server reading this machine's agent in
// process and the other nodes' agents over HTTPS, its two APIs registered with the API server.

#include <atomic>
#include <memory>

#include "podium/api/server.h"
#include "podium/client/client.h"
#include "podium/metrics/metrics_server.h"
#include "podium/node/agent.h"

namespace podium::cli {

class ServerMetrics {
 public:
  ~ServerMetrics() { stop(); }
  // The in-process agent, read directly (nullptr: none, or it stopped).
  void setLocalAgent(node::Agent* agent) { local_ = agent; }
  void stop();

 private:
  friend Expected<std::unique_ptr<ServerMetrics>, std::string> startServerMetrics(
      api::ApiServer&, const std::string&);
  class Source;
  std::atomic<node::Agent*> local_{nullptr};
  std::unique_ptr<metrics::NodeSource> source_;
  client::ClientPtr client_;
  std::unique_ptr<metrics::MetricsServer> server_;
};

// `dataDir` holds tls/admin.token, the credential the agents accept.
Expected<std::unique_ptr<ServerMetrics>, std::string> startServerMetrics(
    api::ApiServer& server, const std::string& dataDir);

}  // namespace podium::cli
