#pragma once

// The API server as one unit: store, watch cache, resource registry, REST storage and the HTTPS
// listener, plus the cluster's credentials and kubeconfig in the data directory.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "podium/api/http.h"
#include "podium/api/node_connector.h"
#include "podium/api/storage.h"
#include "podium/common/expected.h"

namespace podium::api {

struct ServerOptions {
  std::string dataDir;
  std::string address = "127.0.0.1";
  // More names and addresses the serving certificate is for (beside 127.0.0.1, `address`, the
  // API's ClusterIP and the kubernetes.default names): what clients on other machines dial.
  std::vector<std::string> tlsSans;
  uint16_t port = 6443;  // 0 picks a free port
  bool fsyncEveryCommit = true;
  // "" keeps state in DATA/db/state.db (SQLite); "etcd://HOST:PORT[,HOST:PORT...]" on etcd,
  // with TLS from the three files when given.
  std::string datastore;
  std::string datastoreCaFile, datastoreCertFile, datastoreKeyFile;
  // On etcd: the secret the cluster's shared credentials are sealed with in the datastore, for
  // servers that join (see src/api/bootstrap.h). Empty: DATA/tls/bootstrap.secret, made by the
  // first server; a server joining with an empty tls/ must be given the first one's.
  std::string bootstrapSecret;
  std::chrono::milliseconds compactInterval{60000};
  std::chrono::milliseconds historyRetention{5 * 60000};
  size_t cacheHistoryEvents = 100000;
  std::string serviceCidr = "10.43.0.0/16";
  std::chrono::milliseconds watchBookmarkInterval{60000};
  int ioThreads = 2;
  int workerThreads = 64;
  // The web UI's built files (index.html, app.js, ...); "" = the `ui` folder beside the binary.
  std::string uiDir;
};

class ApiServer {
 public:
  virtual ~ApiServer() = default;
  virtual uint16_t port() const = 0;
  virtual std::string kubeconfigPath() const = 0;
  virtual Storage& storage() = 0;
  // Routes pods/log, exec, attach and portforward for pods on `node` (nullptr removes it).
  virtual void setNodeConnector(const std::string& node, NodeConnector* connector) = 0;
  // Serves Argo CD's API paths: POST /api/webhook (git push events; checked by the handler,
  // not by API credentials) and /api/v1/applications/... (with the API's credentials).
  virtual void setArgoCdHandler(std::function<HttpResponse(const HttpRequest&)> handler) = 0;
  // On etcd, once every shared credential exists (the mesh CA's included): seals DATA/tls into
  // the datastore for servers that join, unless another server already did. No-op on SQLite.
  virtual Expected<void, std::string> publishCredentials() = 0;
  // Stops serving and closes the store. Idempotent.
  virtual void stop() = 0;
};

// Opens (or creates) the data directory and starts serving; returns once the API is ready and
// the kubeconfig is written.
Expected<std::unique_ptr<ApiServer>, std::string> startApiServer(const ServerOptions& options);

}  // namespace podium::api
