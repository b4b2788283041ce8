#include "api_services.h"

#include "backend.h"
#include "podium/common/log.h"
#include "podium/common/time.h"

namespace podium::api {

namespace {

constexpr const char* kPrefix = "/registry/apiregistration.k8s.io/apiservices/";
constexpr auto kTimeout = std::chrono::seconds(30);
constexpr auto kCheckTimeout = std::chrono::seconds(5);

// Where an APIService's requests go, or why they cannot.
Expected<Backend, std::string> backendOf(const Cacher& cacher, const Json& apiService) {
  const Json& spec = json::at(apiService, {"spec"});
  const Json& svc = json::at(spec, {"service"});
  auto b = serviceBackend(cacher, json::str(svc, "namespace"), json::str(svc, "name"),
                          json::integer(svc, "port", 443));
  if (!b) return b;
  b->caBundle = caBundleOf(spec);
  b->insecure = json::boolean(spec, "insecureSkipTLSVerify");
  return b;
}

}  // namespace

// One APIService's group version, served by its backend.
class ForwardedApi : public AggregatedApi {
 public:
  ForwardedApi(Cacher& cacher, Json apiService)
      : cacher_(cacher),
        apiService_(std::move(apiService)),
        group_(json::getString(apiService_, {"spec", "group"})),
        version_(json::getString(apiService_, {"spec", "version"})) {}

  std::string group() const override { return group_; }
  std::string version() const override { return version_; }

  // Whether it still serves `apiService` as it is (else a new one takes its place).
  bool serves(const Json& apiService) const {
    return json::at(apiService, {"spec"}) == json::at(apiService_, {"spec"});
  }

  // The backend's own APIResourceList, as the last availability check fetched it.
  std::vector<AggregatedResource> resources() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }
  void setDiscovery(const std::string& body) {
    auto doc = json::parse(body);
    if (!doc) return;
    std::vector<AggregatedResource> list;
    for (const auto& r : json::at(doc->value, {"resources"})) {
      AggregatedResource a;
      a.name = json::str(r, "name");
      a.kind = json::str(r, "kind");
      a.namespaced = json::boolean(r, "namespaced");
      a.verbs.clear();
      for (const auto& v : json::at(r, {"verbs"}))
        if (v.is_string()) a.verbs.push_back(v.get<std::string>());
      list.push_back(std::move(a));
    }
    std::lock_guard<std::mutex> lock(mu_);
    cached_ = std::move(list);
  }

  Expected<Json, ApiError> get(const std::string& path, const AggregatedQuery&) override {
    auto reply = call("GET", "/apis/" + group_ + "/" + version_ + "/" + path, "", kTimeout);
    if (!reply) return Unexpected(reply.error());
    auto doc = json::parse(reply->body);
    if (!doc) return Unexpected(ApiError::serviceUnavailable("invalid answer: " + doc.error()));
    return doc->value;
  }

  std::optional<Expected<ForwardedReply, ApiError>> forward(const HttpRequest& req) override {
    auto reply = call(req.method, req.target, req.body, kTimeout, req.header("content-type"),
                      req.header("accept"));
    if (!reply) return Expected<ForwardedReply, ApiError>(Unexpected(reply.error()));
    return Expected<ForwardedReply, ApiError>(
        ForwardedReply{reply->status, reply->contentType, std::move(reply->body)});
  }

 private:
  Expected<BackendReply, ApiError> call(const std::string& method, const std::string& target,
                                        const std::string& body, std::chrono::milliseconds timeout,
                                        const std::string& contentType = "",
                                        const std::string& accept = "application/json") const {
    auto backend = backendOf(cacher_, apiService_);
    if (!backend)
      return Unexpected(
          ApiError::serviceUnavailable("error trying to reach service: " + backend.error()));
    std::map<std::string, std::string> headers;
    if (!contentType.empty()) headers["Content-Type"] = contentType;
    if (!accept.empty()) headers["Accept"] = accept;
    auto reply = httpsRequest(*backend, method, target, body, headers, timeout);
    if (!reply)
      return Unexpected(
          ApiError::serviceUnavailable("error trying to reach service: " + reply.error()));
    return std::move(*reply);
  }

  Cacher& cacher_;
  Json apiService_;
  std::string group_, version_;
  mutable std::mutex mu_;  // guards the discovery cache
  std::vector<AggregatedResource> cached_;
};

ApiServices::ApiServices(Cacher& cacher, ResourceRegistry& registry)
    : cacher_(cacher), registry_(registry) {
  cacher_.addListener(kPrefix, [this](const std::vector<CacheEvent>&) {
    refresh();
    std::lock_guard<std::mutex> lock(mu_);
    dirty_ = true;
    wake_.notify_all();
  });
}

ApiServices::~ApiServices() { stop(); }

void ApiServices::start(Storage& storage) {
  storage_ = &storage;
  refresh();
  thread_ = std::thread([this] { statusLoop(); });
}

void ApiServices::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void ApiServices::refresh() {
  int64_t rev;
  std::vector<AggregatedApiPtr> apis;
  std::map<std::string, std::shared_ptr<ForwardedApi>> next;
  auto set = registry_.snapshot();
  for (const auto& c : cacher_.list(kPrefix, &rev)) {
    const Json& spec = json::at(*c.object, {"spec"});
    if (json::at(spec, {"service"}).is_null()) continue;  // Local: the server's own
    std::string group = json::str(spec, "group"), version = json::str(spec, "version");
    if (!set->inGroupVersion(group, version).empty()) {
      PODIUM_LOG(Warn) << "APIService " << version << "." << group
                       << " names a group version this server stores: it stays local";
      continue;
    }
    std::string name = json::getString(*c.object, {"metadata", "name"});
    std::lock_guard<std::mutex> lock(forwardedMu_);
    auto it = forwarded_.find(name);  // unchanged: kept, with its discovery
    auto api = it != forwarded_.end() && it->second->serves(*c.object)
                   ? it->second
                   : std::make_shared<ForwardedApi>(cacher_, *c.object);
    next[name] = api;
    apis.push_back(api);
  }
  {
    std::lock_guard<std::mutex> lock(forwardedMu_);
    forwarded_ = std::move(next);
  }
  registry_.setForwardedApis(std::move(apis));
}

void ApiServices::statusLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::seconds(5), [this] { return stopping_ || dirty_; });
    if (stopping_) break;
    dirty_ = false;
    lock.unlock();
    checkAll();
    lock.lock();
  }
}

void ApiServices::checkAll() {
  auto r = registry_.snapshot()->find("apiregistration.k8s.io", "v1", "apiservices");
  if (!r) return;
  int64_t rev;
  for (const auto& c : cacher_.list(kPrefix, &rev)) {
    const Json& obj = *c.object;
    const Json& spec = json::at(obj, {"spec"});
    Json cond = {{"type", "Available"}, {"status", "True"}};
    if (json::at(spec, {"service"}).is_null()) {
      cond["reason"] = "Local";
      cond["message"] = "Local APIServices are always available";
    } else if (auto b = backendOf(cacher_, obj); !b) {
      bool missing = b.error().find("not found") != std::string::npos;
      cond["status"] = "False";
      cond["reason"] = missing ? "ServiceNotFound" : "MissingEndpoints";
      cond["message"] = b.error();
    } else {
      std::string path = "/apis/" + json::str(spec, "group") + "/" + json::str(spec, "version");
      auto reply =
          httpsRequest(*b, "GET", path, "", {{"Accept", "application/json"}}, kCheckTimeout);
      if (!reply || reply->status != 200) {
        cond["status"] = "False";
        cond["reason"] = "FailedDiscoveryCheck";
        cond["message"] =
            "failing or missing response from https://" + b->host + ":" + std::to_string(b->port) +
            path + ": " +
            (reply ? "bad status from " + std::to_string(reply->status) : reply.error());
      } else {
        cond["reason"] = "Passed";
        cond["message"] = "all checks passed";
        std::lock_guard<std::mutex> lock(forwardedMu_);
        auto it = forwarded_.find(json::getString(obj, {"metadata", "name"}));
        if (it != forwarded_.end()) it->second->setDiscovery(reply->body);
      }
    }
    const Json& conds = json::at(obj, {"status", "conditions"});
    Json old;
    if (conds.is_array())
      for (const auto& x : conds)
        if (json::str(x, "type") == "Available") old = x;
    if (!old.is_null() && json::str(old, "status") == json::str(cond, "status") &&
        json::str(old, "reason") == json::str(cond, "reason") &&
        json::str(old, "message") == json::str(cond, "message"))
      continue;
    cond["lastTransitionTime"] =
        !old.is_null() && json::str(old, "status") == json::str(cond, "status")
            ? old["lastTransitionTime"]
            : Json(timefmt::rfc3339(std::chrono::system_clock::now()));
    Json next = obj;
    next["status"]["conditions"] = Json::array({cond});
    WriteOptions o;
    o.subresource = "status";
    o.fieldManager = "kube-apiserver";
    auto written = storage_->update(*r, "", json::getString(obj, {"metadata", "name"}), next, o);
    if (!written && written.error().code() != 409 && written.error().code() != 404)
      PODIUM_LOG(Warn) << "APIService status: " << written.error().message();
  }
}

}  // namespace podium::api
