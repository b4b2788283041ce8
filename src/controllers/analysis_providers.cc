// Argo Rollouts' metric providers: prometheus, web, and Podium's built-in mesh provider.

#include <cmath>

#include "analysis.h"
#include "podium/common/http_client.h"
#include "podium/common/net.h"
#include "podium/common/strings.h"

namespace podium::controllers {

namespace {

struct Url {
  std::string host, path;
  int port = 80;
};

// http://HOST[:PORT]/PATH. The API server runs on the node, outside the pods' DNS: a cluster
// name ("prometheus.monitoring", "...svc.cluster.local") is resolved to one of its Service's
// ready endpoints, as the tracing providers are.
Expected<Url, std::string> parseUrl(client::Client& client, const std::string& text,
                                    const std::string& ns) {
  if (text.rfind("https://", 0) == 0)
    return Unexpected("https is not supported by the analysis providers yet: " + text);
  if (text.rfind("http://", 0) != 0) return Unexpected("not an http:// URL: " + text);
  std::string rest = text.substr(7);
  Url u;
  auto slash = rest.find('/');
  std::string hostPort = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "/" : rest.substr(slash);
  auto colon = hostPort.rfind(':');
  u.host = hostPort.substr(0, colon);
  if (colon != std::string::npos)
    u.port = static_cast<int>(strings::parseInt(hostPort.substr(colon + 1)).value_or(0));
  if (u.port <= 0 || u.port > 65535) return Unexpected("bad port in " + text);
  uint32_t ip;
  if (u.host == "localhost" || net::parseIpv4(u.host, &ip)) return u;
  auto parts = strings::split(u.host, '.');
  std::string svc = parts[0], svcNs = parts.size() > 1 ? parts[1] : ns;
  auto eps = client.get(client::resources::kEndpoints, svcNs, svc);
  auto service = client.get(client::resources::kServices, svcNs, svc);
  if (!eps || !service) return Unexpected("no Service " + svcNs + "/" + svc + " for " + text);
  std::string portName;
  for (const auto& p : json::at(*service, {"spec", "ports"}))
    if (json::integer(p, "port") == u.port) portName = json::str(p, "name");
  for (const auto& subset : json::at(*eps, {"subsets"}))
    for (const auto& a : json::at(subset, {"addresses"}))
      for (const auto& p : json::at(subset, {"ports"}))
        if (json::str(p, "name") == portName) {
          u.host = json::str(a, "ip");
          u.port = static_cast<int>(json::integer(p, "port"));
          return u;
        }
  return Unexpected("Service " + svcNs + "/" + svc + " has no ready endpoint for " + text);
}

// `{$.a.b[0]}` or `$.a.b[0]` of a JSON document.
Expected<Json, std::string> jsonPath(const Json& doc, std::string path) {
  if (path.size() >= 2 && path.front() == '{' && path.back() == '}')
    path = path.substr(1, path.size() - 2);
  if (path.rfind("$", 0) == 0) path = path.substr(1);
  Json v = doc;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '.') {
      size_t end = path.find_first_of(".[", i + 1);
      std::string f =
          path.substr(i + 1, end == std::string::npos ? std::string::npos : end - i - 1);
      if (!v.is_object() || !v.contains(f))
        return Unexpected("jsonPath " + path + ": no field " + f);
      v = v[f];
      i = end == std::string::npos ? path.size() : end;
    } else if (path[i] == '[') {
      size_t end = path.find(']', i);
      auto n = strings::parseInt(path.substr(i + 1, end - i - 1));
      if (end == std::string::npos || !n || !v.is_array() || *n < 0 ||
          static_cast<size_t>(*n) >= v.size())
        return Unexpected("jsonPath " + path + ": bad index");
      v = v[static_cast<size_t>(*n)];
      i = end + 1;
    } else {
      return Unexpected("jsonPath " + path + ": unexpected '" + path.substr(i, 1) + "'");
    }
  }
  return v;
}

Json numberOf(const Json& v) {
  if (v.is_string()) {
    try {
      return std::stod(v.get<std::string>());
    } catch (...) {
      return v;
    }
  }
  return v;
}

class RealProviders : public MetricProviders {
 public:
  explicit RealProviders(client::Client& client) : client_(client) {}

  Measurement measure(const Json& p, const std::string& ns) override {
    if (const Json* prom = json::find(p, {"prometheus"})) return prometheus(*prom, ns);
    if (const Json* web = json::find(p, {"web"})) return this->web(*web, ns);
    if (const Json* mesh = json::find(p, {"plugin", "podium.dev/mesh"}))
      return this->mesh(*mesh, ns);
    std::string kinds;
    if (p.is_object())
      for (const auto& [k, v] : p.items()) kinds += (kinds.empty() ? "" : ", ") + k;
    return {
        nullptr, "Error",
        "provider " + kinds + " is not supported (prometheus, web and plugin podium.dev/mesh are)"};
  }

 private:
  Measurement fetch(const std::string& url, const std::string& ns, const std::string& method,
                    const std::string& body, const std::map<std::string, std::string>& headers,
                    int timeoutSeconds, Json* out) {
    auto u = parseUrl(client_, url, ns);
    if (!u) return {nullptr, "Error", u.error()};
    auto r = net::httpRequest(method, u->host, u->port, u->path, body,
                              std::chrono::seconds(timeoutSeconds > 0 ? timeoutSeconds : 10),
                              headers, 1 << 20);
    if (!r) return {nullptr, "Error", url + ": " + r.error()};
    if (r->status < 200 || r->status >= 300)
      return {nullptr, "Error", url + ": HTTP " + std::to_string(r->status)};
    auto doc = json::parse(r->body);
    if (!doc) return {nullptr, "Error", url + ": the answer is not JSON"};
    *out = doc->value;
    return {};
  }

  Measurement prometheus(const Json& p, const std::string& ns) {
    std::string address = json::str(p, "address");
    while (!address.empty() && address.back() == '/') address.pop_back();
    Json doc;
    auto m = fetch(address + "/api/v1/query?query=" + strings::urlEncode(json::str(p, "query")), ns,
                   "GET", "", {}, static_cast<int>(json::integer(p, "timeout", 10)), &doc);
    if (!m.phase.empty()) return m;
    if (json::str(doc, "status") != "success")
      return {nullptr, "Error", "prometheus: " + json::str(doc, "error", "query failed")};
    const Json& data = json::at(doc, {"data"});
    std::string type = json::str(data, "resultType");
    const Json& result = json::at(data, {"result"});
    if (type == "scalar") return {numberOf(result[1]), "", ""};
    if (type == "vector") {
      Json values = Json::array();
      for (const auto& s : result) values.push_back(numberOf(json::at(s, {"value"})[1]));
      return {values, "", ""};
    }
    return {nullptr, "Error", "prometheus: unsupported result type " + type};
  }

  Measurement web(const Json& p, const std::string& ns) {
    std::map<std::string, std::string> headers;
    for (const auto& h : json::at(p, {"headers"}))
      headers[json::str(h, "key")] = json::str(h, "value");
    std::string body = json::str(p, "body");
    if (body.empty() && json::find(p, {"jsonBody"})) body = json::dump(p["jsonBody"]);
    Json doc;
    auto m = fetch(json::str(p, "url"), ns, json::str(p, "method", "GET"), body, headers,
                   static_cast<int>(json::integer(p, "timeoutSeconds", 10)), &doc);
    if (!m.phase.empty()) return m;
    std::string path = json::str(p, "jsonPath", "{$}");
    auto v = jsonPath(doc, path);
    if (!v) return {nullptr, "Error", v.error()};
    return {numberOf(*v), "", ""};
  }

  Measurement mesh(const Json& p, const std::string& ns) {
    std::string metric = json::str(p, "metric", "success-rate");
    std::string workload = json::str(p, "workload");
    std::string wNs = json::str(p, "namespace", ns);
    if (workload.empty()) return {nullptr, "Error", "podium.dev/mesh: workload is required"};
    if (metric != "success-rate" && metric != "request-duration-p99")
      return {nullptr, "Error",
              "podium.dev/mesh: metric " + metric +
                  " is not one of success-rate, request-duration-p99"};
    auto graph = client_.getRaw("/apis/mesh.podium.io/v1alpha1/graph");
    if (!graph) return {nullptr, "Error", "mesh graph: " + graph.error().message()};
    // Edges into the workload's versions: requests it answered, their errors and latency.
    std::string prefix = "version/" + wNs + "/" + workload + "/";
    double rps = 0, errors = 0, p99 = 0;
    for (const auto& e : json::at(*graph, {"edges"})) {
      if (json::str(e, "to").rfind(prefix, 0) != 0) continue;
      double r =
          json::at(e, {"requestsPerSecond"}).is_number() ? e["requestsPerSecond"].get<double>() : 0;
      rps += r;
      if (e.contains("errorRatio") && e["errorRatio"].is_number())
        errors += r * e["errorRatio"].get<double>();
      if (e.contains("p99Ms") && e["p99Ms"].is_number())
        p99 = std::max(p99, e["p99Ms"].get<double>());
    }
    if (rps <= 0)
      return {nullptr, "Inconclusive",
              "no requests reached " + wNs + "/" + workload +
                  " in the last second: nothing to judge it by (send it traffic)"};
    if (metric == "success-rate") return {1.0 - errors / rps, "", ""};
    return {p99, "", ""};
  }

  client::Client& client_;
};

}  // namespace

std::unique_ptr<MetricProviders> realMetricProviders(client::Client& client) {
  return std::make_unique<RealProviders>(client);
}

}  // namespace podium::controllers
