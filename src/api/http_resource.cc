// The API's resource paths (/api/v1/..., /apis/GROUP/VERSION/...): a request is parsed into a
// ResourceCall, checked once (resource, scope, subresource), then handed to its verb's handler
// through one table.
#include <map>

#include "http_api.h"
#include "http_codec.h"
#include "patch.h"
#include "podium/common/strings.h"
#include "printers.h"
#include "request_info.h"
#include "watch_stream.h"

namespace podium::api {

struct HttpApi::ResourceCall {
  const HttpRequest& req;
  RequestInfo info;
  std::shared_ptr<const ResourceSet> set;
  ResourcePtr r;
  Shape shape;
  std::chrono::system_clock::time_point now;
  const std::string& ns() const { return info.namespace_; }
  const std::string& name() const { return info.name; }
  const std::string& sub() const { return info.subresource; }
};

namespace {

HttpResponse notFound(const HttpRequest& req) {
  return errorResponse(
      ApiError(404, "NotFound", "the server could not find the requested resource"), req);
}

// The subresources each kind serves (pods' streams are routed before this).
bool serves(const ResourceInfo& r, const std::string& sub) {
  bool core = r.group.empty();
  return sub.empty() || (sub == "status" && r.hasStatus) || (sub == "scale" && r.hasScale) ||
         (sub == "finalize" && core && r.plural == "namespaces") ||
         (sub == "binding" && core && r.plural == "pods") ||
         (sub == "eviction" && core && r.plural == "pods") ||
         (sub == "ephemeralcontainers" && core && r.plural == "pods") ||
         (sub == "certificate" && core && r.plural == "serviceaccounts");
}

std::string includeObjectOf(const HttpRequest& req) {
  return req.param("includeObject").empty() ? "Metadata" : req.param("includeObject");
}

Expected<DeleteOptions, ApiError> deleteOptions(const HttpRequest& req) {
  DeleteOptions d;
  if (!req.body.empty()) {
    auto parsed = json::parse(req.body);
    if (!parsed || !parsed->value.is_object())
      return Unexpected(
          ApiError::badRequest("error decoding DeleteOptions: " +
                               (parsed ? std::string("not an object") : parsed.error())));
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
  if (!req.param("propagationPolicy").empty()) d.propagationPolicy = req.param("propagationPolicy");
  if (auto g = strings::parseInt(req.param("gracePeriodSeconds"))) d.gracePeriodSeconds = *g;
  if (req.param("dryRun") == "All") d.dryRun = true;
  return d;
}

}  // namespace

HttpResponse HttpApi::resource(const HttpRequest& req) {
  using Handler = HttpResponse (HttpApi::*)(const ResourceCall&);
  static const std::map<std::string, Handler> kVerbs = {
      {"get", &HttpApi::getResource},        {"list", &HttpApi::listResources},
      {"watch", &HttpApi::watchResources},   {"create", &HttpApi::createResource},
      {"update", &HttpApi::updateResource},  {"patch", &HttpApi::patchResource},
      {"delete", &HttpApi::deleteResources}, {"deletecollection", &HttpApi::deleteResources}};
  ResourceCall c{req,
                 parseRequestInfo(req.method, req.path, req.param("watch")),
                 storage_.registry().snapshot(),
                 nullptr,
                 wantedShape(req),
                 clock_.now()};
  if (!c.info.isResourceRequest || c.info.verb.empty()) return notFound(req);
  c.r = c.set->find(c.info.group, c.info.version, c.info.resource);
  if (!c.r) return notFound(req);
  // Cluster-scoped resources have no namespace in their path; namespaced ones need one but to
  // be listed or watched across namespaces.
  if (!c.r->namespaced && !c.ns().empty() && c.r->plural != "namespaces") return notFound(req);
  if (c.r->namespaced && c.ns().empty() && c.info.verb != "list" && c.info.verb != "watch")
    return notFound(req);
  const std::string& sub = c.sub();
  if (c.r->group.empty() && c.r->plural == "pods" &&
      (sub == "log" || sub == "exec" || sub == "attach" || sub == "portforward"))
    return podStream(req, c.ns(), c.name(), sub);
  if (c.r->group.empty() && c.r->plural == "nodes" && sub == "proxy") {
    std::string prefix = "/nodes/" + c.name() + "/proxy";
    auto at = req.path.find(prefix);
    return nodeProxy(req, c.name(), req.path.substr(at + prefix.size()));
  }
  if (!serves(*c.r, sub)) return notFound(req);
  auto verb = kVerbs.find(c.info.verb);
  if (verb == kVerbs.end())
    return errorResponse(ApiError::methodNotAllowed(
                             "the server does not allow this method on the requested resource"),
                         req);
  return (this->*verb->second)(c);
}

HttpResponse HttpApi::objectResponse(const ResourceCall& c, int status, const Json& obj,
                                     const std::vector<std::string>& warnings) {
  HttpResponse resp;
  bool ofKind = json::str(obj, "kind", "") == c.r->kind;
  if (c.shape == Shape::Table && ofKind) {
    TableOptions to;
    to.includeObject = includeObjectOf(c.req);
    Json t = toTable(*c.r, {std::make_shared<Json>(obj)}, to, c.now);
    t["metadata"]["resourceVersion"] = json::getString(obj, {"metadata", "resourceVersion"});
    resp = jsonResponse(status, t, c.req, kTableType);
  } else if (c.shape == Shape::PartialMetadata && ofKind) {
    resp = jsonResponse(status, partialMetadata(obj), c.req,
                        "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io");
  } else {
    resp = jsonResponse(status, obj, c.req);
  }
  addWarnings(resp, warnings);
  return resp;
}

HttpResponse HttpApi::getResource(const ResourceCall& c) {
  if (c.sub() == "scale") {
    auto s = storage_.getScale(*c.r, c.ns(), c.name());
    return s ? jsonResponse(200, *s, c.req) : errorResponse(s.error(), c.req);
  }
  auto obj = storage_.get(*c.r, c.ns(), c.name());
  if (!obj) return errorResponse(obj.error(), c.req);
  return objectResponse(c, 200, **obj, {});
}

HttpResponse HttpApi::listResources(const ResourceCall& c) {
  auto res = storage_.list(*c.r, c.ns(), listOptions(c.req));
  if (!res) return errorResponse(res.error(), c.req);
  Json listMeta = {{"resourceVersion", res->resourceVersion}};
  if (!res->continueToken.empty()) listMeta["continue"] = res->continueToken;
  if (res->remainingItemCount) listMeta["remainingItemCount"] = *res->remainingItemCount;
  if (c.shape == Shape::Table) {
    TableOptions to;
    to.includeObject = includeObjectOf(c.req);
    Json t = toTable(*c.r, res->items, to, c.now);
    t["metadata"] = listMeta;
    return jsonResponse(200, t, c.req, kTableType);
  }
  Json items = Json::array();
  for (const auto& item : res->items)
    items.push_back(c.shape == Shape::PartialMetadata ? partialMetadata(*item) : *item);
  if (c.shape == Shape::PartialMetadata)
    return jsonResponse(200,
                        {{"kind", "PartialObjectMetadataList"},
                         {"apiVersion", "meta.k8s.io/v1"},
                         {"metadata", listMeta},
                         {"items", items}},
                        c.req, "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io");
  return jsonResponse(200,
                      {{"kind", c.r->listKind},
                       {"apiVersion", c.r->apiVersion()},
                       {"metadata", listMeta},
                       {"items", items}},
                      c.req);
}

HttpResponse HttpApi::watchResources(const ResourceCall& c) {
  ListOptions lo = listOptions(c.req);
  if (!c.name().empty())
    lo.fieldSelector = lo.fieldSelector.empty() ? "metadata.name=" + c.name()
                                                : lo.fieldSelector + ",metadata.name=" + c.name();
  bool sendInitial = strings::parseBool(c.req.param("sendInitialEvents")).value_or(false);
  auto h = storage_.watch(*c.r, c.ns(), lo, sendInitial);
  if (!h) return errorResponse(h.error(), c.req);
  int64_t timeout = strings::parseInt(c.req.param("timeoutSeconds")).value_or(0);
  bool bookmarks = strings::parseBool(c.req.param("allowWatchBookmarks")).value_or(false);
  // A browser's EventSource asks for text/event-stream: the same events, framed as such.
  bool sse = c.req.header("accept").find("text/event-stream") != std::string::npos;
  HttpResponse resp;
  resp.status = 200;
  resp.setHeader("Content-Type", sse                       ? "text/event-stream"
                                 : c.shape == Shape::Table ? kTableType
                                                           : kJson);
  resp.setHeader("Cache-Control", "no-cache, private");
  resp.stream =
      std::make_shared<WatchStream>(storage_, c.r, *h, c.shape, bookmarks, sendInitial, timeout,
                                    clock_, c.req.param("includeObject"), bookmarkInterval_, sse);
  return resp;
}

HttpResponse HttpApi::createResource(const ResourceCall& c) {
  const HttpRequest& req = c.req;
  auto opts = writeOptions(req, false, false);
  if (!opts) return errorResponse(opts.error(), req);
  if (c.sub() == "certificate") {
    auto body = json::parse(req.body);
    if (!body)
      return errorResponse(ApiError::badRequest("the body is not JSON: " + body.error()), req);
    // A node's own credentials (system:node:NAME) only get its own pods' identities.
    auto who = authenticate(req);
    std::string user = who ? who->user : "";
    std::string node = user.rfind("system:node:", 0) == 0 ? user.substr(12) : "";
    auto res = storage_.issueCertificate(c.ns(), c.name(), body->value, node);
    if (!res) return errorResponse(res.error(), req);
    return jsonResponse(201, *res, req);
  }
  if (c.sub() == "binding") {
    std::vector<std::string> ignored;
    auto body = decodeWriteBody(req, *c.set, *opts, &ignored);
    if (!body) return errorResponse(body.error(), req);
    auto res = storage_.bind(c.ns(), c.name(), json::getString(*body, {"metadata", "uid"}),
                             json::getString(*body, {"target", "name"}), *opts);
    if (!res) return errorResponse(res.error(), req);
    return jsonResponse(201, successStatus(nullptr), req);
  }
  if (c.sub() == "eviction") {
    auto body = json::parse(req.body);
    if (!body)
      return errorResponse(ApiError::badRequest("the body is not JSON: " + body.error()), req);
    auto res = storage_.evict(c.ns(), c.name(), body->value);
    if (!res) return errorResponse(res.error(), req);
    return jsonResponse(201, res->object, req);
  }
  if (!c.name().empty())
    return errorResponse(
        ApiError::methodNotAllowed("POST is not supported on individual " + c.r->plural), req);
  std::vector<std::string> warnings;
  auto body = decodeWriteBody(req, *c.set, *opts, &warnings);
  if (!body) return errorResponse(body.error(), req);
  auto res = storage_.create(*c.r, c.ns(), std::move(*body), *opts);
  if (!res) return errorResponse(res.error(), req);
  warnings.insert(warnings.end(), res->warnings.begin(), res->warnings.end());
  return objectResponse(c, 201, res->object, warnings);
}

HttpResponse HttpApi::updateResource(const ResourceCall& c) {
  auto opts = writeOptions(c.req, false, false);
  if (!opts) return errorResponse(opts.error(), c.req);
  opts->subresource = c.sub();
  std::vector<std::string> warnings;
  auto body = decodeWriteBody(c.req, *c.set, *opts, &warnings);
  if (!body) return errorResponse(body.error(), c.req);
  if (c.sub() == "scale") {
    auto res = storage_.updateScale(*c.r, c.ns(), c.name(), *body, *opts);
    return res ? jsonResponse(200, res->object, c.req) : errorResponse(res.error(), c.req);
  }
  auto res = storage_.update(*c.r, c.ns(), c.name(), std::move(*body), *opts);
  if (!res) return errorResponse(res.error(), c.req);
  warnings.insert(warnings.end(), res->warnings.begin(), res->warnings.end());
  return objectResponse(c, 200, res->object, warnings);
}

HttpResponse HttpApi::patchResource(const ResourceCall& c) {
  auto type = patchTypeFor(c.req.header("content-type"));
  if (!type)
    return errorResponse(
        ApiError::unsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml" +
            std::string(c.r->custom ? "" : ", application/strategic-merge-patch+json")),
        c.req);
  auto opts = writeOptions(c.req, true, *type == PatchType::Apply);
  if (!opts) return errorResponse(opts.error(), c.req);
  opts->subresource = c.sub();
  if (c.sub() == "scale") {
    auto res = storage_.patchScale(*c.r, c.ns(), c.name(), *type, c.req.body, *opts);
    return res ? jsonResponse(200, res->object, c.req) : errorResponse(res.error(), c.req);
  }
  auto res = storage_.patch(*c.r, c.ns(), c.name(), *type, c.req.body, *opts);
  if (!res) return errorResponse(res.error(), c.req);
  return objectResponse(c, res->created ? 201 : 200, res->object, res->warnings);
}

HttpResponse HttpApi::deleteResources(const ResourceCall& c) {
  auto d = deleteOptions(c.req);
  if (!d) return errorResponse(d.error(), c.req);
  if (c.info.verb == "deletecollection") {
    auto res = storage_.removeCollection(*c.r, c.ns(), listOptions(c.req), *d);
    if (!res) return errorResponse(res.error(), c.req);
    Json items = Json::array();
    for (const auto& item : *res) items.push_back(*item);
    return jsonResponse(200,
                        {{"kind", c.r->listKind},
                         {"apiVersion", c.r->apiVersion()},
                         {"metadata", Json::object()},
                         {"items", items}},
                        c.req);
  }
  auto res = storage_.remove(*c.r, c.ns(), c.name(), *d);
  if (!res) return errorResponse(res.error(), c.req);
  return objectResponse(c, 200, res->object, {});
}

}  // namespace podium::api
