#pragma once

// The Kubernetes REST API over HTTP: authentication, routing of /version, discovery,
// OpenAPI and resource paths to Storage, content negotiation (JSON, YAML, protobuf bodies;
// Table and PartialObjectMetadata responses) and watch streams.

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "podium/api/http.h"
#include "podium/api/node_connector.h"
#include "podium/api/storage.h"
#include "ui_server.h"

namespace podium::api {

struct Credentials {
  std::vector<std::string> bearerTokens;  // accepted admin tokens
};

class HttpApi : public HttpHandler {
 public:
  // `bookmarkInterval`: how often an idle watch that asked for bookmarks gets one.
  HttpApi(Storage& storage, Credentials credentials, Clock& clock, std::string serverAddress,
          std::chrono::milliseconds bookmarkInterval = std::chrono::seconds(60));
  HttpResponse handle(const HttpRequest& request) override;

  // Set once the API is ready to serve (readyz reports 200 afterwards).
  void setReady(bool ready) { ready_ = ready; }
  // The way to reach pods on `node` for logs, exec, attach and port-forward.
  void setNodeConnector(const std::string& node, NodeConnector* connector);
  // Argo CD's API paths go to `handler` (set once, before serving): POST /api/webhook without
  // API credentials (git hosts sign their pushes instead), /api/v1/applications/... with them.
  void setArgoCdHandler(std::function<HttpResponse(const HttpRequest&)> handler) {
    argoCd_ = std::move(handler);
  }
  // The web UI under /ui/ (set once, before serving); its sessions count as credentials.
  void setUi(std::unique_ptr<UiServer> ui) { ui_ = std::move(ui); }

 private:
  struct Identity {
    std::string user;
    std::vector<std::string> groups;
  };
  std::optional<Identity> authenticate(const HttpRequest& req) const;
  HttpResponse route(const HttpRequest& req);
  HttpResponse aggregated(const HttpRequest& req, AggregatedApi& api);
  HttpResponse discovery(const HttpRequest& req, const std::vector<std::string>& parts);
  HttpResponse openapi(const HttpRequest& req);
  // Resource paths, dispatched by verb (http_resource.cc).
  struct ResourceCall;
  HttpResponse resource(const HttpRequest& req);
  HttpResponse getResource(const ResourceCall& c);
  HttpResponse listResources(const ResourceCall& c);
  HttpResponse watchResources(const ResourceCall& c);
  HttpResponse createResource(const ResourceCall& c);
  HttpResponse updateResource(const ResourceCall& c);
  HttpResponse patchResource(const ResourceCall& c);
  HttpResponse deleteResources(const ResourceCall& c);
  HttpResponse objectResponse(const ResourceCall& c, int status, const Json& obj,
                              const std::vector<std::string>& warnings);
  HttpResponse podStream(const HttpRequest& req, const std::string& ns, const std::string& name,
                         const std::string& sub);
  HttpResponse remotePodStream(const HttpRequest& req, const std::string& ns,
                               const std::string& name, const std::string& sub,
                               const std::string& node, const std::string& container);
  // Relays the client's request (an upgrade, or a GET read to its end) to a node's agent.
  HttpResponse relayToAgent(const HttpRequest& req, const std::string& node,
                            const std::string& path, bool closeAfter);
  HttpResponse nodeProxy(const HttpRequest& req, const std::string& node, const std::string& path);
  NodeConnector* connectorFor(const std::string& node);

  Storage& storage_;
  std::chrono::milliseconds bookmarkInterval_;
  Credentials credentials_;
  Clock& clock_;
  std::string serverAddress_;
  std::atomic<bool> ready_{false};
  std::function<HttpResponse(const HttpRequest&)> argoCd_;
  std::unique_ptr<UiServer> ui_;

  struct OpenApiCache {
    uint64_t generation = 0;
    Json index;
    std::map<std::string, std::string> docs;  // gv path -> serialised document
  };
  std::mutex openapiMu_;  // guards openapi_
  OpenApiCache openapi_;
  std::mutex connectorsMu_;  // guards connectors_
  std::map<std::string, NodeConnector*> connectors_;
};

}  // namespace podium::api
