// The client over HTTPS: the same calls as the in-process client, as REST requests to an API
// server (what `podium agent` on another machine uses). Connections are kept alive in a small
// pool; each watch holds its own connection, read by its own thread.
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "podium/client/remote_client.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"

namespace podium::client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using api::ApiError;
using Stream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto kRequestTimeout = std::chrono::seconds(60);

struct Reply {
  int status = 0;
  std::string body;
};

// One TLS connection to the API server.
class Connection {
 public:
  Connection(asio::io_context& io, asio::ssl::context& ssl) : stream_(io, ssl) {}

  Expected<void, std::string> connect(const std::string& host, const std::string& port,
                                      std::chrono::milliseconds timeout) {
    host_ = host;
    boost::system::error_code ec;
    tcp::resolver resolver(stream_.get_executor());
    auto endpoints = resolver.resolve(host, port, ec);
    if (ec) return Unexpected("resolve " + host + ": " + ec.message());
    beast::get_lowest_layer(stream_).expires_after(timeout);
    beast::get_lowest_layer(stream_).connect(endpoints, ec);
    if (ec) return Unexpected("connect " + host + ":" + port + ": " + ec.message());
    if (!SSL_set_tlsext_host_name(stream_.native_handle(), host.c_str()))
      return Unexpected(std::string("TLS SNI failed"));
    stream_.handshake(asio::ssl::stream_base::client, ec);
    if (ec) return Unexpected("TLS handshake with " + host + ":" + port + ": " + ec.message());
    beast::get_lowest_layer(stream_).socket().set_option(tcp::no_delay(true), ec);
    return {};
  }

  Stream& stream() { return stream_; }
  beast::flat_buffer& buffer() { return buffer_; }
  const std::string& host() const { return host_; }
  void close() {
    boost::system::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(stream_).close();
  }

 private:
  Stream stream_;
  beast::flat_buffer buffer_;
  std::string host_;  // the server connected to
};

ApiError errorFrom(const Reply& r) {
  auto parsed = json::parse(r.body);
  Json status = parsed ? std::move(parsed->value) : Json();
  if (status.is_object() && json::str(status, "kind") == "Status")
    return ApiError(static_cast<int>(json::integer(status, "code", r.status)),
                    json::str(status, "reason"), json::str(status, "message"),
                    status.contains("details") ? status["details"] : Json());
  return ApiError(r.status, r.status == 401 ? "Unauthorized" : "InternalError",
                  "the server answered " + std::to_string(r.status) + ": " + r.body.substr(0, 200));
}

std::string basePath(const Resource& r, const std::string& ns) {
  std::string p = r.group.empty() ? "/api/" + r.version : "/apis/" + r.group + "/" + r.version;
  if (!ns.empty()) p += "/namespaces/" + strings::urlEncode(ns);
  return p + "/" + r.plural;
}

std::string selectorQuery(const ListOptions& o) {
  std::string q;
  if (!o.labelSelector.empty()) q += "&labelSelector=" + strings::urlEncode(o.labelSelector);
  if (!o.fieldSelector.empty()) q += "&fieldSelector=" + strings::urlEncode(o.fieldSelector);
  if (!o.resourceVersion.empty()) q += "&resourceVersion=" + strings::urlEncode(o.resourceVersion);
  return q;
}

class RemoteClient;

class RemoteWatch : public Watch {
 public:
  RemoteWatch(std::unique_ptr<asio::io_context> io, std::unique_ptr<Connection> conn)
      : io_(std::move(io)), conn_(std::move(conn)) {
    reader_ = std::thread([this] { read(); });
  }
  ~RemoteWatch() override {
    stop();
    reader_.join();
  }

  bool next(std::vector<Event>& out, std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || ended_; });
    while (!queue_.empty()) {
      out.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    return !ended_;
  }

  void stop() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopped_) {
      stopped_ = true;
      conn_->close();
    }
    ended_ = true;
    cv_.notify_all();
  }

 private:
  // Reads the chunked body line by line; each line is one watch event.
  void read() {
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    boost::system::error_code ec;
    beast::get_lowest_layer(conn_->stream()).expires_never();
    http::read_header(conn_->stream(), conn_->buffer(), parser, ec);
    if (!ec && parser.get().result_int() != 200) ec = http::error::bad_target;
    std::string pending;
    char buf[65536];
    while (!ec && !parser.is_done()) {
      parser.get().body().data = buf;
      parser.get().body().size = sizeof buf;
      http::read_some(conn_->stream(), conn_->buffer(), parser, ec);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) break;
      pending.append(buf, sizeof buf - parser.get().body().size);
      size_t nl;
      std::vector<Event> events;
      bool expired = false;
      while ((nl = pending.find('\n')) != std::string::npos) {
        auto parsedLine = json::parse(std::string_view(pending).substr(0, nl));
        pending.erase(0, nl + 1);
        if (!parsedLine || !parsedLine->value.is_object()) continue;
        Json& line = parsedLine->value;
        std::string type = json::str(line, "type");
        if (type == "ERROR") {
          expired = true;
          break;
        }
        EventType t = type == "ADDED"      ? EventType::Added
                      : type == "MODIFIED" ? EventType::Modified
                      : type == "DELETED"  ? EventType::Deleted
                                           : EventType::Bookmark;
        events.push_back(Event{t, std::make_shared<const Json>(std::move(line["object"]))});
      }
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& e : events) queue_.push_back(std::move(e));
      if (expired) break;
      cv_.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = true;
    cv_.notify_all();
  }

  std::unique_ptr<asio::io_context> io_;
  std::unique_ptr<Connection> conn_;
  std::thread reader_;
  std::mutex mu_;  // guards queue_, ended_, stopped_
  std::condition_variable cv_;
  std::deque<Event> queue_;
  bool ended_ = false;
  bool stopped_ = false;
};

class RemoteClient : public Client {
 public:
  struct Server {
    std::string host, port;
  };

  RemoteClient(RemoteOptions o, std::vector<Server> servers)
      : opts_(std::move(o)), servers_(std::move(servers)), ssl_(asio::ssl::context::tls_client) {}

  Expected<void, std::string> init() {
    if (opts_.caFile.empty()) {
      ssl_.set_verify_mode(asio::ssl::verify_none);
      if (!opts_.insecureSkipTlsVerify)
        PODIUM_LOG(Warn) << "no CA file given: the API server's certificate is not verified";
    } else {
      boost::system::error_code ec;
      ssl_.load_verify_file(opts_.caFile, ec);
      if (ec) return Unexpected("CA file " + opts_.caFile + ": " + ec.message());
      ssl_.set_verify_mode(asio::ssl::verify_peer);
    }
    if (!opts_.certFile.empty()) {
      boost::system::error_code ec;
      ssl_.use_certificate_chain_file(opts_.certFile, ec);
      if (ec) return Unexpected("client certificate " + opts_.certFile + ": " + ec.message());
      ssl_.use_private_key_file(opts_.keyFile, asio::ssl::context::pem, ec);
      if (ec) return Unexpected("client key " + opts_.keyFile + ": " + ec.message());
    }
    return {};
  }

  Result getPath(const std::string& path) { return call("GET", path, ""); }
  std::chrono::milliseconds connectTimeout() const {
    return opts_.timeout.count() > 0 ? opts_.timeout : std::chrono::milliseconds(10000);
  }
  Result getRaw(const std::string& path) override { return getPath(path); }
  Result getScale(const Resource& r, const std::string& ns, const std::string& name) override {
    return call("GET", basePath(r, ns) + "/" + strings::urlEncode(name) + "/scale", "");
  }

  Result get(const Resource& r, const std::string& ns, const std::string& name) override {
    return call("GET", basePath(r, ns) + "/" + strings::urlEncode(name), "");
  }

  Expected<List, ApiError> list(const Resource& r, const std::string& ns,
                                const ListOptions& o) override {
    std::string q = selectorQuery(o);
    auto res = call("GET", basePath(r, ns) + (q.empty() ? "" : "?" + q.substr(1)), "");
    if (!res) return Unexpected(res.error());
    List out;
    out.resourceVersion = json::getString(*res, {"metadata", "resourceVersion"});
    std::string kind = json::str(*res, "kind");
    if (kind.size() > 4) kind.resize(kind.size() - 4);  // "PodList" -> "Pod"
    std::string apiVersion = r.apiVersion();
    if (res->contains("items") && (*res)["items"].is_array())
      for (auto& item : (*res)["items"]) {
        // List items carry no kind; callers expect whole objects.
        item["kind"] = kind;
        item["apiVersion"] = apiVersion;
        out.items.push_back(std::make_shared<const Json>(std::move(item)));
      }
    return out;
  }

  Expected<WatchPtr, ApiError> watch(const Resource& r, const std::string& ns,
                                     const ListOptions& o) override {
    std::unique_ptr<asio::io_context> io;
    std::unique_ptr<Connection> conn;
    auto connected = untilOneConnects([&](const Server& s) {
      io = std::make_unique<asio::io_context>();
      conn = std::make_unique<Connection>(*io, ssl_);
      return conn->connect(s.host, s.port, connectTimeout());
    });
    if (!connected) return Unexpected(ApiError::serviceUnavailable(connected.error()));
    http::request<http::string_body> req{
        http::verb::get,
        basePath(r, ns) + "?watch=true&allowWatchBookmarks=true" + selectorQuery(o), 11};
    prepare(req, "");
    req.set(http::field::host, conn->host());
    boost::system::error_code ec;
    http::write(conn->stream(), req, ec);
    if (ec) return Unexpected(ApiError::serviceUnavailable("watch: " + ec.message()));
    return WatchPtr(new RemoteWatch(std::move(io), std::move(conn)));
  }

  Result create(const Resource& r, const std::string& ns, const Json& obj) override {
    return call("POST", basePath(r, ns) + "?fieldManager=" + opts_.fieldManager, json::dump(obj));
  }

  Result update(const Resource& r, const std::string& ns, const Json& obj,
                const std::string& sub) override {
    std::string name = json::getString(obj, {"metadata", "name"});
    return call("PUT",
                basePath(r, ns) + "/" + strings::urlEncode(name) + (sub.empty() ? "" : "/" + sub) +
                    "?fieldManager=" + opts_.fieldManager,
                json::dump(obj));
  }

  Result patch(const Resource& r, const std::string& ns, const std::string& name,
               const Json& mergePatch, const std::string& sub) override {
    return call("PATCH",
                basePath(r, ns) + "/" + strings::urlEncode(name) + (sub.empty() ? "" : "/" + sub) +
                    "?fieldManager=" + opts_.fieldManager,
                json::dump(mergePatch), "application/merge-patch+json");
  }

  Result apply(const Resource& r, const std::string& ns, const Json& config, bool force,
               DryRun dryRun) override {
    std::string name = json::getString(config, {"metadata", "name"});
    return call("PATCH",
                basePath(r, ns) + "/" + strings::urlEncode(name) +
                    "?fieldManager=" + opts_.fieldManager + (force ? "&force=true" : "") +
                    (dryRun == DryRun::Strict    ? "&dryRun=All&fieldValidation=Strict"
                     : dryRun == DryRun::Lenient ? "&dryRun=All&fieldValidation=Ignore"
                                                 : ""),
                json::dump(config), "application/apply-patch+yaml");
  }

  Result remove(const Resource& r, const std::string& ns, const std::string& name,
                const DeleteOptions& d) override {
    Json opts = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
    if (!d.propagationPolicy.empty()) opts["propagationPolicy"] = d.propagationPolicy;
    if (d.gracePeriodSeconds) opts["gracePeriodSeconds"] = *d.gracePeriodSeconds;
    if (!d.preconditionUid.empty()) opts["preconditions"]["uid"] = d.preconditionUid;
    if (!d.preconditionResourceVersion.empty())
      opts["preconditions"]["resourceVersion"] = d.preconditionResourceVersion;
    return call("DELETE", basePath(r, ns) + "/" + strings::urlEncode(name), json::dump(opts));
  }

  Expected<void, ApiError> bind(const std::string& ns, const std::string& pod,
                                const std::string& uid, const std::string& node) override {
    Json b = {{"apiVersion", "v1"},
              {"kind", "Binding"},
              {"metadata", {{"name", pod}, {"namespace", ns}, {"uid", uid}}},
              {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}}}};
    auto r =
        call("POST", basePath(resources::kPods, ns) + "/" + strings::urlEncode(pod) + "/binding",
             json::dump(b));
    if (!r) return Unexpected(r.error());
    return {};
  }

  Result requestCertificate(const std::string& ns, const std::string& serviceAccount,
                            const Json& request) override {
    return call("POST",
                basePath(resources::kServiceAccounts, ns) + "/" +
                    strings::urlEncode(serviceAccount) + "/certificate",
                json::dump(request));
  }

  std::vector<Resource> namespacedResources() override { return collect(true); }
  std::vector<Resource> allResources() override { return collect(false); }

  std::optional<Resource> resourceFor(const std::string& apiVersion,
                                      const std::string& kind) override {
    for (int attempt = 0; attempt < 2; ++attempt) {
      {
        std::lock_guard<std::mutex> lock(discoveryMu_);
        for (const auto& d : discovered_)
          if (d.resource.apiVersion() == apiVersion && d.kind == kind) return d.resource;
      }
      if (attempt == 0) discover();
    }
    return std::nullopt;
  }

  bool namespaced(const Resource& r) override {
    for (int attempt = 0; attempt < 2; ++attempt) {
      {
        std::lock_guard<std::mutex> lock(discoveryMu_);
        for (const auto& d : discovered_)
          if (d.resource.group == r.group && d.resource.version == r.version &&
              d.resource.plural == r.plural)
            return d.namespaced;
      }
      if (attempt == 0) discover();
    }
    return false;
  }

 private:
  struct Discovered {
    Resource resource;
    std::string kind;
    bool namespaced;
  };

  // Calls `attempt` for each server, from the one last reached, until one connects (several
  // --server URLs: the API servers of one cluster, any of which serves). The one that did is
  // tried first next time.
  template <class F>
  Expected<void, std::string> untilOneConnects(F attempt) {
    size_t first = current_.load();
    std::string errors;
    for (size_t i = 0; i < servers_.size(); ++i) {
      size_t k = (first + i) % servers_.size();
      auto r = attempt(servers_[k]);
      if (r) {
        current_.store(k);
        return {};
      }
      errors += (errors.empty() ? "" : "; ") + r.error();
    }
    return Unexpected(errors);
  }

  template <class Req>
  void prepare(Req& req, const std::string& contentType) {
    if (!opts_.token.empty()) req.set(http::field::authorization, "Bearer " + opts_.token);
    req.set(http::field::user_agent, "podium-agent/v0.1.0");
    req.set(http::field::accept, "application/json");
    if (!contentType.empty()) req.set(http::field::content_type, contentType);
  }

  // One request on a pooled connection; a stale connection is retried once on a fresh one.
  Expected<Reply, std::string> roundTrip(const std::string& method, const std::string& target,
                                         const std::string& body, const std::string& contentType) {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    prepare(req, body.empty() ? "" : contentType);
    req.body() = body;
    req.prepare_payload();
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::unique_ptr<Pooled> c = take();
      bool fresh = false;
      if (!c) {
        auto r = untilOneConnects([&](const Server& s) {
          c = std::make_unique<Pooled>(ssl_);
          return c->conn.connect(s.host, s.port, connectTimeout());
        });
        if (!r) return Unexpected(r.error());
        fresh = true;
      }
      req.set(http::field::host, c->conn.host());
      boost::system::error_code ec;
      beast::get_lowest_layer(c->conn.stream())
          .expires_after(opts_.timeout.count() > 0 ? opts_.timeout
                                                   : std::chrono::milliseconds(kRequestTimeout));
      http::write(c->conn.stream(), req, ec);
      http::response<http::string_body> res;
      if (!ec) http::read(c->conn.stream(), c->conn.buffer(), res, ec);
      if (ec) {
        if (!fresh) continue;  // the server closed an idle connection: once more, anew
        return Unexpected(method + " " + target + ": " + ec.message());
      }
      Reply reply{static_cast<int>(res.result_int()), std::move(res.body())};
      if (res.keep_alive()) give(std::move(c));
      return reply;
    }
    return Unexpected(method + " " + target + ": connection lost");
  }

  Result call(const std::string& method, const std::string& target, const std::string& body,
              const std::string& contentType = "application/json") {
    auto r = roundTrip(method, target, body, contentType);
    if (!r) return Unexpected(ApiError::serviceUnavailable(r.error()));
    if (r->status < 200 || r->status >= 300) return Unexpected(errorFrom(*r));
    auto parsed = json::parse(r->body);
    if (!parsed)
      return Unexpected(ApiError::internal("unreadable answer to " + method + " " + target));
    return std::move(parsed->value);
  }

  void discover() {
    std::vector<Discovered> found;
    auto addList = [&](const std::string& path, const std::string& group,
                       const std::string& version) {
      auto list = call("GET", path, "");
      if (!list) return;
      for (const auto& r : arrayAt(*list, "resources")) {
        std::string name = json::str(r, "name");
        if (name.find('/') != std::string::npos) continue;
        // Only what can be listed, watched and deleted (the metrics APIs cannot): what the
        // namespace controller and the garbage collector act on.
        int verbs = 0;
        for (const auto& v : arrayAt(r, "verbs"))
          verbs += v == "list" || v == "watch" || v == "delete";
        if (verbs < 3) continue;
        found.push_back(
            {Resource{group, version, name}, json::str(r, "kind"), json::boolean(r, "namespaced")});
      }
    };
    addList("/api/v1", "", "v1");
    if (auto groups = call("GET", "/apis", ""))
      for (const auto& g : arrayAt(*groups, "groups"))
        for (const auto& v : arrayAt(g, "versions"))
          addList("/apis/" + json::str(v, "groupVersion"), json::str(g, "name"),
                  json::str(v, "version"));
    std::lock_guard<std::mutex> lock(discoveryMu_);
    discovered_ = std::move(found);
  }

  static const Json& arrayAt(const Json& obj, const char* field) {
    static const Json kEmpty = Json::array();
    const Json* v = json::find(obj, {field});
    return v && v->is_array() ? *v : kEmpty;
  }

  std::vector<Resource> collect(bool namespacedOnly) {
    discover();
    std::lock_guard<std::mutex> lock(discoveryMu_);
    std::vector<Resource> out;
    for (const auto& d : discovered_)
      if (!namespacedOnly || d.namespaced) out.push_back(d.resource);
    return out;
  }

  struct Pooled {
    explicit Pooled(asio::ssl::context& ssl) : conn(io, ssl) {}
    asio::io_context io;
    Connection conn;
  };
  std::unique_ptr<Pooled> take() {
    std::lock_guard<std::mutex> lock(poolMu_);
    if (pool_.empty()) return nullptr;
    auto c = std::move(pool_.back());
    pool_.pop_back();
    return c;
  }
  void give(std::unique_ptr<Pooled> c) {
    std::lock_guard<std::mutex> lock(poolMu_);
    if (pool_.size() < 16) pool_.push_back(std::move(c));
  }

  RemoteOptions opts_;
  std::vector<Server> servers_;
  std::atomic<size_t> current_{0};  // the server last reached
  asio::ssl::context ssl_;
  std::mutex poolMu_;  // guards pool_
  std::vector<std::unique_ptr<Pooled>> pool_;
  std::mutex discoveryMu_;  // guards discovered_
  std::vector<Discovered> discovered_;
};

}  // namespace

namespace {

Expected<std::unique_ptr<RemoteClient>, std::string> makeRemoteClient(
    const RemoteOptions& options) {
  std::vector<RemoteClient::Server> servers;
  for (const std::string& part : strings::split(options.server, ',')) {
    std::string url(strings::trim(part));
    if (url.empty()) continue;
    if (url.rfind("https://", 0) != 0)
      return Unexpected("the server URL must start with https://: " + url);
    std::string hostport = url.substr(8);
    if (auto slash = hostport.find('/'); slash != std::string::npos) hostport.resize(slash);
    RemoteClient::Server s{hostport, "443"};
    if (auto colon = hostport.rfind(':');
        colon != std::string::npos && hostport.find(']') == std::string::npos) {
      s.host = hostport.substr(0, colon);
      s.port = hostport.substr(colon + 1);
    }
    servers.push_back(std::move(s));
  }
  if (servers.empty()) return Unexpected(std::string("no server URL given"));
  auto c = std::make_unique<RemoteClient>(options, std::move(servers));
  if (auto r = c->init(); !r) return Unexpected(r.error());
  return c;
}

}  // namespace

Expected<ClientPtr, std::string> newRemoteClient(const RemoteOptions& options) {
  auto c = makeRemoteClient(options);
  if (!c) return Unexpected(c.error());
  return ClientPtr(std::move(*c));
}

Expected<Json, api::ApiError> getJson(const RemoteOptions& options, const std::string& path) {
  auto c = makeRemoteClient(options);
  if (!c) return Unexpected(api::ApiError::serviceUnavailable(c.error()));
  return (*c)->getPath(path);
}

}  // namespace podium::client
