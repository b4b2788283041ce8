#pragma once

// Servers the API server calls on a client's behalf: admission webhooks and APIServices'
// backends. One HTTPS request per call (Kubernetes keeps connections alive; a backend's latency
// is its own), the server's certificate verified against a CA bundle (or the system's roots)
// for the name the configuration gives, the whole exchange bounded by a timeout.

#include <chrono>
#include <map>
#include <string>

#include "podium/api/cacher.h"
#include "podium/common/expected.h"

namespace podium::api {

struct Backend {
  std::string host;  // address to connect to
  int port = 443;
  std::string serverName;  // the name its certificate must carry (SNI and verification)
  std::string caBundle;    // PEM; empty: the system's roots
  bool insecure = false;   // no verification (an APIService's insecureSkipTLSVerify)
};

struct BackendReply {
  int status = 0;
  std::string contentType;
  std::string body;
};

// `method` `target` (path and query) with `body`; `headers` are added as given.
Expected<BackendReply, std::string> httpsRequest(const Backend& backend, const std::string& method,
                                                 const std::string& target, const std::string& body,
                                                 const std::map<std::string, std::string>& headers,
                                                 std::chrono::milliseconds timeout);

// The PEM of `owner`'s caBundle (a bytes field, base64 on the wire and checked by the schema);
// "" when absent.
std::string caBundleOf(const Json& owner);

// A Service's backend for its `port`: a ready endpoint of it (the API server's endpoint
// routing), its certificate checked for <name>.<ns>.svc.
Expected<Backend, std::string> serviceBackend(const Cacher& cacher, const std::string& ns,
                                              const std::string& name, int64_t port);

}  // namespace podium::api
