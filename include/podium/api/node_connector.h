#pragma once

// How the API server reaches the node a pod runs on for pods/log, pods/exec, pods/attach and
// pods/portforward (the kubelet's role upstream). A node agent in the server process
// implements it directly.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "podium/api/http.h"
#include "podium/api/status.h"

namespace podium::api {

struct LogOptions {
  std::string container;
  bool follow = false;
  bool previous = false;
  bool timestamps = false;
  std::optional<int64_t> tailLines;
  std::optional<int64_t> sinceSeconds;
  std::optional<std::chrono::system_clock::time_point> sinceTime;
  std::optional<int64_t> limitBytes;
};

struct ExecOptions {
  std::string container;
  std::vector<std::string> command;
  bool stdin = false, stdout = false, stderr = false, tty = false;
};

class NodeConnector {
 public:
  virtual ~NodeConnector() = default;
  // A text/plain stream of the container's log.
  virtual Expected<std::shared_ptr<ResponseStream>, ApiError> logs(const Json& pod,
                                                                   const LogOptions& options) = 0;
  // URLs of the runtime's streaming server for one session ("http://127.0.0.1:port/exec/token").
  virtual Expected<std::string, ApiError> exec(const Json& pod, const ExecOptions& options) = 0;
  virtual Expected<std::string, ApiError> attach(const Json& pod, const ExecOptions& options) = 0;
  virtual Expected<std::string, ApiError> portForward(const Json& pod,
                                                      const std::vector<int32_t>& ports) = 0;
  // A GET of one of the node's own endpoints ("/metrics", "/stats/summary", "/healthz"), as its
  // agent serves them on the kubelet's port (nodes/proxy).
  virtual Expected<HttpResponse, ApiError> nodeEndpoint(const std::string& path) = 0;
};

// Reading the options of pods/log, exec and attach requests (the same query parameters reach
// the API server and the node).
LogOptions logOptionsFrom(const HttpRequest& req, const std::string& container);
ExecOptions execOptionsFrom(const HttpRequest& req, const std::string& container);
// pods/portforward's `ports` (repeated and/or comma-separated).
std::vector<int32_t> portsFrom(const HttpRequest& req);
// What a CONNECT to pods/<sub> is admitted with: PodExecOptions, PodAttachOptions or
// PodPortForwardOptions, as Kubernetes sends them to admission webhooks.
Json connectOptions(const HttpRequest& req, const std::string& sub, const ExecOptions& exec);

// The client's upgrade headers (Connection, Upgrade, Sec-WebSocket-*, X-Stream-Protocol-Version)
// as lines of a request head sent on to a node or runtime.
std::string upgradeHeaders(const HttpRequest& req);

// The client's upgrade request re-addressed to a runtime streaming URL
// ("http://127.0.0.1:port/exec/token"). The runtime speaks SPDY (v4 and older for exec and
// attach, portforward.k8s.io) and WebSocket v4; what it lacks is bridged, as upstream's API
// server does: kubectl's WebSocket v5 exec and attach become SPDY v4 upstream (so stdin can
// end), its WebSocket port-forward tunnel is unwrapped onto a SPDY upgrade. Anything else is
// proxied byte for byte. `exec` names the streams of an exec or attach (null for portforward).
Expected<std::shared_ptr<UpgradeTarget>, ApiError> upgradeToRuntime(const HttpRequest& req,
                                                                    const std::string& url,
                                                                    const std::string& sub,
                                                                    const ExecOptions* exec);

}  // namespace podium::api
