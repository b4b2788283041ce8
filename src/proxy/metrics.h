#pragma once

// Istio's standard metrics, with their label sets, in Prometheus' text format:
// istio_requests_total, istio_request_duration_milliseconds (histogram), istio_request_bytes and
// istio_response_bytes (histograms), istio_tcp_connections_opened_total / _closed_total,
// istio_tcp_sent_bytes_total, istio_tcp_received_bytes_total.

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace podium::proxy {

// The labels Istio puts on every series (reporter, source_*, destination_*, request_protocol,
// response_code, response_flags, connection_security_policy, ...), in Istio's order.
struct MetricLabels {
  std::string reporter = "destination";
  std::string sourceWorkload = "unknown", sourceWorkloadNamespace = "unknown",
              sourcePrincipal = "unknown";
  std::string sourceApp = "unknown", sourceVersion = "unknown";
  std::string sourceCanonicalService = "unknown", sourceCanonicalRevision = "latest";
  std::string destinationWorkload = "unknown", destinationWorkloadNamespace = "unknown";
  std::string destinationPrincipal = "unknown", destinationApp = "unknown",
              destinationVersion = "unknown";
  std::string destinationService = "unknown", destinationServiceName = "unknown",
              destinationServiceNamespace = "unknown";
  std::string destinationCanonicalService = "unknown", destinationCanonicalRevision = "latest";
  std::string destinationCluster = "Kubernetes", sourceCluster = "Kubernetes";
  std::string requestProtocol = "http";
  std::string connectionSecurityPolicy = "none";
  std::string responseFlags = "-";  // TCP series only; a request's comes with it
  // `name="value",...` without the response's labels (a request's series adds those).
  std::string render() const;
};

class Metrics {
 public:
  // The pod that answered a request ("" when none did): counted per pod too, once, by the proxy
  // that sent it there (Prometheus would label the series with the pod it scraped; the
  // autoscaler reads these).
  struct Answerer {
    std::string_view ns, pod;
  };
  // One request of the series `labels` (MetricLabels::render(), which callers may keep for a
  // connection's life) and the response's code and Envoy flags.
  void request(const std::string& labels, int responseCode, const std::string& responseFlags,
               double durationMs, uint64_t requestBytes, uint64_t responseBytes,
               const std::string& grpcStatus = "", Answerer answerer = {});
  void tcpOpened(const MetricLabels& l);
  void tcpClosed(const MetricLabels& l, uint64_t sent, uint64_t received);
  // Mesh TLS: a completed handshake, and a refused one (`side` "client" or "server").
  void mtlsHandshake(const std::string& side);
  void mtlsFailure(const std::string& side, const std::string& reason);
  // The Prometheus text exposition of everything counted so far.
  std::string render() const;
  // The per-pod counters as JSON: {"NS/POD": {"requests": N, "durationMsSum": X}, ...}.
  std::string renderPods() const;
  // Request series folded into edges of the mesh graph (Kiali's versioned-app graph): one per
  // source workload, destination service and destination workload version, with mTLS, counts
  // of requests and of 5xx answers, and the duration histogram's buckets (bounds in ms). JSON:
  // {"bounds": [...], "edges": [{"source", "sourceNamespace", "service", "serviceNamespace",
  //  "workload", "version", "mtls", "requests", "errors", "buckets": [...]}]}.
  std::string renderEdges() const;

 private:
  static constexpr std::array<double, 20> kDurationBuckets = {
      0.5,  1,    5,     10,    25,    50,     100,    250,     500,     1000,
      2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000, 1e18};
  static constexpr std::array<double, 9> kSizeBuckets = {1,      10,      100,      1000, 10000,
                                                         100000, 1000000, 10000000, 1e18};
  template <size_t N>
  struct Histogram {
    std::array<uint64_t, N> counts{};
    double sum = 0;
    uint64_t count = 0;
    void add(double v, const std::array<double, N>& bounds) {
      for (size_t i = 0; i < N; ++i)
        if (v <= bounds[i]) ++counts[i];
      sum += v;
      ++count;
    }
  };
  struct HttpSeries {
    uint64_t requests = 0;
    Histogram<20> duration;
    Histogram<9> requestSize, responseSize;
  };
  struct TcpSeries {
    uint64_t opened = 0, closed = 0, sent = 0, received = 0;
  };
  mutable std::mutex mu_;                   // guards the maps
  std::map<std::string, HttpSeries> http_;  // rendered labels -> series
  std::map<std::string, TcpSeries> tcp_;
  struct PodSeries {
    uint64_t requests = 0;
    double durationMsSum = 0;
  };
  std::map<std::string, PodSeries> pods_;  // "ns/pod"
  std::map<std::string, uint64_t> mtlsHandshakes_;
  std::map<std::pair<std::string, std::string>, uint64_t> mtlsFailures_;
};

}  // namespace podium::proxy
