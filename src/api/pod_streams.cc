// Options and upgrade plumbing shared by the API server's pods/log, exec, attach and
// portforward handlers and the node agent's own endpoints.
#include "podium/api/node_connector.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"

namespace podium::api {

namespace {
bool flag(const HttpRequest& req, const char* name) {
  return strings::parseBool(req.param(name)).value_or(false);
}

// Parses "http://host:port/path" (the runtime's streaming URLs).
bool splitUrl(const std::string& url, std::string* host, uint16_t* port, std::string* path) {
  if (url.rfind("http://", 0) != 0) return false;
  std::string rest = url.substr(7);
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  *path = slash == std::string::npos ? "/" : rest.substr(slash);
  auto colon = hostport.rfind(':');
  if (colon == std::string::npos) return false;
  *host = hostport.substr(0, colon);
  auto p = strings::parseInt(hostport.substr(colon + 1));
  if (!p || *p <= 0 || *p > 65535) return false;
  *port = static_cast<uint16_t>(*p);
  return true;
}
}  // namespace

LogOptions logOptionsFrom(const HttpRequest& req, const std::string& container) {
  LogOptions o;
  o.container = container;
  o.follow = flag(req, "follow");
  o.previous = flag(req, "previous");
  o.timestamps = flag(req, "timestamps");
  if (auto t = strings::parseInt(req.param("tailLines"))) o.tailLines = *t;
  if (auto s = strings::parseInt(req.param("sinceSeconds"))) o.sinceSeconds = *s;
  if (auto l = strings::parseInt(req.param("limitBytes"))) o.limitBytes = *l;
  if (!req.param("sinceTime").empty()) o.sinceTime = timefmt::parseRfc3339(req.param("sinceTime"));
  return o;
}

ExecOptions execOptionsFrom(const HttpRequest& req, const std::string& container) {
  ExecOptions o;
  o.container = container;
  o.command = req.params("command");
  o.stdin = flag(req, "stdin");
  o.stdout = flag(req, "stdout");
  o.stderr = flag(req, "stderr");
  o.tty = flag(req, "tty");
  return o;
}

std::vector<int32_t> portsFrom(const HttpRequest& req) {
  std::vector<int32_t> ports;
  for (const auto& v : req.params("ports"))
    for (const auto& p : strings::split(v, ','))
      if (auto n = strings::parseInt(strings::trim(p))) ports.push_back(static_cast<int32_t>(*n));
  return ports;
}

Json connectOptions(const HttpRequest& req, const std::string& sub, const ExecOptions& exec) {
  if (sub == "portforward")
    return {{"kind", "PodPortForwardOptions"}, {"apiVersion", "v1"}, {"ports", portsFrom(req)}};
  Json o = {{"kind", sub == "attach" ? "PodAttachOptions" : "PodExecOptions"},
            {"apiVersion", "v1"},
            {"stdin", exec.stdin},
            {"stdout", exec.stdout},
            {"stderr", exec.stderr},
            {"tty", exec.tty},
            {"container", exec.container}};
  if (sub == "exec") o["command"] = exec.command;
  return o;
}

std::string upgradeHeaders(const HttpRequest& req) {
  std::string out;
  for (const auto& [k, v] : req.rawHeaders) {
    std::string lk = strings::toLower(k);
    if (lk == "connection" || lk == "upgrade" || lk.rfind("sec-websocket-", 0) == 0 ||
        lk == "x-stream-protocol-version")
      out += k + ": " + v + "\r\n";
  }
  return out;
}

namespace {
// Whether a comma-separated header value lists `token` exactly.
bool offers(const std::string& list, const std::string& token) {
  for (const auto& item : strings::split(list, ','))
    if (strings::trim(item) == token) return true;
  return false;
}
}  // namespace

Expected<std::shared_ptr<UpgradeTarget>, ApiError> upgradeToRuntime(const HttpRequest& req,
                                                                    const std::string& url,
                                                                    const std::string& sub,
                                                                    const ExecOptions* exec) {
  auto target = std::make_shared<UpgradeTarget>();
  std::string path;
  if (!splitUrl(url, &target->host, &target->port, &path))
    return Unexpected(ApiError::internal("bad streaming URL from the runtime: " + url));
  std::string host = target->host + ":" + std::to_string(target->port);
  bool websocket = strings::iequals(req.header("upgrade"), "websocket");
  std::string protocols = req.header("sec-websocket-protocol");
  std::string spdyProtocol;
  if (websocket && !exec && offers(protocols, "SPDY/3.1+portforward.k8s.io")) {
    target->bridge = UpgradeTarget::Bridge::kTunnel;
    target->clientProtocol = "SPDY/3.1+portforward.k8s.io";
    spdyProtocol = "portforward.k8s.io";
  } else if (websocket && exec && offers(protocols, "v5.channel.k8s.io")) {
    target->bridge = UpgradeTarget::Bridge::kRemoteCommand;
    target->clientProtocol = "v5.channel.k8s.io";
    target->channels = {exec->stdin, exec->stdout, exec->stderr, exec->tty};
    spdyProtocol = "v4.channel.k8s.io";
  }
  if (!spdyProtocol.empty()) {
    target->request = "POST " + path + " HTTP/1.1\r\nHost: " + host +
                      "\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                      "X-Stream-Protocol-Version: " +
                      spdyProtocol + "\r\nContent-Length: 0\r\n\r\n";
    return target;
  }
  std::string head =
      req.method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" + upgradeHeaders(req);
  if (req.method == "POST") head += "Content-Length: 0\r\n";
  target->request = head + "\r\n";
  return target;
}

}  // namespace podium::api
