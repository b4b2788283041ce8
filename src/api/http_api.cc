#include "http_api.h"

#include <openssl/crypto.h>

#include "discovery.h"
#include "patch.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"
#include "printers.h"
#include "protobuf.h"
#include "request_info.h"

namespace podium::api {
namespace {

constexpr const char* kJson = "application/json";
constexpr const char* kTableType = "application/json;as=Table;v=v1;g=meta.k8s.io";

// ---- content negotiation ------------------------------------------------------------------------

struct MediaType {
  std::string type;
  std::map<std::string, std::string> params;
};

std::vector<MediaType> parseAccept(const std::string& accept) {
  std::vector<MediaType> out;
  for (const auto& part : strings::split(accept, ',')) {
    auto fields = strings::split(part, ';');
    MediaType m;
    m.type = strings::toLower(strings::trim(fields[0]));
    for (size_t i = 1; i < fields.size(); ++i) {
      auto kv = strings::split(fields[i], '=');
      if (kv.size() == 2)
        m.params[std::string(strings::trim(kv[0]))] = std::string(strings::trim(kv[1]));
    }
    if (!m.type.empty()) out.push_back(std::move(m));
  }
  return out;
}

enum class Shape { Object, Table, PartialMetadata };

Shape wantedShape(const HttpRequest& req) {
  for (const auto& m : parseAccept(req.header("accept"))) {
    auto as = m.params.find("as");
    if (as == m.params.end()) {
      if (m.type == kJson || m.type == "*/*" || m.type == "application/*") return Shape::Object;
      continue;
    }
    if (as->second == "Table") return Shape::Table;
    if (as->second == "PartialObjectMetadata" || as->second == "PartialObjectMetadataList")
      return Shape::PartialMetadata;
  }
  return Shape::Object;
}

HttpResponse jsonResponse(int status, const Json& body, const HttpRequest& req,
                          const std::string& contentType = kJson) {
  HttpResponse r;
  r.status = status;
  r.setHeader("Content-Type", contentType);
  r.setHeader("Cache-Control", "no-cache, private");
  r.body = strings::parseBool(req.param("pretty")).value_or(false)
               ? body.dump(4, ' ', false, Json::error_handler_t::replace)
               : json::dump(body);
  r.body += "\n";
  return r;
}

HttpResponse errorResponse(const ApiError& e, const HttpRequest& req) {
  return jsonResponse(e.code(), e.toStatus(), req);
}

void addWarnings(HttpResponse& r, const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) {
    std::string escaped;
    for (char c : w) {
      if (c == '"' || c == '\\') escaped += '\\';
      escaped += c;
    }
    r.headers.emplace_back("Warning", "299 - \"" + escaped + "\"");
  }
}

Json partialMetadata(const Json& obj) {
  return {{"kind", "PartialObjectMetadata"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", obj.contains("metadata") ? obj["metadata"] : Json::object()}};
}

// ---- request decoding ---------------------------------------------------------------------------

struct Decoded {
  Json object;
  std::vector<std::string> duplicates;
};

Expected<Decoded, ApiError> decodeBody(const HttpRequest& req, const ResourceSet& set) {
  std::string ct = strings::toLower(
      strings::trim(req.header("content-type").substr(0, req.header("content-type").find(';'))));
  Decoded d;
  if (ct == "application/vnd.kubernetes.protobuf") {
    auto obj = decodeProtobufObject(
        req.body,
        [&set](const std::string& apiVersion, const std::string& kind) -> const schema::Type* {
          std::string group, version = apiVersion;
          if (auto slash = apiVersion.find('/'); slash != std::string::npos) {
            group = apiVersion.substr(0, slash);
            version = apiVersion.substr(slash + 1);
          }
          auto r = set.findKind(group, version, kind);
          return r && !r->custom ? r->schema : nullptr;
        });
    if (!obj) return Unexpected(ApiError::badRequest(obj.error()));
    d.object = std::move(*obj);
    return d;
  }
  if (ct.empty() || ct == kJson) {
    auto parsed = json::parse(req.body);
    if (!parsed) return Unexpected(ApiError::badRequest("error decoding JSON: " + parsed.error()));
    d.object = std::move(parsed->value);
    d.duplicates = std::move(parsed->duplicates);
    return d;
  }
  if (ct == "application/yaml" || ct == "application/x-yaml" || ct == "text/yaml") {
    auto parsed = json::parseYaml(req.body);
    if (!parsed) return Unexpected(ApiError::badRequest("error decoding YAML: " + parsed.error()));
    d.object = std::move(parsed->value);
    d.duplicates = std::move(parsed->duplicates);
    return d;
  }
  return Unexpected(ApiError::unsupportedMediaType(
      "the body of the request was in an unknown format - accepted media types include: "
      "application/json, application/yaml, application/vnd.kubernetes.protobuf"));
}

// The body of a create or update, with duplicate fields refused (Strict) or reported (Warn).
Expected<Json, ApiError> decodeWriteBody(const HttpRequest& req, const ResourceSet& set,
                                         const WriteOptions& opts,
                                         std::vector<std::string>* warnings) {
  auto body = decodeBody(req, set);
  if (!body) return Unexpected(body.error());
  if (!body->duplicates.empty()) {
    std::vector<std::string> parts;
    for (const auto& d : body->duplicates) parts.push_back("duplicate field \"" + d + "\"");
    if (opts.fieldValidation == FieldValidation::Strict)
      return Unexpected(
          ApiError::badRequest("strict decoding error: " + strings::join(parts, ", ")));
    if (opts.fieldValidation == FieldValidation::Warn) *warnings = parts;
  }
  return std::move(body->object);
}

Expected<WriteOptions, ApiError> writeOptions(const HttpRequest& req, bool isPatch, bool isApply) {
  WriteOptions o;
  std::string dry = req.param("dryRun");
  if (!dry.empty()) {
    if (dry != "All")
      return Unexpected(
          ApiError::badRequest("Invalid dry run value: " + dry + ": supported values: \"All\""));
    o.dryRun = true;
  }
  o.fieldManager = req.param("fieldManager");
  if (o.fieldManager.size() > 128)
    return Unexpected(ApiError::invalid(
        "", "Options", "", {FieldError::tooLong("fieldManager", o.fieldManager, 128)}));
  if (o.fieldManager.empty() && !isApply) {
    std::string ua = req.header("user-agent");
    o.fieldManager = ua.substr(0, std::min(ua.find('/'), size_t{128}));
    if (o.fieldManager.empty()) o.fieldManager = "unknown";
  }
  std::string fv = req.param("fieldValidation");
  if (fv.empty() || fv == "Warn")
    o.fieldValidation = FieldValidation::Warn;
  else if (fv == "Strict")
    o.fieldValidation = FieldValidation::Strict;
  else if (fv == "Ignore")
    o.fieldValidation = FieldValidation::Ignore;
  else
    return Unexpected(ApiError::badRequest("fieldValidation parameter unsupported: " + fv));
  std::string force = req.param("force");
  if (!force.empty()) {
    if (!isPatch || !isApply)
      return Unexpected(ApiError::badRequest("Force flag must only be set for apply patches"));
    auto f = strings::parseBool(force);
    if (!f) return Unexpected(ApiError::badRequest("invalid force value: " + force));
    o.force = *f;
  }
  return o;
}

ListOptions listOptions(const HttpRequest& req) {
  ListOptions o;
  o.labelSelector = req.param("labelSelector");
  o.fieldSelector = req.param("fieldSelector");
  if (auto l = strings::parseInt(req.param("limit")); l && *l > 0) o.limit = *l;
  o.continueToken = req.param("continue");
  o.resourceVersion = req.param("resourceVersion");
  o.resourceVersionMatch = req.param("resourceVersionMatch");
  return o;
}

// ---- watch streams ------------------------------------------------------------------------------

class WatchStream : public ResponseStream {
 public:
  WatchStream(Storage& storage, ResourcePtr resource, WatchHandle handle, Shape shape,
              bool bookmarks, bool initialEventsEnd, int64_t timeoutSeconds, Clock& clock,
              std::string includeObject, std::chrono::milliseconds bookmarkInterval)
      : storage_(storage),
        resource_(std::move(resource)),
        handle_(std::move(handle)),
        shape_(shape),
        bookmarks_(bookmarks),
        initialEventsEnd_(initialEventsEnd),
        clock_(clock),
        includeObject_(std::move(includeObject)),
        bookmarkInterval_(bookmarkInterval) {
    auto now = clock_.monotonic();
    deadline_ = timeoutSeconds > 0 ? now + std::chrono::seconds(timeoutSeconds)
                                   : now + std::chrono::hours(24 * 365);
    lastSent_ = now;
    initialLeft_ = handle_.watcher->initialEvents();
  }
  ~WatchStream() override { cancel(); }

  void start(std::function<void()> wake) override { handle_.watcher->setWakeup(std::move(wake)); }

  bool poll(std::string& out) override {
    std::vector<CacheWatcher::Event> events;
    bool open = handle_.watcher->drain(events);
    for (const auto& ev : events) {
      emit(ev.type == WatchEventType::Added      ? "ADDED"
           : ev.type == WatchEventType::Modified ? "MODIFIED"
                                                 : "DELETED",
           handle_.convert(ev.object), out);
      if (initialLeft_ > 0 && --initialLeft_ == 0 && initialEventsEnd_) bookmark(out, true);
    }
    if (initialEventsEnd_ && !initialSent_ && initialLeft_ == 0 && events.empty() &&
        handle_.watcher->initialEvents() == 0)
      bookmark(out, true);
    auto now = clock_.monotonic();
    if (!out.empty()) lastSent_ = now;
    if (bookmarks_ && events.empty() && now - lastSent_ >= bookmarkInterval_) {
      bookmark(out, false);
      lastSent_ = now;
    }
    if (!open) return false;  // overflowed: the client relists
    return now < deadline_;
  }

  int64_t pollIntervalMs() override {
    auto now = clock_.monotonic();
    auto untilDeadline =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - now).count();
    int64_t next =
        bookmarks_
            ? std::chrono::duration_cast<std::chrono::milliseconds>(bookmarkInterval_).count()
            : 300000;
    return std::max<int64_t>(1, std::min<int64_t>(next, untilDeadline));
  }

  void cancel() override {
    if (!cancelled_.exchange(true)) storage_.stopWatch(handle_);
  }

 private:
  void emit(const char* type, const ObjectPtr& obj, std::string& out) {
    Json payload;
    if (shape_ == Shape::Table) {
      TableOptions to;
      to.includeObject = includeObject_.empty() ? "Metadata" : includeObject_;
      to.noHeaders = sentHeaders_;
      payload = toTable(*resource_, {obj}, to, clock_.now());
      payload["metadata"]["resourceVersion"] =
          json::getString(*obj, {"metadata", "resourceVersion"});
      sentHeaders_ = true;
    } else if (shape_ == Shape::PartialMetadata) {
      payload = partialMetadata(*obj);
    }
    Json ev = {{"type", type}};
    std::string line = "{\"type\":\"" + std::string(type) + "\",\"object\":" +
                       (shape_ == Shape::Object ? json::dump(*obj) : json::dump(payload)) + "}\n";
    out += line;
  }

  void bookmark(std::string& out, bool initialEnd) {
    Json meta = {{"resourceVersion", std::to_string(handle_.watcher->caughtUp())}};
    if (initialEnd) {
      meta["annotations"] = {{"k8s.io/initial-events-end", "true"}};
      initialSent_ = true;
    }
    Json obj = {
        {"kind", resource_->kind}, {"apiVersion", resource_->apiVersion()}, {"metadata", meta}};
    out += "{\"type\":\"BOOKMARK\",\"object\":" + json::dump(obj) + "}\n";
  }

  Storage& storage_;
  ResourcePtr resource_;
  WatchHandle handle_;
  Shape shape_;
  bool bookmarks_;
  bool initialEventsEnd_;
  bool initialSent_ = false;
  size_t initialLeft_ = 0;
  bool sentHeaders_ = false;
  Clock& clock_;
  std::string includeObject_;
  std::chrono::milliseconds bookmarkInterval_;
  std::chrono::steady_clock::time_point deadline_, lastSent_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

HttpApi::HttpApi(Storage& storage, Credentials credentials, Clock& clock, std::string serverAddress,
                 std::chrono::milliseconds bookmarkInterval)
    : storage_(storage),
      bookmarkInterval_(bookmarkInterval),
      credentials_(std::move(credentials)),
      clock_(clock),
      serverAddress_(std::move(serverAddress)) {}

std::optional<HttpApi::Identity> HttpApi::authenticate(const HttpRequest& req) const {
  std::string auth = req.header("authorization");
  if (auth.size() > 7 && strings::iequals(auth.substr(0, 7), "Bearer ")) {
    std::string token(strings::trim(auth.substr(7)));
    for (const auto& t : credentials_.bearerTokens)
      if (!t.empty() && t.size() == token.size() &&
          CRYPTO_memcmp(t.data(), token.data(), t.size()) == 0)
        return Identity{"podium-admin", {"system:masters", "system:authenticated"}};
    return std::nullopt;  // a wrong token is refused even with a certificate
  }
  if (req.clientCertVerified) {
    Identity id{req.clientCommonName, req.clientOrganizations};
    id.groups.push_back("system:authenticated");
    return id;
  }
  return std::nullopt;
}

HttpResponse HttpApi::handle(const HttpRequest& req) {
  const std::string& p = req.path;
  if (p == "/healthz" || p == "/livez" || p == "/readyz" || p == "/healthz/" || p == "/livez/" ||
      p == "/readyz/") {
    HttpResponse r;
    bool ok = p.rfind("/readyz", 0) != 0 || ready_;
    r.status = ok ? 200 : 500;
    r.setHeader("Content-Type", "text/plain; charset=utf-8");
    r.body = ok ? "ok" : "[-]api-ready failed: reason withheld\nreadyz check failed";
    return r;
  }
  if (p == "/version" || p == "/version/") {
    Json v = {{"major", "1"},
              {"minor", "32"},
              {"gitVersion", "v1.32.4+podium"},
              {"gitCommit", "podium"},
              {"gitTreeState", "clean"},
              {"buildDate", "2026-11-01T00:00:00Z"},
              {"goVersion", "go1.23.8"},
              {"compiler", "gc"},
              {"platform", "linux/amd64"}};
    return jsonResponse(200, v, req);
  }
  if ((p == "/api/webhook" || p == "/api/webhook/") && argoCd_) {
    if (req.method != "POST")
      return errorResponse(ApiError::methodNotAllowed("webhooks are POSTed"), req);
    return argoCd_(req);
  }
  auto who = authenticate(req);
  if (!who) return errorResponse(ApiError::unauthorized(), req);
  if (argoCd_ && p.rfind("/api/v1/applications/", 0) == 0) return argoCd_(req);
  auto started = clock_.monotonic();
  HttpResponse r = route(req);
  if (log::level() <= log::Level::Debug) {
    auto ms = std::chrono::duration_cast<std::chrono::microseconds>(clock_.monotonic() - started)
                  .count() /
              1000.0;
    PODIUM_LOG(Debug) << req.method << " " << req.target << " " << r.status << " " << ms << "ms "
                      << who->user;
  }
  return r;
}

HttpResponse HttpApi::route(const HttpRequest& req) {
  const std::string& p = req.path;
  if (p.rfind("/openapi/", 0) == 0) return openapi(req);
  std::vector<std::string> parts;
  for (auto& s : strings::split(p, '/'))
    if (!s.empty()) parts.push_back(s);
  if (!parts.empty() && (parts[0] == "api" || parts[0] == "apis")) {
    bool discoveryPath =
        (parts[0] == "api" && parts.size() <= 2) || (parts[0] == "apis" && parts.size() <= 3);
    if (discoveryPath) {
      if (req.method != "GET" && req.method != "HEAD")
        return errorResponse(ApiError::methodNotAllowed(
                                 "the server does not allow this method on the requested resource"),
                             req);
      return discovery(req, parts);
    }
    return resource(req);
  }
  return errorResponse(
      ApiError(404, "NotFound", "the server could not find the requested resource"), req);
}

HttpResponse HttpApi::discovery(const HttpRequest& req, const std::vector<std::string>& parts) {
  auto set = storage_.registry().snapshot();
  bool core = parts[0] == "api";
  if (parts.size() == 1) {
    for (const auto& m : parseAccept(req.header("accept"))) {
      auto as = m.params.find("as");
      if (as == m.params.end() || as->second != "APIGroupDiscoveryList") continue;
      std::string v = m.params.count("v") ? m.params.at("v") : "v2";
      if (v != "v2" && v != "v2beta1") continue;
      std::string ct =
          "application/json;g=apidiscovery.k8s.io;v=" + v + ";as=APIGroupDiscoveryList";
      return jsonResponse(200, aggregatedDiscovery(*set, core, "apidiscovery.k8s.io/" + v), req,
                          ct);
    }
    return jsonResponse(200, core ? legacyApiVersions(serverAddress_) : legacyGroupList(*set), req);
  }
  Json doc;
  if (core)
    doc = legacyResourceList(*set, "", parts[1]);
  else if (parts.size() == 2)
    doc = legacyGroup(*set, parts[1]);
  else
    doc = legacyResourceList(*set, parts[1], parts[2]);
  if (doc.is_null())
    return errorResponse(
        ApiError(404, "NotFound", "the server could not find the requested resource"), req);
  return jsonResponse(200, doc, req);
}

HttpResponse HttpApi::openapi(const HttpRequest& req) {
  const std::string& p = req.path;
  if (p.rfind("/openapi/v3", 0) != 0)
    return errorResponse(
        ApiError(404, "NotFound", "the server could not find the requested resource"), req);
  auto set = storage_.registry().snapshot();
  uint64_t gen = storage_.registry().generation();
  std::lock_guard<std::mutex> lock(openapiMu_);
  if (openapi_.generation != gen) {
    openapi_ = OpenApiCache{};
    openapi_.generation = gen;
    openapi_.index = openApiIndex(*set);
  }
  std::string rest = p.size() > 12 ? p.substr(12) : "";
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty()) return jsonResponse(200, openapi_.index, req);
  auto it = openapi_.docs.find(rest);
  if (it == openapi_.docs.end()) {
    Json doc = openApiDocument(*set, rest);
    if (doc.is_null())
      return errorResponse(
          ApiError(404, "NotFound", "the server could not find the requested resource"), req);
    it = openapi_.docs.emplace(rest, json::dump(doc)).first;
  }
  HttpResponse r;
  r.setHeader("Content-Type", kJson);
  r.setHeader("Cache-Control", req.hasParam("hash") ? "public, immutable" : "no-cache, private");
  r.body = it->second;
  return r;
}

HttpResponse HttpApi::resource(const HttpRequest& req) {
  RequestInfo info = parseRequestInfo(req.method, req.path, req.param("watch"));
  if (!info.isResourceRequest || info.verb.empty())
    return errorResponse(
        ApiError(404, "NotFound", "the server could not find the requested resource"), req);
  auto set = storage_.registry().snapshot();
  ResourcePtr r = set->find(info.group, info.version, info.resource);
  if (!r)
    return errorResponse(
        ApiError(404, "NotFound", "the server could not find the requested resource"), req);
  const std::string& ns = info.namespace_;
  const std::string& name = info.name;
  const std::string& sub = info.subresource;
  if (!r->namespaced && !ns.empty() && r->plural != "namespaces")
    return errorResponse(
        ApiError(404, "NotFound", "the server could not find the requested resource"), req);
  if (r->namespaced && ns.empty() && info.verb != "list" && info.verb != "watch")
    return errorResponse(
        ApiError(404, "NotFound", "the server could not find the requested resource"), req);
  bool pods = r->group.empty() && r->plural == "pods";
  if (pods && (sub == "log" || sub == "exec" || sub == "attach" || sub == "portforward"))
    return podStream(req, ns, name, sub);
  if (!sub.empty() &&
      !((sub == "status" && r->hasStatus) || (sub == "scale" && r->hasScale) ||
        (sub == "finalize" && r->plural == "namespaces") || (sub == "binding" && pods) ||
        (sub == "certificate" && r->group.empty() && r->plural == "serviceaccounts")))
    return errorResponse(
        ApiError(404, "NotFound", "the server could not find the requested resource"), req);
  Shape shape = wantedShape(req);
  auto now = clock_.now();

  auto objectResponse = [&](int status, const Json& obj, const std::vector<std::string>& warnings) {
    HttpResponse resp;
    if (shape == Shape::Table && json::str(obj, "kind", "") == r->kind) {
      TableOptions to;
      to.includeObject =
          req.param("includeObject").empty() ? "Metadata" : req.param("includeObject");
      Json t = toTable(*r, {std::make_shared<Json>(obj)}, to, now);
      t["metadata"]["resourceVersion"] = json::getString(obj, {"metadata", "resourceVersion"});
      resp = jsonResponse(status, t, req, kTableType);
    } else if (shape == Shape::PartialMetadata && json::str(obj, "kind", "") == r->kind) {
      resp = jsonResponse(status, partialMetadata(obj), req,
                          "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io");
    } else {
      resp = jsonResponse(status, obj, req);
    }
    addWarnings(resp, warnings);
    return resp;
  };

  const std::string& verb = info.verb;
  if (verb == "get") {
    if (sub == "scale") {
      auto s = storage_.getScale(*r, ns, name);
      return s ? jsonResponse(200, *s, req) : errorResponse(s.error(), req);
    }
    auto obj = storage_.get(*r, ns, name);
    if (!obj) return errorResponse(obj.error(), req);
    return objectResponse(200, **obj, {});
  }
  if (verb == "list") {
    auto res = storage_.list(*r, ns, listOptions(req));
    if (!res) return errorResponse(res.error(), req);
    Json listMeta = {{"resourceVersion", res->resourceVersion}};
    if (!res->continueToken.empty()) listMeta["continue"] = res->continueToken;
    if (res->remainingItemCount) listMeta["remainingItemCount"] = *res->remainingItemCount;
    if (shape == Shape::Table) {
      TableOptions to;
      to.includeObject =
          req.param("includeObject").empty() ? "Metadata" : req.param("includeObject");
      Json t = toTable(*r, res->items, to, now);
      t["metadata"] = listMeta;
      return jsonResponse(200, t, req, kTableType);
    }
    Json items = Json::array();
    for (const auto& item : res->items)
      items.push_back(shape == Shape::PartialMetadata ? partialMetadata(*item) : *item);
    if (shape == Shape::PartialMetadata)
      return jsonResponse(200,
                          {{"kind", "PartialObjectMetadataList"},
                           {"apiVersion", "meta.k8s.io/v1"},
                           {"metadata", listMeta},
                           {"items", items}},
                          req, "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io");
    return jsonResponse(200,
                        {{"kind", r->listKind},
                         {"apiVersion", r->apiVersion()},
                         {"metadata", listMeta},
                         {"items", items}},
                        req);
  }
  if (verb == "watch") {
    ListOptions lo = listOptions(req);
    if (!name.empty())
      lo.fieldSelector = lo.fieldSelector.empty() ? "metadata.name=" + name
                                                  : lo.fieldSelector + ",metadata.name=" + name;
    bool sendInitial = strings::parseBool(req.param("sendInitialEvents")).value_or(false);
    auto h = storage_.watch(*r, ns, lo, sendInitial);
    if (!h) return errorResponse(h.error(), req);
    int64_t timeout = strings::parseInt(req.param("timeoutSeconds")).value_or(0);
    bool bookmarks = strings::parseBool(req.param("allowWatchBookmarks")).value_or(false);
    HttpResponse resp;
    resp.status = 200;
    resp.setHeader("Content-Type", shape == Shape::Table ? kTableType : kJson);
    resp.setHeader("Cache-Control", "no-cache, private");
    resp.stream =
        std::make_shared<WatchStream>(storage_, r, *h, shape, bookmarks, sendInitial, timeout,
                                      clock_, req.param("includeObject"), bookmarkInterval_);
    return resp;
  }
  if (verb == "create") {
    auto opts = writeOptions(req, false, false);
    if (!opts) return errorResponse(opts.error(), req);
    if (sub == "certificate") {
      auto body = json::parse(req.body);
      if (!body)
        return errorResponse(ApiError::badRequest("the body is not JSON: " + body.error()), req);
      // A node's own credentials (system:node:NAME) only get its own pods' identities.
      auto who = authenticate(req);
      std::string user = who ? who->user : "";
      std::string node = user.rfind("system:node:", 0) == 0 ? user.substr(12) : "";
      auto res = storage_.issueCertificate(ns, name, body->value, node);
      if (!res) return errorResponse(res.error(), req);
      return jsonResponse(201, *res, req);
    }
    if (sub == "binding") {
      std::vector<std::string> ignored;
      auto body = decodeWriteBody(req, *set, *opts, &ignored);
      if (!body) return errorResponse(body.error(), req);
      auto res = storage_.bind(ns, name, json::getString(*body, {"metadata", "uid"}),
                               json::getString(*body, {"target", "name"}), *opts);
      if (!res) return errorResponse(res.error(), req);
      return jsonResponse(201, successStatus(nullptr), req);
    }
    if (!name.empty())
      return errorResponse(
          ApiError::methodNotAllowed("POST is not supported on individual " + r->plural), req);
    std::vector<std::string> warnings;
    auto body = decodeWriteBody(req, *set, *opts, &warnings);
    if (!body) return errorResponse(body.error(), req);
    auto res = storage_.create(*r, ns, std::move(*body), *opts);
    if (!res) return errorResponse(res.error(), req);
    warnings.insert(warnings.end(), res->warnings.begin(), res->warnings.end());
    return objectResponse(201, res->object, warnings);
  }
  if (verb == "update") {
    auto opts = writeOptions(req, false, false);
    if (!opts) return errorResponse(opts.error(), req);
    opts->subresource = sub;
    std::vector<std::string> warnings;
    auto body = decodeWriteBody(req, *set, *opts, &warnings);
    if (!body) return errorResponse(body.error(), req);
    if (sub == "scale") {
      auto res = storage_.updateScale(*r, ns, name, *body, *opts);
      return res ? jsonResponse(200, res->object, req) : errorResponse(res.error(), req);
    }
    auto res = storage_.update(*r, ns, name, std::move(*body), *opts);
    if (!res) return errorResponse(res.error(), req);
    warnings.insert(warnings.end(), res->warnings.begin(), res->warnings.end());
    return objectResponse(200, res->object, warnings);
  }
  if (verb == "patch") {
    auto type = patchTypeFor(req.header("content-type"));
    if (!type)
      return errorResponse(
          ApiError::unsupportedMediaType(
              "the body of the request was in an unknown format - accepted media types include: "
              "application/json-patch+json, application/merge-patch+json, "
              "application/apply-patch+yaml" +
              std::string(r->custom ? "" : ", application/strategic-merge-patch+json")),
          req);
    auto opts = writeOptions(req, true, *type == PatchType::Apply);
    if (!opts) return errorResponse(opts.error(), req);
    opts->subresource = sub;
    if (sub == "scale") {
      auto res = storage_.patchScale(*r, ns, name, *type, req.body, *opts);
      return res ? jsonResponse(200, res->object, req) : errorResponse(res.error(), req);
    }
    auto res = storage_.patch(*r, ns, name, *type, req.body, *opts);
    if (!res) return errorResponse(res.error(), req);
    return objectResponse(res->created ? 201 : 200, res->object, res->warnings);
  }
  if (verb == "delete" || verb == "deletecollection") {
    DeleteOptions d;
    if (!req.body.empty()) {
      auto parsed = json::parse(req.body);
      if (!parsed || !parsed->value.is_object())
        return errorResponse(
            ApiError::badRequest("error decoding DeleteOptions: " +
                                 (parsed ? std::string("not an object") : parsed.error())),
            req);
      const Json& b = parsed->value;
      d.propagationPolicy = json::str(b, "propagationPolicy", "");
      if (b.contains("orphanDependents") && b["orphanDependents"].is_boolean())
        d.orphanDependents = b["orphanDependents"].get<bool>();
      if (b.contains("gracePeriodSeconds") && b["gracePeriodSeconds"].is_number_integer())
        d.gracePeriodSeconds = b["gracePeriodSeconds"].get<int64_t>();
      d.preconditionUid = json::getString(b, {"preconditions", "uid"});
      d.preconditionResourceVersion = json::getString(b, {"preconditions", "resourceVersion"});
      if (b.contains("dryRun") && b["dryRun"].is_array() && !b["dryRun"].empty()) d.dryRun = true;
    }
    if (!req.param("propagationPolicy").empty())
      d.propagationPolicy = req.param("propagationPolicy");
    if (auto g = strings::parseInt(req.param("gracePeriodSeconds"))) d.gracePeriodSeconds = *g;
    if (req.param("dryRun") == "All") d.dryRun = true;
    if (verb == "deletecollection") {
      auto res = storage_.removeCollection(*r, ns, listOptions(req), d);
      if (!res) return errorResponse(res.error(), req);
      Json items = Json::array();
      for (const auto& item : *res) items.push_back(*item);
      return jsonResponse(200,
                          {{"kind", r->listKind},
                           {"apiVersion", r->apiVersion()},
                           {"metadata", Json::object()},
                           {"items", items}},
                          req);
    }
    auto res = storage_.remove(*r, ns, name, d);
    if (!res) return errorResponse(res.error(), req);
    return objectResponse(200, res->object, {});
  }
  return errorResponse(
      ApiError::methodNotAllowed("the server does not allow this method on the requested resource"),
      req);
}

void HttpApi::setNodeConnector(const std::string& node, NodeConnector* connector) {
  std::lock_guard<std::mutex> lock(connectorsMu_);
  if (connector)
    connectors_[node] = connector;
  else
    connectors_.erase(node);
}

NodeConnector* HttpApi::connectorFor(const std::string& node) {
  std::lock_guard<std::mutex> lock(connectorsMu_);
  auto it = connectors_.find(node);
  return it == connectors_.end() ? nullptr : it->second;
}

HttpResponse HttpApi::podStream(const HttpRequest& req, const std::string& ns,
                                const std::string& name, const std::string& sub) {
  auto set = storage_.registry().snapshot();
  auto podsResource = set->find("", "v1", "pods");
  auto pod = storage_.get(*podsResource, ns, name);
  if (!pod) return errorResponse(pod.error(), req);
  std::string node = json::getString(**pod, {"spec", "nodeName"});
  std::string container = req.param("container");
  if (container.empty()) {
    // The first container, as kubectl and the kubelet pick it.
    const Json* cs = json::find(**pod, {"spec", "containers"});
    if (cs && cs->is_array() && !cs->empty()) container = json::str((*cs)[0], "name");
  }
  if (node.empty())
    return errorResponse(ApiError::badRequest("container \"" + container + "\" in pod \"" + name +
                                              "\" is waiting to start: ContainerCreating"),
                         req);
  ExecOptions exec = execOptionsFrom(req, container);
  if (sub == "exec" && exec.command.empty())
    return errorResponse(ApiError::badRequest("you must specify at least 1 command"), req);
  if (auto refused = refuseWebSocket(req, sub, sub == "portforward" ? nullptr : &exec))
    return errorResponse(*refused, req);
  NodeConnector* connector = connectorFor(node);
  if (!connector) return remotePodStream(req, ns, name, sub, node, container);
  if (sub == "log") {
    auto stream = connector->logs(**pod, logOptionsFrom(req, container));
    if (!stream) return errorResponse(stream.error(), req);
    HttpResponse r;
    r.setHeader("Content-Type", "text/plain");
    r.stream = *stream;
    return r;
  }
  Expected<std::string, ApiError> url = Unexpected(ApiError::internal("unreachable"));
  if (sub == "portforward") {
    std::vector<int32_t> ports;
    for (const auto& v : req.params("ports"))
      for (const auto& p : strings::split(v, ','))
        if (auto n = strings::parseInt(strings::trim(p))) ports.push_back(static_cast<int32_t>(*n));
    url = connector->portForward(**pod, ports);
  } else {
    url = sub == "exec" ? connector->exec(**pod, exec) : connector->attach(**pod, exec);
  }
  if (!url) return errorResponse(url.error(), req);
  auto target = upgradeToRuntime(req, *url, sub);
  if (!target) return errorResponse(target.error(), req);
  HttpResponse r;
  r.upgrade = *target;
  return r;
}

// A pod on another machine: the request goes to that node's agent (the kubelet's port), which
// serves the same endpoints the kubelet does.
HttpResponse HttpApi::remotePodStream(const HttpRequest& req, const std::string& ns,
                                      const std::string& name, const std::string& sub,
                                      const std::string& node, const std::string& container) {
  auto set = storage_.registry().snapshot();
  auto nodeObj = storage_.get(*set->find("", "v1", "nodes"), "", node);
  if (!nodeObj) return errorResponse(nodeObj.error(), req);
  std::string address;
  if (const Json* addrs = json::find(**nodeObj, {"status", "addresses"});
      addrs && addrs->is_array())
    for (const auto& a : *addrs)
      if (json::str(a, "type") == "InternalIP" && address.empty())
        address = json::str(a, "address");
  int64_t port = 0;
  if (const Json* ep = json::find(**nodeObj, {"status", "daemonEndpoints", "kubeletEndpoint"}))
    port = json::integer(*ep, "Port");
  if (address.empty() || port <= 0 || port > 65535 || credentials_.bearerTokens.empty())
    return errorResponse(ApiError::serviceUnavailable("node " + node + " has no reachable agent"),
                         req);
  std::string path = sub == "log"           ? "/containerLogs/" + ns + "/" + name + "/" + container
                     : sub == "portforward" ? "/portForward/" + ns + "/" + name
                                            : "/" + sub + "/" + ns + "/" + name + "/" + container;
  auto q = req.target.find('?');
  if (q != std::string::npos) path += req.target.substr(q);
  auto target = std::make_shared<UpgradeTarget>();
  target->host = address;
  target->port = static_cast<uint16_t>(port);
  target->tls = true;
  std::string head = req.method + " " + path + " HTTP/1.1\r\nHost: " + address + ":" +
                     std::to_string(port) + "\r\nAuthorization: Bearer " +
                     credentials_.bearerTokens[0] + "\r\n";
  for (const auto& [k, v] : req.rawHeaders) {
    std::string lk = strings::toLower(k);
    if (lk == "connection" || lk == "upgrade" || lk.rfind("sec-websocket-", 0) == 0 ||
        lk == "x-stream-protocol-version")
      head += k + ": " + v + "\r\n";
  }
  if (sub == "log") head += "Connection: close\r\n";
  if (req.method == "POST") head += "Content-Length: 0\r\n";
  target->request = head + "\r\n";
  HttpResponse r;
  r.upgrade = target;
  return r;
}

}  // namespace podium::api
