#include "api_services.h"

#include "backend.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"
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
  if (const Json& ca = json::at(spec, {"caBundle"});
      ca.is_string() && !ca.get<std::string>().empty())
    b->caBundle = strings::base64Decode(ca.get<std::string>()).value_or("");
  b->insecure = json::boolean(spec, "insecureSkipTLSVerify");
  return b;
}

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

  // The backend's own APIResourceList (asked for at most every few seconds).
  std::vector<AggregatedResource> resources() const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = std::chrono::steady_clock::now();
    if (now - fetched_ < std::chrono::seconds(5)) return cached_;
    fetched_ = now;
    cached_.clear();
    auto reply = call("GET", "/apis/" + group_ + "/" + version_, "", kCheckTimeout);
    if (!reply || reply->status != 200) return cached_;
    auto doc = json::parse(reply->body);
    if (!doc) return cached_;
    for (const auto& r : json::at(doc->value, {"resources"})) {
      AggregatedResource a;
      a.name = json::str(r, "name");
      a.kind = json::str(r, "kind");
      a.namespaced = json::boolean(r, "namespaced");
      a.verbs.clear();
      for (const auto& v : json::at(r, {"verbs"}))
        if (v.is_string()) a.verbs.push_back(v.get<std::string>());
      cached_.push_back(std::move(a));
    }
    return cached_;
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
  mutable std::chrono::steady_clock::time_point fetched_;
  mutable std::vector<AggregatedResource> cached_;
};

}  // namespace

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
    apis.push_back(std::make_shared<ForwardedApi>(cacher_, *c.object));
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
