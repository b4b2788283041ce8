#include "podium/node/node_api.h"

#include <openssl/crypto.h>

#include "podium/api/node_connector.h"
#include "podium/common/strings.h"

namespace podium::node {

namespace {

api::HttpResponse errorResponse(const api::ApiError& e) {
  api::HttpResponse r;
  r.status = e.code();
  r.setHeader("Content-Type", "application/json");
  r.body = json::dump(e.toStatus());
  return r;
}

bool tokenMatches(const std::string& given, const std::string& want) {
  return given.size() == want.size() && CRYPTO_memcmp(given.data(), want.data(), given.size()) == 0;
}

}  // namespace

Expected<api::HttpResponse, api::ApiError> nodeEndpoint(const Agent& agent, const std::string& path,
                                                        const std::string& traceId) {
  api::HttpResponse r;
  r.setHeader("Content-Type", "application/json");
  if (path == "/healthz") {
    r.setHeader("Content-Type", "text/plain");
    r.body = "ok";
  } else if (path == "/metrics") {
    r.setHeader("Content-Type", "text/plain; version=0.0.4");
    r.body = agent.metrics();
  } else if (path == "/stats/summary") {
    r.body = json::dump(agent.statsSummary());
  } else if (path == "/stats/mesh") {
    r.body = json::dump(agent.meshStats());
  } else if (path == "/stats/traces") {
    // The node proxy's recent spans (Zipkin JSON v2), of one trace with ?traceId=.
    r.body = json::dump(agent.recentSpans(traceId));
  } else {
    return Unexpected(api::ApiError(404, "NotFound", "no such node endpoint: " + path));
  }
  return r;
}

namespace {

class NodeApi : public api::HttpHandler {
 public:
  NodeApi(Agent& agent, client::Client& client, std::vector<std::string> tokens)
      : agent_(agent), client_(client), tokens_(std::move(tokens)) {}

  api::HttpResponse handle(const api::HttpRequest& req) override {
    std::string auth = req.header("authorization");
    bool ok = false;
    if (auth.rfind("Bearer ", 0) == 0)
      for (const auto& t : tokens_) ok = ok || tokenMatches(auth.substr(7), t);
    if (!ok) return errorResponse(api::ApiError::unauthorized());
    std::vector<std::string> parts;
    for (const auto& p : strings::split(req.path, '/'))
      if (!p.empty()) parts.push_back(p);
    if (req.method == "GET") {
      auto id = req.query.find("traceId");
      auto own = nodeEndpoint(agent_, req.path, id == req.query.end() ? "" : id->second);
      if (own) return *own;
    }
    static const std::map<std::string, std::string> kSubresources = {
        {"containerLogs", "log"},
        {"exec", "exec"},
        {"attach", "attach"},
        {"portForward", "portforward"}};
    auto sub = parts.empty() ? kSubresources.end() : kSubresources.find(parts[0]);
    size_t want = sub != kSubresources.end() && sub->second == "portforward" ? 3 : 4;
    if (sub == kSubresources.end() || parts.size() != want)
      return errorResponse(api::ApiError(404, "NotFound", "no such node endpoint: " + req.path));
    auto pod = client_.get(client::resources::kPods, parts[1], parts[2]);
    if (!pod) return errorResponse(pod.error());
    if (json::getString(*pod, {"spec", "nodeName"}) != agent_.nodeName())
      return errorResponse(
          api::ApiError::badRequest("pod " + parts[2] + " does not run on this node"));
    std::string container = want == 4 ? parts[3] : "";
    if (sub->second == "log") {
      auto stream = agent_.logs(*pod, api::logOptionsFrom(req, container));
      if (!stream) return errorResponse(stream.error());
      api::HttpResponse r;
      r.setHeader("Content-Type", "text/plain");
      r.stream = *stream;
      return r;
    }
    api::ExecOptions exec = api::execOptionsFrom(req, container);
    Expected<std::string, api::ApiError> url = Unexpected(api::ApiError::internal("unreachable"));
    if (sub->second == "portforward")
      url = agent_.portForward(*pod, {});
    else if (sub->second == "exec")
      url = agent_.exec(*pod, exec);
    else
      url = agent_.attach(*pod, exec);
    if (!url) return errorResponse(url.error());
    auto target = api::upgradeToRuntime(req, *url, sub->second,
                                        sub->second == "portforward" ? nullptr : &exec);
    if (!target) return errorResponse(target.error());
    api::HttpResponse r;
    r.upgrade = *target;
    return r;
  }

 private:
  Agent& agent_;
  client::Client& client_;
  std::vector<std::string> tokens_;
};

}  // namespace

std::unique_ptr<api::HttpHandler> newNodeApi(Agent& agent, client::Client& client,
                                             std::vector<std::string> tokens) {
  return std::make_unique<NodeApi>(agent, client, std::move(tokens));
}

}  // namespace podium::node
