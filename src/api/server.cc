#include "podium/api/server.h"

#include <openssl/rand.h>

#include <filesystem>

#include "api_services.h"
#include "bootstrap.h"
#include "conversion.h"
#include "http_api.h"
#include "podium/api/http.h"
#include "podium/api/tls.h"
#include "podium/common/log.h"
#include "podium/common/net.h"
#include "podium/common/strings.h"
#include "podium/store/compactor.h"
#include "podium/store/etcd_store.h"
#include "podium/store/sqlite_store.h"

extern const char kPodiumBuiltinCrds[];  // generated from manifests/crds.yaml

namespace podium::api {
namespace {

std::string randomToken() {
  unsigned char buf[24];
  RAND_bytes(buf, sizeof buf);
  std::string hex;
  static const char* digits = "0123456789abcdef";
  for (unsigned char c : buf) {
    hex += digits[c >> 4];
    hex += digits[c & 15];
  }
  return hex;
}

Expected<std::string, std::string> ensureToken(const std::string& path) {
  if (std::filesystem::exists(path)) {
    auto t = tls::readFile(path);
    if (!t) return t;
    return std::string(strings::trim(*t));
  }
  std::string token = randomToken();
  if (auto w = tls::writeFileAtomic(path, token + "\n", 0600); !w) return Unexpected(w.error());
  return token;
}

class Server : public ApiServer {
 public:
  explicit Server(ServerOptions options) : options_(std::move(options)) {}
  ~Server() override { stop(); }

  Expected<void, std::string> start() {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(options_.dataDir + "/db", ec);
    if (ec) return Unexpected("create " + options_.dataDir + ": " + ec.message());
    std::vector<std::string> ips = {"127.0.0.1", serviceIp(1)};
    std::vector<std::string> names = {"localhost", "kubernetes", "kubernetes.default",
                                      "kubernetes.default.svc",
                                      "kubernetes.default.svc.cluster.local"};
    if (options_.address != "0.0.0.0" && net::parseIpv4(options_.address))
      ips.push_back(options_.address);
    for (const auto& san : options_.tlsSans) (net::parseIpv4(san) ? ips : names).push_back(san);
    auto st = openStore();
    if (!st) return Unexpected("store: " + st.error());
    store_ = std::move(*st);
    // A server joining a cluster on etcd takes its credentials before it would make its own.
    if (!options_.datastore.empty()) {
      auto secret = bootstrapSecret();
      if (!secret) return Unexpected(secret.error());
      secret_ = *secret;
      if (auto r = bootstrap::restore(*store_, tlsDir(), secret_); !r) return r;
    }
    auto pki = tls::ensureClusterPki(tlsDir(), ips, names);
    if (!pki) return Unexpected(pki.error());
    pki_ = *pki;
    auto token = ensureToken(tlsDir() + "/admin.token");
    if (!token) return Unexpected(token.error());
    // The web UI's admin password, made like the token (Argo CD's initial admin secret).
    auto uiPassword = ensureToken(tlsDir() + "/ui-admin.password");
    if (!uiPassword) return Unexpected("UI password: " + uiPassword.error());

    cacher_ = std::make_unique<Cacher>(*store_, options_.cacheHistoryEvents);
    registry_ = std::make_unique<ResourceRegistry>();
    cacher_->addListener("/registry/apiextensions.k8s.io/customresourcedefinitions/",
                         [this](const std::vector<CacheEvent>&) { refreshCustomResources(); });
    apiServices_ = std::make_unique<ApiServices>(*cacher_, *registry_);
    if (auto c = cacher_->start(); !c) return Unexpected("watch cache: " + c.error());
    refreshCustomResources();

    StorageOptions sto;
    sto.serviceCidr = options_.serviceCidr;
    storage_ = withConversions(newStorage(*store_, *cacher_, *registry_, realClock(), sto));
    apiServices_->start(*storage_);
    http_ = std::make_unique<HttpApi>(*storage_, Credentials{{*token}}, realClock(),
                                      options_.address + ":" + std::to_string(options_.port),
                                      options_.watchBookmarkInterval);
    std::string uiDir = options_.uiDir;
    if (uiDir.empty()) {
      std::error_code ec;
      uiDir = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path().string() + "/ui";
    }
    http_->setUi(std::make_unique<UiServer>(*uiPassword, uiDir, realClock()));
    HttpServerOptions ho;
    ho.address = options_.address;
    ho.port = options_.port;
    ho.certFile = pki_.serverCert;
    ho.keyFile = pki_.serverKey;
    ho.clientCaFile = pki_.caCert;
    ho.ioThreads = options_.ioThreads;
    ho.workerThreads = options_.workerThreads;
    auto srv = startHttpServer(ho, *http_);
    if (!srv) return Unexpected(srv.error());
    httpServer_ = std::move(*srv);
    if (auto b = bootstrap(); !b) return b;
    compactor_ = std::make_unique<store::Compactor>(*store_, realClock(), options_.compactInterval,
                                                    options_.historyRetention);
    if (auto k = writeKubeconfig(); !k) return k;
    http_->setReady(true);
    return {};
  }

  uint16_t port() const override { return httpServer_ ? httpServer_->port() : 0; }
  std::string kubeconfigPath() const override { return options_.dataDir + "/kubeconfig.yaml"; }
  Storage& storage() override { return *storage_; }
  void setArgoCdHandler(std::function<HttpResponse(const HttpRequest&)> handler) override {
    http_->setArgoCdHandler(std::move(handler));
  }
  void setNodeConnector(const std::string& node, NodeConnector* connector) override {
    http_->setNodeConnector(node, connector);
  }

  Expected<void, std::string> publishCredentials() override {
    if (options_.datastore.empty()) return {};
    return bootstrap::publish(*store_, tlsDir(), secret_);
  }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    if (http_) http_->setReady(false);
    // The transport goes first: destroying it ends open watch streams, which reach into the
    // storage and the cache.
    if (httpServer_) httpServer_->stop();
    httpServer_.reset();
    http_.reset();
    if (apiServices_) apiServices_->stop();
    compactor_.reset();
    storage_.reset();
    cacher_.reset();
    apiServices_.reset();
    store_.reset();
  }

 private:
  std::string tlsDir() const { return options_.dataDir + "/tls"; }

  // --bootstrap-secret-file's, else DATA/tls/bootstrap.secret's, else a new one, written there
  // (only when the datastore holds no credentials yet: they were sealed with another).
  Expected<std::string, std::string> bootstrapSecret() {
    if (!options_.bootstrapSecret.empty()) return options_.bootstrapSecret;
    std::string path = tlsDir() + "/" + bootstrap::kSecretFile;
    if (!std::filesystem::exists(path) && store_->get(bootstrap::kKey))
      return Unexpected(
          "the datastore holds the credentials of a cluster: give this server the first "
          "server's bootstrap secret (--bootstrap-secret-file, its DATA/tls/" +
          std::string(bootstrap::kSecretFile) + "), or a copy of its DATA/tls");
    std::error_code ec;
    std::filesystem::create_directories(tlsDir(), ec);
    return ensureToken(path);
  }

  Expected<store::StorePtr, std::string> openStore() {
    if (options_.datastore.empty()) {
      store::SqliteOptions so;
      so.path = options_.dataDir + "/db/state.db";
      so.fsyncEveryCommit = options_.fsyncEveryCommit;
      auto st = store::openSqliteStore(so);
      if (!st) return Unexpected(st.error().message);
      return std::move(*st);
    }
    auto eo = store::parseEtcdUrl(options_.datastore);
    if (!eo) return Unexpected(eo.error());
    eo->caFile = options_.datastoreCaFile;
    eo->certFile = options_.datastoreCertFile;
    eo->keyFile = options_.datastoreKeyFile;
    auto st = store::openEtcdStore(*eo);
    if (!st) return Unexpected(st.error().message);
    PODIUM_LOG(Info) << "store: etcd at " << strings::join(eo->endpoints, ",");
    return std::move(*st);
  }

  std::string serviceIp(int offset) const {
    // First address of the service CIDR plus `offset` (the API's own Service is .1).
    std::string base = options_.serviceCidr.substr(0, options_.serviceCidr.find('/'));
    auto parts = strings::split(base, '.');
    if (parts.size() != 4) return "10.43.0.1";
    parts[3] = std::to_string(std::stoi(parts[3]) + offset);
    return strings::join(parts, ".");
  }

  void refreshCustomResources() {
    int64_t rev;
    std::vector<Json> crds;
    for (const auto& c :
         cacher_->list("/registry/apiextensions.k8s.io/customresourcedefinitions/", &rev))
      crds.push_back(*c.object);
    std::vector<std::pair<std::string, std::string>> errors;
    registry_->setCustomResources(crds, &errors);
    for (const auto& [name, err] : errors)
      PODIUM_LOG(Warn) << "custom resource definition " << name << ": " << err;
  }

  Expected<void, std::string> ensure(const std::string& group, const std::string& version,
                                     const std::string& plural, const std::string& ns, Json obj) {
    auto r = registry_->snapshot()->find(group, version, plural);
    if (!r) return Unexpected("no resource " + plural);
    std::string name = json::getString(obj, {"metadata", "name"});
    if (cacher_->get(r->key(ns, name))) return {};
    WriteOptions o;
    o.fieldManager = "podium-bootstrap";
    auto made = storage_->create(*r, ns, std::move(obj), o);
    if (!made && made.error().code() != 409)
      return Unexpected("bootstrap " + plural + "/" + name + ": " + made.error().message());
    return {};
  }

  Expected<void, std::string> bootstrap() {
    for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
      Json obj = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}};
      if (auto e = ensure("", "v1", "namespaces", "", obj); !e) return e;
    }
    Json svc = {{"apiVersion", "v1"},
                {"kind", "Service"},
                {"metadata",
                 {{"name", "kubernetes"},
                  {"namespace", "default"},
                  {"labels", {{"component", "apiserver"}, {"provider", "kubernetes"}}}}},
                {"spec",
                 {{"clusterIP", serviceIp(1)},
                  {"ports", Json::array({{{"name", "https"},
                                          {"port", 443},
                                          {"protocol", "TCP"},
                                          {"targetPort", port()}}})}}}};
    if (auto e = ensure("", "v1", "services", "default", svc); !e) return e;
    // The default class, as k3s ships Rancher's local-path: a directory per claim on the node
    // of its first pod, made and removed by that node's agent (node/local_volumes.h).
    Json sc = {{"apiVersion", "storage.k8s.io/v1"},
               {"kind", "StorageClass"},
               {"metadata",
                {{"name", "local-path"},
                 {"annotations", {{"storageclass.kubernetes.io/is-default-class", "true"}}}}},
               {"provisioner", "podium.dev/local-path"},
               {"reclaimPolicy", "Delete"},
               {"volumeBindingMode", "WaitForFirstConsumer"}};
    if (auto e = ensure("storage.k8s.io", "v1", "storageclasses", "", sc); !e) return e;
    auto crds = json::parseYamlStream(kPodiumBuiltinCrds);
    if (!crds) return Unexpected("built-in CRDs: " + crds.error());
    for (auto& crd : *crds)
      if (auto e = ensure("apiextensions.k8s.io", "v1", "customresourcedefinitions", "", crd); !e)
        return e;
    return {};
  }

  Expected<void, std::string> writeKubeconfig() {
    auto ca = tls::readFile(pki_.caCert);
    auto cert = tls::readFile(pki_.adminCert);
    auto key = tls::readFile(pki_.adminKey);
    if (!ca || !cert || !key) return Unexpected(std::string("cannot read the cluster credentials"));
    Json cfg = {
        {"apiVersion", "v1"},
        {"kind", "Config"},
        {"clusters",
         Json::array(
             {{{"name", "podium"},
               {"cluster",
                {{"server", "https://" +
                                (options_.address == "0.0.0.0" ? "127.0.0.1" : options_.address) +
                                ":" + std::to_string(port())},
                 {"certificate-authority-data", strings::base64Encode(*ca)}}}}})},
        {"contexts",
         Json::array({{{"name", "podium"},
                       {"context", {{"cluster", "podium"}, {"user", "podium-admin"}}}}})},
        {"current-context", "podium"},
        {"preferences", Json::object()},
        {"users", Json::array({{{"name", "podium-admin"},
                                {"user",
                                 {{"client-certificate-data", strings::base64Encode(*cert)},
                                  {"client-key-data", strings::base64Encode(*key)}}}}})}};
    auto w = tls::writeFileAtomic(kubeconfigPath(), json::toYaml(cfg), 0600);
    if (!w) return Unexpected(w.error());
    return {};
  }

  ServerOptions options_;
  tls::ClusterPki pki_;
  std::string secret_;  // the bootstrap secret (on etcd)
  store::StorePtr store_;
  std::unique_ptr<Cacher> cacher_;
  std::unique_ptr<ResourceRegistry> registry_;
  std::unique_ptr<Storage> storage_;
  std::unique_ptr<ApiServices> apiServices_;
  std::unique_ptr<HttpApi> http_;
  std::unique_ptr<HttpServer> httpServer_;
  std::unique_ptr<store::Compactor> compactor_;
  bool stopped_ = false;
};

}  // namespace

Expected<std::unique_ptr<ApiServer>, std::string> startApiServer(const ServerOptions& options) {
  auto s = std::make_unique<Server>(options);
  if (auto r = s->start(); !r) return Unexpected(r.error());
  return std::unique_ptr<ApiServer>(std::move(s));
}

}  // namespace podium::api
