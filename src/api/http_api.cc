#include "http_api.h"

#include <openssl/crypto.h>

#include "discovery.h"
#include "http_codec.h"
#include "patch.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"
#include "printers.h"
#include "protobuf.h"
#include "request_info.h"
#include "watch_stream.h"

namespace podium::api {

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
  // The web UI's session: the admin who logged in with the password.
  if (ui_)
    if (auto user = ui_->sessionUser(req))
      return Identity{*user, {"system:masters", "system:authenticated"}};
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
  if (ui_ && (p == "/ui" || p.rfind("/ui/", 0) == 0)) return ui_->handle(req);
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
    // An APIService's group version: everything under it, discovery included, is its backend's.
    if (parts[0] == "apis" && parts.size() >= 3)
      if (auto api = storage_.registry().snapshot()->aggregated(parts[1], parts[2]))
        if (auto reply = api->forward(req)) {
          if (!*reply) return errorResponse(reply->error(), req);
          HttpResponse r;
          r.status = (*reply)->status;
          if (!(*reply)->contentType.empty()) r.setHeader("Content-Type", (*reply)->contentType);
          r.body = std::move((*reply)->body);
          return r;
        }
    if (discoveryPath) {
      if (req.method != "GET" && req.method != "HEAD")
        return errorResponse(ApiError::methodNotAllowed(
                                 "the server does not allow this method on the requested resource"),
                             req);
      return discovery(req, parts);
    }
    if (parts[0] == "apis")
      if (auto api = storage_.registry().snapshot()->aggregated(parts[1], parts[2]))
        return aggregated(req, *api);
    return resource(req);
  }
  return errorResponse(
      ApiError(404, "NotFound", "the server could not find the requested resource"), req);
}

HttpResponse HttpApi::aggregated(const HttpRequest& req, AggregatedApi& api) {
  if (req.method != "GET" && req.method != "HEAD")
    return errorResponse(ApiError::methodNotAllowed(
                             "the server does not allow this method on the requested resource"),
                         req);
  AggregatedPath path;
  if (!parseAggregatedPath(req.target, &path))
    return errorResponse(
        ApiError(404, "NotFound", "the server could not find the requested resource"), req);
  auto doc = api.get(path.rest, path.query);
  if (!doc) return errorResponse(doc.error(), req);
  return jsonResponse(200, *doc, req);
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
  if (sub != "log") {
    Json options = connectOptions(req, sub, exec);
    auto admitted = storage_.admitConnect(*podsResource, ns, name, sub, options);
    if (!admitted) return errorResponse(admitted.error(), req);
  }
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
    url = connector->portForward(**pod, portsFrom(req));
  } else {
    url = sub == "exec" ? connector->exec(**pod, exec) : connector->attach(**pod, exec);
  }
  if (!url) return errorResponse(url.error(), req);
  auto target = upgradeToRuntime(req, *url, sub, sub == "portforward" ? nullptr : &exec);
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
  std::string path = sub == "log"           ? "/containerLogs/" + ns + "/" + name + "/" + container
                     : sub == "portforward" ? "/portForward/" + ns + "/" + name
                                            : "/" + sub + "/" + ns + "/" + name + "/" + container;
  auto q = req.target.find('?');
  if (q != std::string::npos) path += req.target.substr(q);
  return relayToAgent(req, node, path, sub == "log");
}

HttpResponse HttpApi::relayToAgent(const HttpRequest& req, const std::string& node,
                                   const std::string& path, bool closeAfter) {
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
  auto target = std::make_shared<UpgradeTarget>();
  target->host = address;
  target->port = static_cast<uint16_t>(port);
  target->tls = true;
  std::string head = req.method + " " + path + " HTTP/1.1\r\nHost: " + address + ":" +
                     std::to_string(port) + "\r\nAuthorization: Bearer " +
                     credentials_.bearerTokens[0] + "\r\n" + upgradeHeaders(req);
  if (closeAfter) head += "Connection: close\r\n";
  if (req.method == "POST") head += "Content-Length: 0\r\n";
  target->request = head + "\r\n";
  HttpResponse r;
  r.upgrade = target;
  return r;
}

// nodes/proxy: GET of the node's own endpoints (/metrics, /stats/summary, /healthz), as
// `kubectl get --raw /api/v1/nodes/NODE/proxy/metrics` reads a kubelet's.
HttpResponse HttpApi::nodeProxy(const HttpRequest& req, const std::string& node,
                                const std::string& path) {
  if (req.method != "GET")
    return errorResponse(
        ApiError::methodNotAllowed("the server does not allow this method on nodes/proxy"), req);
  // Only the server's own node has a connector; any other name (or none) is looked up there.
  NodeConnector* connector = connectorFor(node);
  if (!connector) return relayToAgent(req, node, path.empty() ? "/" : path, true);
  auto answer = connector->nodeEndpoint(path);
  if (!answer) return errorResponse(answer.error(), req);
  return *answer;
}

}  // namespace podium::api
