// API write/read/watch benchmark. Drives either Podium's Kubernetes API (HTTPS, ConfigMaps) or
// etcd's v3 JSON gateway (HTTP, keys) with the same load: C concurrent clients, each on one
// keep-alive connection, each running N cycles of {create, update, read}, while one watcher
// counts the change events it receives. Prints one JSON line of results.
//
//   api_bench --target podium --url https://127.0.0.1:6443 --ca ca.crt --cert admin.crt --key
//   admin.key api_bench --target etcd --url http://127.0.0.1:2379
#include <utility>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "podium/common/json.h"
#include "podium/common/strings.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using podium::Json;

struct Options {
  std::string target = "podium", url, ca, cert, key, ns = "bench";
  int clients = 16, cycles = 200, valueBytes = 256;
};

struct Url {
  bool tls = false;
  std::string host;
  std::string port;
};

Url parseUrl(const std::string& u) {
  Url out;
  std::string rest = u;
  if (rest.rfind("https://", 0) == 0) {
    out.tls = true;
    rest = rest.substr(8);
  } else if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
  }
  auto colon = rest.find(':');
  out.host = rest.substr(0, colon);
  out.port = colon == std::string::npos ? (out.tls ? "443" : "80") : rest.substr(colon + 1);
  while (!out.port.empty() && out.port.back() == '/') out.port.pop_back();
  return out;
}

// One keep-alive HTTP/1.1 connection, plain or TLS.
class Conn {
 public:
  Conn(const Options& o, const Url& u, asio::ssl::context* ctx) : url_(u), socket_(io_) {
    tcp::resolver r(io_);
    auto eps = r.resolve(u.host, u.port);
    if (u.tls) {
      tls_.emplace(io_, *ctx);
      asio::connect(tls_->next_layer(), eps);
      tls_->next_layer().set_option(tcp::no_delay(true));
      tls_->handshake(asio::ssl::stream_base::client);
    } else {
      asio::connect(socket_, eps);
      socket_.set_option(tcp::no_delay(true));
    }
    (void)o;
  }

  int request(http::verb method, const std::string& target, const std::string& body,
              const std::string& contentType, std::string* out) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, url_.host);
    req.set(http::field::user_agent, "podium-api-bench");
    req.set(http::field::accept, "application/json");
    if (!body.empty()) req.set(http::field::content_type, contentType);
    req.body() = body;
    req.prepare_payload();
    req.keep_alive(true);
    http::response<http::string_body> res;
    if (tls_) {
      http::write(*tls_, req);
      http::read(*tls_, buf_, res);
    } else {
      http::write(socket_, req);
      http::read(socket_, buf_, res);
    }
    if (out) *out = std::move(res.body());
    return res.result_int();
  }

  // Streams a response, calling `line` for every newline-terminated line until `stop`.
  void stream(const std::string& target, http::verb method, const std::string& body,
              const std::function<void(const std::string&)>& line, std::atomic<bool>& stop) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, url_.host);
    req.set(http::field::accept, "application/json");
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::response_parser<http::empty_body> parser;
    parser.body_limit(boost::none);
    std::string pending;
    auto onChunk = [&](std::uint64_t, beast::string_view data, beast::error_code&) -> std::size_t {
      pending.append(data.data(), data.size());
      size_t pos;
      while ((pos = pending.find('\n')) != std::string::npos) {
        line(pending.substr(0, pos));
        pending.erase(0, pos + 1);
      }
      return data.size();
    };
    parser.on_chunk_body(onChunk);
    beast::error_code ec;
    if (tls_) {
      http::write(*tls_, req);
      http::read_header(*tls_, buf_, parser);
      while (!stop && !parser.is_done()) http::read_some(*tls_, buf_, parser, ec);
    } else {
      http::write(socket_, req);
      http::read_header(socket_, buf_, parser);
      while (!stop && !parser.is_done()) {
        http::read_some(socket_, buf_, parser, ec);
        if (ec) break;
      }
    }
  }

  void close() {
    beast::error_code ec;
    if (tls_)
      tls_->next_layer().close(ec);
    else
      socket_.close(ec);
  }

 private:
  Url url_;
  asio::io_context io_;
  tcp::socket socket_;
  std::optional<asio::ssl::stream<tcp::socket>> tls_;
  beast::flat_buffer buf_;
};

struct Stats {
  std::vector<double> writeMs, readMs;
  std::mutex mu;
  void add(std::vector<double>& w, std::vector<double>& r) {
    std::lock_guard<std::mutex> lock(mu);
    writeMs.insert(writeMs.end(), w.begin(), w.end());
    readMs.insert(readMs.end(), r.begin(), r.end());
  }
};

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * (v.size() - 1));
  return v[i];
}

double ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--target")
      o.target = v;
    else if (k == "--url")
      o.url = v;
    else if (k == "--ca")
      o.ca = v;
    else if (k == "--cert")
      o.cert = v;
    else if (k == "--key")
      o.key = v;
    else if (k == "--clients")
      o.clients = std::stoi(v);
    else if (k == "--cycles")
      o.cycles = std::stoi(v);
    else if (k == "--value-bytes")
      o.valueBytes = std::stoi(v);
    else {
      std::cerr << "unknown flag " << k << "\n";
      return 2;
    }
  }
  Url url = parseUrl(o.url);
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  if (url.tls) {
    ctx.load_verify_file(o.ca);
    ctx.use_certificate_chain_file(o.cert);
    ctx.use_private_key_file(o.key, asio::ssl::context::pem);
    ctx.set_verify_mode(asio::ssl::verify_peer);
  }
  bool etcd = o.target == "etcd";
  std::string value(static_cast<size_t>(o.valueBytes), 'x');
  const std::string cmBase = "/api/v1/namespaces/" + o.ns + "/configmaps";

  if (!etcd) {  // the namespace the load runs in
    Conn c(o, url, &ctx);
    c.request(
        http::verb::post, "/api/v1/namespaces",
        Json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", o.ns}}}}.dump(),
        "application/json", nullptr);
  }

  // Watcher: counts change events for the bench's keys.
  std::atomic<bool> stopWatch{false};
  std::atomic<int64_t> events{0};
  std::atomic<bool> watchReady{false};
  std::thread watcher([&] {
    try {
      Conn c(o, url, &ctx);
      watchReady = true;
      if (etcd) {
        std::string key = podium::strings::base64Encode("/bench/");
        std::string end = podium::strings::base64Encode("/bench0");
        c.stream(
            "/v3/watch", http::verb::post,
            Json{{"create_request", {{"key", key}, {"range_end", end}}}}.dump(),
            [&](const std::string& line) {
              auto j = podium::json::parse(line);
              if (!j) return;
              const Json* evs = podium::json::find(j->value, {"result", "events"});
              if (evs && evs->is_array()) events += static_cast<int64_t>(evs->size());
            },
            stopWatch);
      } else {
        c.stream(
            cmBase + "?watch=true&resourceVersion=0", http::verb::get, "",
            [&](const std::string& line) {
              if (line.find("\"type\":\"ADDED\"") != std::string::npos ||
                  line.find("\"type\":\"MODIFIED\"") != std::string::npos)
                ++events;
            },
            stopWatch);
      }
    } catch (const std::exception& e) {
      if (!stopWatch) std::cerr << "watch: " << e.what() << "\n";
    }
  });
  while (!watchReady) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  Stats stats;
  std::atomic<int> errors{0};
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < o.clients; ++t) {
    threads.emplace_back([&, t] {
      std::vector<double> w, r;
      try {
        Conn c(o, url, &ctx);
        for (int i = 0; i < o.cycles; ++i) {
          std::string name = "c" + std::to_string(t) + "-" + std::to_string(i);
          std::string body;
          auto t0 = Clock::now();
          if (etcd) {
            Json put = {{"key", podium::strings::base64Encode("/bench/" + name)},
                        {"value", podium::strings::base64Encode(value)}};
            if (c.request(http::verb::post, "/v3/kv/put", put.dump(), "application/json", &body) !=
                200)
              ++errors;
            auto t1 = Clock::now();
            put["value"] = podium::strings::base64Encode(value + "2");
            if (c.request(http::verb::post, "/v3/kv/put", put.dump(), "application/json", &body) !=
                200)
              ++errors;
            auto t2 = Clock::now();
            Json range = {{"key", podium::strings::base64Encode("/bench/" + name)}};
            if (c.request(http::verb::post, "/v3/kv/range", range.dump(), "application/json",
                          &body) != 200)
              ++errors;
            auto t3 = Clock::now();
            w.push_back(ms(t0, t1));
            w.push_back(ms(t1, t2));
            r.push_back(ms(t2, t3));
          } else {
            Json cm = {{"apiVersion", "v1"},
                       {"kind", "ConfigMap"},
                       {"metadata", {{"name", name}}},
                       {"data", {{"v", value}}}};
            if (c.request(http::verb::post, cmBase, cm.dump(), "application/json", &body) != 201) {
              ++errors;
              continue;
            }
            auto t1 = Clock::now();
            auto created = podium::json::parse(body);
            cm["metadata"]["resourceVersion"] =
                created ? podium::json::getString(created->value, {"metadata", "resourceVersion"})
                        : "";
            cm["data"]["v"] = value + "2";
            if (c.request(http::verb::put, cmBase + "/" + name, cm.dump(), "application/json",
                          &body) != 200)
              ++errors;
            auto t2 = Clock::now();
            if (c.request(http::verb::get, cmBase + "/" + name, "", "", &body) != 200) ++errors;
            auto t3 = Clock::now();
            w.push_back(ms(t0, t1));
            w.push_back(ms(t1, t2));
            r.push_back(ms(t2, t3));
          }
        }
        c.close();
      } catch (const std::exception& e) {
        std::cerr << "client " << t << ": " << e.what() << "\n";
        ++errors;
      }
      stats.add(w, r);
    });
  }
  for (auto& th : threads) th.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  int64_t expected = static_cast<int64_t>(stats.writeMs.size());
  auto waitUntil = Clock::now() + std::chrono::seconds(10);
  while (events.load() < expected && Clock::now() < waitUntil)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  double allDelivered = std::chrono::duration<double>(Clock::now() - start).count();
  stopWatch = true;
  // Wake the watcher with one more write so its blocking read returns.
  try {
    Conn c(o, url, &ctx);
    if (etcd)
      c.request(http::verb::post, "/v3/kv/put",
                Json{{"key", podium::strings::base64Encode("/bench/zz")}, {"value", "eA=="}}.dump(),
                "application/json", nullptr);
    else
      c.request(
          http::verb::post, cmBase,
          Json{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "zz-stop"}}}}
              .dump(),
          "application/json", nullptr);
  } catch (...) {
  }
  watcher.join();
  Json out = {{"target", o.target},
              {"clients", o.clients},
              {"writes", stats.writeMs.size()},
              {"reads", stats.readMs.size()},
              {"errors", errors.load()},
              {"seconds", seconds},
              {"writes_per_sec", stats.writeMs.size() / seconds},
              {"reads_per_sec", stats.readMs.size() / seconds},
              {"write_p50_ms", pct(stats.writeMs, 50)},
              {"write_p99_ms", pct(stats.writeMs, 99)},
              {"read_p50_ms", pct(stats.readMs, 50)},
              {"read_p99_ms", pct(stats.readMs, 99)},
              {"watch_events", events.load()},
              {"watch_events_per_sec", events.load() / allDelivered}};
  std::cout << out.dump() << std::endl;
  return errors.load() == 0 ? 0 : 1;
}
