// HTTPS transport: Boost.Asio event loops (one strand per connection, C++20 coroutines) for
// I/O, and a worker pool for handlers, which may block on the store's group commit.
#include <utility>  // Boost 1.74's asio/awaitable.hpp needs std::exchange declared first

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <thread>

#include "http_upgrade.h"
#include "podium/api/http.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"

namespace podium::api {

std::string HttpRequest::header(const std::string& lowerName) const {
  auto it = headers.find(lowerName);
  return it == headers.end() ? std::string() : it->second;
}

std::string HttpRequest::param(const std::string& name) const {
  auto it = query.find(name);
  return it == query.end() ? std::string() : it->second;
}

void HttpResponse::setHeader(const std::string& name, const std::string& value) {
  for (auto& h : headers)
    if (strings::iequals(h.first, name)) {
      h.second = value;
      return;
    }
  headers.emplace_back(name, value);
}

std::vector<std::string> HttpRequest::params(const std::string& name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : queryList)
    if (k == name) out.push_back(v);
  return out;
}

void parseTarget(const std::string& target, std::string* path,
                 std::map<std::string, std::string>* query,
                 std::vector<std::pair<std::string, std::string>>* queryList) {
  size_t q = target.find('?');
  *path = strings::urlDecode(target.substr(0, q), false);
  if (q == std::string::npos) return;
  for (const auto& part : strings::split(std::string_view(target).substr(q + 1), '&')) {
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string key = strings::urlDecode(part.substr(0, eq), true);
    std::string value =
        eq == std::string::npos ? "" : strings::urlDecode(part.substr(eq + 1), true);
    if (queryList) queryList->emplace_back(key, value);
    query->emplace(std::move(key), std::move(value));
  }
}

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using Stream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kIdleTimeout = std::chrono::minutes(5);

// Offer only HTTP/1.1 over ALPN, so clients never try HTTP/2.
int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  for (unsigned int i = 0; i < inlen;) {
    unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

void readClientCert(SSL* ssl, HttpRequest& req) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    req.clientCertVerified = true;
    X509_NAME* subject = X509_get_subject_name(cert);
    for (int i = 0; i < X509_NAME_entry_count(subject); ++i) {
      X509_NAME_ENTRY* e = X509_NAME_get_entry(subject, i);
      int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
      unsigned char* utf8 = nullptr;
      int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
      if (n < 0) continue;
      std::string value(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
      OPENSSL_free(utf8);
      if (nid == NID_commonName) req.clientCommonName = value;
      if (nid == NID_organizationName) req.clientOrganizations.push_back(value);
    }
  }
  X509_free(cert);
}

class Server;

// One connection's state, shared by its session coroutine and (while streaming) its reader.
struct Conn : std::enable_shared_from_this<Conn> {
  Conn(tcp::socket s, asio::ssl::context& ctx) : stream(std::move(s), ctx) {}
  Stream stream;
  beast::flat_buffer buffer;
  std::string remote;
  bool closed = false;
};

class Server : public HttpServer {
 public:
  Server(const HttpServerOptions& options, HttpHandler& handler)
      : options_(options),
        handler_(handler),
        ssl_(asio::ssl::context::tls_server),
        acceptor_(io_),
        workers_(static_cast<size_t>(options.workerThreads)) {}

  ~Server() override { stop(); }

  std::string init() {
    boost::system::error_code ec;
    ssl_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    ssl_.use_certificate_chain_file(options_.certFile, ec);
    if (ec) return "certificate " + options_.certFile + ": " + ec.message();
    ssl_.use_private_key_file(options_.keyFile, asio::ssl::context::pem, ec);
    if (ec) return "key " + options_.keyFile + ": " + ec.message();
    SSL_CTX* raw = ssl_.native_handle();
    SSL_CTX_set_alpn_select_cb(raw, selectAlpn, nullptr);
    if (!options_.clientCaFile.empty()) {
      if (SSL_CTX_load_verify_locations(raw, options_.clientCaFile.c_str(), nullptr) != 1)
        return "client CA " + options_.clientCaFile + ": cannot load";
      SSL_CTX_set_client_CA_list(raw, SSL_load_client_CA_file(options_.clientCaFile.c_str()));
      // Verify a certificate when one is offered; bearer tokens work without one.
      SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
      // With peer verification on, OpenSSL refuses to resume a session (as browsers do on
      // every new connection) unless the context names its sessions: the handshake failed.
      static const unsigned char kSessionContext[] = "podium-api";
      SSL_CTX_set_session_id_context(raw, kSessionContext, sizeof kSessionContext - 1);
    }
    tcp::endpoint ep(asio::ip::make_address(options_.address, ec), options_.port);
    if (ec) return "address " + options_.address + ": " + ec.message();
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return "listen on " + options_.address + ":" + std::to_string(options_.port) + ": " +
             ec.message();
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, acceptLoop(), asio::detached);
    for (int i = 0; i < std::max(1, options_.ioThreads); ++i)
      threads_.emplace_back([this] { io_.run(); });
    return "";
  }

  uint16_t port() const override { return port_; }

  void stop() override {
    if (stopped_.exchange(true)) return;
    asio::post(io_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
    });
    // Streams end when the io_context stops; connections are torn down with it.
    io_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    workers_.stop();
    workers_.join();
  }

 private:
  awaitable<void> acceptLoop() {
    while (true) {
      boost::system::error_code ec;
      tcp::socket sock = co_await acceptor_.async_accept(asio::make_strand(io_),
                                                         asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
        PODIUM_LOG(Warn) << "accept: " << ec.message();
        continue;
      }
      sock.set_option(tcp::no_delay(true), ec);
      auto conn = std::make_shared<Conn>(std::move(sock), ssl_);
      auto ex = conn->stream.get_executor();
      asio::co_spawn(ex, session(conn), asio::detached);
    }
  }

  awaitable<HttpResponse> runHandler(const HttpRequest* req) {
    try {
      co_return handler_.handle(*req);
    } catch (const std::exception& e) {
      PODIUM_LOG(Error) << "handler threw on " << req->method << " " << req->target << ": "
                        << e.what();
      HttpResponse r;
      r.status = 500;
      r.setHeader("Content-Type", "application/json");
      r.body =
          R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"internal error","reason":"InternalError","code":500})";
      co_return r;
    }
  }

  awaitable<void> session(std::shared_ptr<Conn> conn) {
    boost::system::error_code ec;
    try {
      conn->remote =
          beast::get_lowest_layer(conn->stream).socket().remote_endpoint(ec).address().to_string();
    } catch (...) {
    }
    beast::get_lowest_layer(conn->stream).expires_after(kHandshakeTimeout);
    co_await conn->stream.async_handshake(asio::ssl::stream_base::server,
                                          asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    HttpRequest tlsInfo;
    readClientCert(conn->stream.native_handle(), tlsInfo);
    while (true) {
      beast::get_lowest_layer(conn->stream).expires_after(kIdleTimeout);
      http::request_parser<http::string_body> parser;
      parser.body_limit(options_.maxBodyBytes);
      parser.header_limit(64 * 1024);
      co_await http::async_read(conn->stream, conn->buffer, parser,
                                asio::redirect_error(use_awaitable, ec));
      if (ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == asio::ssl::error::stream_truncated)
        break;
      if (ec) {
        int status = ec == http::error::body_limit ? 413 : 400;
        if (ec == beast::error::timeout || ec == asio::error::operation_aborted ||
            ec == asio::error::connection_reset)
          break;
        // GCC 12 mishandles temporaries inside co_await expressions: name everything first.
        std::string text =
            status == 413 ? "request body too large" : "malformed HTTP request: " + ec.message();
        co_await writeSimple(conn->stream, status, text);
        break;
      }
      auto msg = parser.release();
      HttpRequest req = tlsInfo;
      req.remoteAddress = conn->remote;
      req.method = std::string(msg.method_string());
      req.target = std::string(msg.target());
      parseTarget(req.target, &req.path, &req.query, &req.queryList);
      for (const auto& f : msg) {
        std::string name(f.name_string().data(), f.name_string().size());
        std::string value(f.value());
        std::string& joined = req.headers[strings::toLower(name)];
        joined = joined.empty() ? value : joined + ", " + value;
        req.rawHeaders.emplace_back(std::move(name), std::move(value));
      }
      req.body = std::move(msg.body());
      beast::get_lowest_layer(conn->stream).expires_never();
      auto handling = asio::co_spawn(workers_, runHandler(&req), use_awaitable);
      HttpResponse res = co_await std::move(handling);
      if (res.upgrade) {
        co_await proxyUpgrade(conn->stream, conn->buffer, msg, *res.upgrade, clientSsl_, conn);
        beast::get_lowest_layer(conn->stream).close();
        co_return;
      }
      if (res.stream) {
        co_await streamResponse(conn, res);
        // The reader watching for disconnects may still be pending: no TLS shutdown, just close.
        beast::get_lowest_layer(conn->stream).close();
        co_return;
      }
      http::response<http::string_body> out{static_cast<http::status>(res.status), msg.version()};
      for (const auto& [k, v] : res.headers) out.set(k, v);
      out.body() = std::move(res.body);
      out.keep_alive(msg.keep_alive());
      out.prepare_payload();
      beast::get_lowest_layer(conn->stream).expires_after(kIdleTimeout);
      co_await http::async_write(conn->stream, out, asio::redirect_error(use_awaitable, ec));
      if (ec || !out.keep_alive()) break;
    }
    beast::get_lowest_layer(conn->stream).expires_after(std::chrono::seconds(2));
    co_await conn->stream.async_shutdown(asio::redirect_error(use_awaitable, ec));
    beast::get_lowest_layer(conn->stream).close();
  }

  // Watches the connection for the client going away while a stream is being written.
  static awaitable<void> readUntilClosed(std::shared_ptr<Conn> conn,
                                         std::shared_ptr<asio::steady_timer> signal) {
    char scratch[512];
    boost::system::error_code ec;
    while (!conn->closed) {
      co_await conn->stream.async_read_some(asio::buffer(scratch),
                                            asio::redirect_error(use_awaitable, ec));
      if (ec) break;
    }
    conn->closed = true;
    signal->cancel();
  }

  awaitable<void> streamResponse(std::shared_ptr<Conn> conn, HttpResponse& res) {
    boost::system::error_code ec;
    auto ex = co_await asio::this_coro::executor;
    auto signal = std::make_shared<asio::steady_timer>(ex);
    auto woken = std::make_shared<bool>(false);
    std::weak_ptr<asio::steady_timer> weakSignal = signal;
    res.stream->start([ex, weakSignal, woken] {
      asio::post(ex, [weakSignal, woken] {
        *woken = true;
        if (auto s = weakSignal.lock()) s->cancel();
      });
    });
    http::response<http::empty_body> head{static_cast<http::status>(res.status), 11};
    for (const auto& [k, v] : res.headers) head.set(k, v);
    head.chunked(true);
    http::response_serializer<http::empty_body> sr{head};
    co_await http::async_write_header(conn->stream, sr, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      res.stream->cancel();
      co_return;
    }
    asio::co_spawn(ex, readUntilClosed(conn, signal), asio::detached);
    std::string chunk;
    bool open = true;
    while (open && !conn->closed && !stopped_) {
      chunk.clear();
      *woken = false;
      open = res.stream->poll(chunk);
      if (!chunk.empty()) {
        auto framed = http::make_chunk(asio::buffer(chunk));
        co_await asio::async_write(conn->stream, framed, asio::redirect_error(use_awaitable, ec));
        if (ec) break;
      }
      if (!open || *woken) continue;
      int64_t ms = res.stream->pollIntervalMs();
      signal->expires_after(std::chrono::milliseconds(ms < 0 ? 60000 : ms));
      co_await signal->async_wait(asio::redirect_error(use_awaitable, ec));
    }
    res.stream->cancel();
    if (!conn->closed && !ec) {
      auto last = http::make_chunk_last();
      co_await asio::async_write(conn->stream, last, asio::redirect_error(use_awaitable, ec));
    }
    conn->closed = true;
  }

  HttpServerOptions options_;
  HttpHandler& handler_;
  asio::io_context io_;
  asio::ssl::context ssl_;
  asio::ssl::context clientSsl_{asio::ssl::context::tls_client};  // to node agents
  tcp::acceptor acceptor_;
  asio::thread_pool workers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
  uint16_t port_ = 0;
};

}  // namespace

Expected<std::unique_ptr<HttpServer>, std::string> startHttpServer(const HttpServerOptions& options,
                                                                   HttpHandler& handler) {
  auto s = std::make_unique<Server>(options, handler);
  if (auto e = s->init(); !e.empty()) return Unexpected(e);
  return std::unique_ptr<HttpServer>(std::move(s));
}

}  // namespace podium::api
