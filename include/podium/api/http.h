#pragma once

// The HTTP boundary of the API server: requests in, responses (or long-lived streams) out.
// The transport (TLS, HTTP/1.1 framing, keep-alive, chunking) lives in HttpServer; handlers are
// plain synchronous functions run on a worker pool, so they may block on the store.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "podium/common/expected.h"

namespace podium::api {

struct HttpRequest {
  std::string method;                        // "GET"
  std::string target;                        // raw request target ("/api/v1/pods?limit=500")
  std::string path;                          // percent-decoded path
  std::map<std::string, std::string> query;  // decoded; first value wins
  std::vector<std::pair<std::string, std::string>> queryList;  // every parameter, in order
  std::map<std::string, std::string> headers;  // lower-case names; repeated fields joined by ", "
  std::vector<std::pair<std::string, std::string>> rawHeaders;  // as received, repeats kept
  std::string body;
  // TLS client certificate, set only when it verified against the cluster CA.
  bool clientCertVerified = false;
  std::string clientCommonName;
  std::vector<std::string> clientOrganizations;
  std::string remoteAddress;

  std::string header(const std::string& lowerName) const;
  std::string param(const std::string& name) const;
  bool hasParam(const std::string& name) const { return query.count(name) > 0; }
  // Every value of a repeated parameter ("command=sh&command=-c").
  std::vector<std::string> params(const std::string& name) const;
};

// A response body produced over time (watch streams, log follows). Polled by the transport on
// its own thread; the handler's side pushes data and calls the wake function.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // Called once before the first poll with the function that makes the transport poll soon.
  virtual void start(std::function<void()> wake) = 0;
  // Appends whatever is ready to `out`. Returns false when the stream has ended (`out` is
  // still written first).
  virtual bool poll(std::string& out) = 0;
  // Milliseconds until poll() must run even without a wake-up (heartbeats, timeouts).
  virtual int64_t pollIntervalMs() = 0;
  // The client went away or the server is stopping; release resources.
  virtual void cancel() = 0;
};

// Which of Kubernetes' stream channels a remote command (exec, attach) uses.
struct StreamChannels {
  bool stdin = false;
  bool stdout = false;
  bool stderr = false;
  bool tty = false;
};

// An HTTP upgrade (WebSocket, SPDY) handed on to another server: the transport sends
// `request` to host:port, relays the answer to the client and, on 101, joins both connections
// until either side closes (what the kubelet does for exec, attach and port-forward).
struct UpgradeTarget {
  std::string host;
  uint16_t port = 0;
  bool tls = false;     // TLS to the upstream (its certificate is not verified, as upstream's
                        // API server does not verify kubelets unless configured to)
  std::string request;  // the complete HTTP/1.1 request head to send upstream
  // How the two connections are joined after the upstream's 101.
  enum class Bridge {
    kBytes,          // byte for byte: both ends speak the same protocol
    kRemoteCommand,  // the client's WebSocket v5.channel.k8s.io ends here; `request` asks the
                     // upstream for SPDY v4.channel.k8s.io and the channels are carried across
    kTunnel,         // the client's WebSocket carries a SPDY session (SPDY/3.1+portforward.k8s.io)
                     // whose bytes go to the upstream's SPDY upgrade unchanged
  };
  Bridge bridge = Bridge::kBytes;
  std::string clientProtocol;  // the WebSocket subprotocol answered to the client (bridges)
  StreamChannels channels;     // kRemoteCommand: the streams to open upstream
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::shared_ptr<ResponseStream> stream;  // if set, the body is streamed (chunked) instead
  std::shared_ptr<UpgradeTarget> upgrade;  // if set, the connection is proxied instead

  void setHeader(const std::string& name, const std::string& value);
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  virtual HttpResponse handle(const HttpRequest& request) = 0;
};

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;              // 0 picks a free port (tests)
  std::string certFile, keyFile;  // serving certificate (PEM)
  std::string clientCaFile;       // CA that client certificates must chain to ("" = none)
  int ioThreads = 2;
  int workerThreads = 64;
  size_t maxBodyBytes = 3 * 1024 * 1024 + 4096;
};

class HttpServer {
 public:
  virtual ~HttpServer() = default;
  virtual uint16_t port() const = 0;
  // Stops accepting, ends open streams and joins the threads.
  virtual void stop() = 0;
};

Expected<std::unique_ptr<HttpServer>, std::string> startHttpServer(const HttpServerOptions& options,
                                                                   HttpHandler& handler);

// Splits a request target into path and decoded query parameters.
void parseTarget(const std::string& target, std::string* path,
                 std::map<std::string, std::string>* query);

}  // namespace podium::api
