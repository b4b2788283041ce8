#include "metrics.h"

#include <cstdio>

#include "podium/common/json.h"

namespace podium::proxy {

namespace {

std::string escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double v) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

template <size_t N>
std::string bound(const std::array<double, N>& bounds, size_t i) {
  return i + 1 == N ? "+Inf" : number(bounds[i]);
}

}  // namespace

std::string MetricLabels::render() const {
  std::vector<std::pair<const char*, const std::string*>> l = {
      {"reporter", &reporter},
      {"source_workload", &sourceWorkload},
      {"source_canonical_service", &sourceCanonicalService},
      {"source_canonical_revision", &sourceCanonicalRevision},
      {"source_workload_namespace", &sourceWorkloadNamespace},
      {"source_principal", &sourcePrincipal},
      {"source_app", &sourceApp},
      {"source_version", &sourceVersion},
      {"source_cluster", &sourceCluster},
      {"destination_workload", &destinationWorkload},
      {"destination_workload_namespace", &destinationWorkloadNamespace},
      {"destination_principal", &destinationPrincipal},
      {"destination_app", &destinationApp},
      {"destination_version", &destinationVersion},
      {"destination_service", &destinationService},
      {"destination_canonical_service", &destinationCanonicalService},
      {"destination_canonical_revision", &destinationCanonicalRevision},
      {"destination_service_name", &destinationServiceName},
      {"destination_service_namespace", &destinationServiceNamespace},
      {"destination_cluster", &destinationCluster},
      {"request_protocol", &requestProtocol},
      {"connection_security_policy", &connectionSecurityPolicy}};
  std::string out;
  for (const auto& [k, v] : l) {
    if (!out.empty()) out += ',';
    out += k;
    out += "=\"";
    out += escape(*v);
    out += '"';
  }
  return out;
}

void Metrics::request(const std::string& labels, int responseCode, const std::string& responseFlags,
                      double durationMs, uint64_t requestBytes, uint64_t responseBytes,
                      const std::string& grpcStatus, Answerer answerer) {
  std::string key;
  key.reserve(labels.size() + 80);
  key += labels;
  key += ",response_code=\"";
  key += std::to_string(responseCode);
  key += "\",grpc_response_status=\"";
  key += escape(grpcStatus);
  key += "\",response_flags=\"";
  key += escape(responseFlags);
  key += '"';
  std::lock_guard<std::mutex> lock(mu_);
  HttpSeries& s = http_[key];
  ++s.requests;
  s.duration.add(durationMs, kDurationBuckets);
  s.requestSize.add(static_cast<double>(requestBytes), kSizeBuckets);
  s.responseSize.add(static_cast<double>(responseBytes), kSizeBuckets);
  if (answerer.pod.empty()) return;
  std::string pod;
  pod.reserve(answerer.ns.size() + answerer.pod.size() + 1);
  pod.append(answerer.ns).append("/").append(answerer.pod);
  PodSeries& p = pods_[pod];
  ++p.requests;
  p.durationMsSum += durationMs;
}

std::string Metrics::renderPods() const {
  Json out = Json::object();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [k, s] : pods_)
    out[k] = {{"requests", s.requests}, {"durationMsSum", s.durationMsSum}};
  return json::dump(out) + "\n";
}

namespace {

// The labels of a rendered series key (name="value",...; values escaped as render() does).
std::map<std::string, std::string> parseLabels(const std::string& key) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i < key.size()) {
    size_t eq = key.find("=\"", i);
    if (eq == std::string::npos) break;
    std::string name = key.substr(i, eq - i), value;
    size_t j = eq + 2;
    for (; j < key.size() && key[j] != '"'; ++j) {
      if (key[j] == '\\' && j + 1 < key.size()) ++j;
      value += key[j];
    }
    out[name] = value;
    i = j + 2;  // past the closing quote and the comma
  }
  return out;
}

}  // namespace

std::string Metrics::renderEdges() const {
  struct Edge {
    Json id;
    uint64_t requests = 0, errors = 0;
    std::array<uint64_t, 20> buckets{};
  };
  std::map<std::string, Edge> edges;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, series] : http_) {
      auto l = parseLabels(key);
      Json id = {{"source", l["source_workload"]},
                 {"sourceNamespace", l["source_workload_namespace"]},
                 {"service", l["destination_service_name"]},
                 {"serviceNamespace", l["destination_service_namespace"]},
                 {"workload", l["destination_workload"]},
                 {"version", l["destination_version"]},
                 {"mtls", l["connection_security_policy"] == "mutual_tls"}};
      Edge& e = edges[json::dump(id)];
      e.id = id;
      e.requests += series.requests;
      if (l["response_code"].size() == 3 && l["response_code"][0] == '5')
        e.errors += series.requests;
      for (size_t b = 0; b < e.buckets.size(); ++b) e.buckets[b] += series.duration.counts[b];
    }
  }
  Json list = Json::array();
  for (auto& [k, e] : edges) {
    Json j = e.id;
    j["requests"] = e.requests;
    j["errors"] = e.errors;
    j["buckets"] = e.buckets;
    list.push_back(std::move(j));
  }
  Json bounds = Json::array();
  for (size_t b = 0; b + 1 < kDurationBuckets.size(); ++b) bounds.push_back(kDurationBuckets[b]);
  return json::dump(Json{{"bounds", bounds}, {"edges", list}}) + "\n";
}

void Metrics::tcpOpened(const MetricLabels& l) {
  std::string key = l.render() + ",response_flags=\"" + escape(l.responseFlags) + "\"";
  std::lock_guard<std::mutex> lock(mu_);
  ++tcp_[key].opened;
}

void Metrics::tcpClosed(const MetricLabels& l, uint64_t sent, uint64_t received) {
  std::string key = l.render() + ",response_flags=\"" + escape(l.responseFlags) + "\"";
  std::lock_guard<std::mutex> lock(mu_);
  TcpSeries& s = tcp_[key];
  ++s.closed;
  s.sent += sent;
  s.received += received;
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  auto header = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  header("istio_requests_total", "counter", "Requests handled by the proxy.");
  for (const auto& [k, s] : http_)
    out += "istio_requests_total{" + k + "} " + std::to_string(s.requests) + "\n";
  auto histogram = [&](const char* name, const char* help, auto member, const auto& bounds) {
    header(name, "histogram", help);
    for (const auto& [k, s] : http_) {
      const auto& h = s.*member;
      for (size_t i = 0; i < bounds.size(); ++i)
        out += std::string(name) + "_bucket{" + k + ",le=\"" + bound(bounds, i) + "\"} " +
               std::to_string(h.counts[i]) + "\n";
      out += std::string(name) + "_sum{" + k + "} " + number(h.sum) + "\n";
      out += std::string(name) + "_count{" + k + "} " + std::to_string(h.count) + "\n";
    }
  };
  histogram("istio_request_duration_milliseconds", "Request duration in milliseconds.",
            &HttpSeries::duration, kDurationBuckets);
  histogram("istio_request_bytes", "Request sizes in bytes (headers and body).",
            &HttpSeries::requestSize, kSizeBuckets);
  histogram("istio_response_bytes", "Response sizes in bytes (headers and body).",
            &HttpSeries::responseSize, kSizeBuckets);
  auto tcp = [&](const char* name, const char* help, auto member) {
    header(name, "counter", help);
    for (const auto& [k, s] : tcp_)
      out += std::string(name) + "{" + k + "} " + std::to_string(s.*member) + "\n";
  };
  tcp("istio_tcp_connections_opened_total", "TCP connections opened.", &TcpSeries::opened);
  tcp("istio_tcp_connections_closed_total", "TCP connections closed.", &TcpSeries::closed);
  tcp("istio_tcp_sent_bytes_total", "Bytes sent to the client on TCP connections.",
      &TcpSeries::sent);
  tcp("istio_tcp_received_bytes_total", "Bytes received from the client on TCP connections.",
      &TcpSeries::received);
  header("podium_mtls_handshakes_total", "counter",
         "Mesh TLS handshakes completed, by the side this proxy played.");
  for (const auto& [k, n] : mtlsHandshakes_)
    out += "podium_mtls_handshakes_total{side=\"" + k + "\"} " + std::to_string(n) + "\n";
  header("podium_mtls_rejected_total", "counter",
         "Mesh TLS connections refused: the peer's certificate (untrusted, expired, "
         "trust_domain, wrong_identity, no_certificate) or the handshake itself.");
  for (const auto& [k, n] : mtlsFailures_)
    out += "podium_mtls_rejected_total{side=\"" + k.first + "\",reason=\"" + k.second + "\"} " +
           std::to_string(n) + "\n";
  return out;
}

void Metrics::mtlsHandshake(const std::string& side) {
  std::lock_guard<std::mutex> lock(mu_);
  ++mtlsHandshakes_[side];
}

void Metrics::mtlsFailure(const std::string& side, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++mtlsFailures_[{side, reason}];
}

}  // namespace podium::proxy
