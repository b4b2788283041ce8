#include "http_upgrade.h"

#include <boost/beast/websocket.hpp>
#include <deque>
#include <memory>
#include <optional>

#include "podium/common/log.h"
#include "stream_bridge.h"

namespace podium::api {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

constexpr auto kCloseTimeout = std::chrono::seconds(5);
// Bytes from the client waiting for the upstream beyond which the client is not read.
constexpr size_t kMaxQueued = 1 << 20;

// Copies bytes from one stream to another until either fails; then runs `closeBoth` once.
template <class From, class To>
awaitable<void> pump(From& from, To& to, std::shared_ptr<bool> done,
                     std::function<void()> closeBoth) {
  char buf[16384];
  boost::system::error_code ec;
  while (!*done) {
    size_t n =
        co_await from.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    if (ec || n == 0) break;
    co_await asio::async_write(to, asio::buffer(buf, n), asio::redirect_error(use_awaitable, ec));
    if (ec) break;
  }
  if (!*done) {
    *done = true;
    closeBoth();
  }
}

// Relays the upstream's answer (101 or an error) and everything after it, both ways, until
// either side closes.
template <class Upstream>
awaitable<void> relayBytes(TlsStream& client, std::shared_ptr<Upstream> upstream,
                           std::shared_ptr<void> owner) {
  auto ex = co_await asio::this_coro::executor;
  auto done = std::make_shared<bool>(false);
  // The detached half may end after this returns: its copy of closeBoth keeps the client alive.
  auto closeBoth = [&client, upstream, owner] {
    boost::system::error_code ignored;
    beast::get_lowest_layer(*upstream).close(ignored);
    beast::get_lowest_layer(client).close();
  };
  asio::co_spawn(ex, pump(client, *upstream, done, closeBoth), asio::detached);
  co_await pump(*upstream, client, done, closeBoth);
}

// Reads the upstream's response head; `rest` receives the bytes after it.
awaitable<std::optional<std::string>> readHead(tcp::socket& upstream, std::string* rest) {
  std::string head;
  char buf[4096];
  size_t end;
  boost::system::error_code ec;
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    if (head.size() > 65536) co_return std::nullopt;
    size_t n = co_await upstream.async_read_some(asio::buffer(buf),
                                                 asio::redirect_error(use_awaitable, ec));
    if (ec || n == 0) co_return std::nullopt;
    head.append(buf, n);
  }
  *rest = head.substr(end + 4);
  head.resize(end + 4);
  co_return head;
}

// One bridged session: the client's WebSocket, the upstream's SPDY connection and, for a
// remote command, the protocol state between them. Every coroutine touching it runs on the
// client connection's strand.
struct Bridged {
  Bridged(TlsStream& client, tcp::socket up, std::shared_ptr<void> keep)
      : owner(std::move(keep)),
        ws(client),
        upstream(std::move(up)),
        finished(upstream.get_executor()) {}

  std::shared_ptr<void> owner;  // the client connection, kept while a helper still runs
  websocket::stream<TlsStream&> ws;
  tcp::socket upstream;
  std::optional<RemoteCommandBridge> command;  // unset: a tunnel
  std::deque<std::string> queue;               // bytes waiting to go upstream, in order
  size_t queued = 0;                           // their size
  bool writing = false;
  bool clientDone = false;
  asio::steady_timer finished;  // cancelled when a helper coroutine ends

  void closeUpstream() {
    boost::system::error_code ignored;
    upstream.close(ignored);
  }
};

awaitable<void> drainUpstream(std::shared_ptr<Bridged> s) {
  boost::system::error_code ec;
  while (!s->queue.empty()) {
    std::string next = std::move(s->queue.front());
    s->queue.pop_front();
    co_await asio::async_write(s->upstream, asio::buffer(next),
                               asio::redirect_error(use_awaitable, ec));
    s->queued -= next.size();
    if (ec) {
      s->queue.clear();
      s->queued = 0;
      s->closeUpstream();
    }
    s->finished.cancel();  // a reader waiting for room re-checks
  }
  s->writing = false;
  s->finished.cancel();
}

// Queues bytes for the upstream; one writer at a time keeps frames whole and in order.
void sendUpstream(const std::shared_ptr<Bridged>& s, std::string bytes) {
  if (bytes.empty() || !s->upstream.is_open()) return;
  s->queued += bytes.size();
  s->queue.push_back(std::move(bytes));
  if (s->writing) return;
  s->writing = true;
  asio::co_spawn(s->upstream.get_executor(), drainUpstream(s), asio::detached);
}

awaitable<void> clientToUpstream(std::shared_ptr<Bridged> s) {
  beast::flat_buffer buf;
  boost::system::error_code ec;
  while (true) {
    co_await s->ws.async_read(buf, asio::redirect_error(use_awaitable, ec));
    if (ec) break;
    std::string message = beast::buffers_to_string(buf.data());
    buf.consume(buf.size());
    if (s->command)
      sendUpstream(s, s->command->fromClient(message).upstream);
    else
      sendUpstream(s, std::move(message));
    while (s->queued > kMaxQueued && s->upstream.is_open()) {  // back-pressure on the client
      s->finished.expires_after(kCloseTimeout);
      co_await s->finished.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }
  // The client closed or went away: ending the upstream ends the other direction too.
  s->closeUpstream();
  s->clientDone = true;
  s->finished.cancel();
}

// Sends upstream bytes to the client: bridged messages, or the tunnel's bytes as they come.
awaitable<bool> toClient(std::shared_ptr<Bridged> s, std::string_view bytes) {
  boost::system::error_code ec;
  if (!s->command) {
    co_await s->ws.async_write(asio::buffer(bytes.data(), bytes.size()),
                               asio::redirect_error(use_awaitable, ec));
    co_return !ec;
  }
  auto out = s->command->fromUpstream(bytes);
  sendUpstream(s, std::move(out.upstream));
  for (const auto& message : out.client) {
    co_await s->ws.async_write(asio::buffer(message), asio::redirect_error(use_awaitable, ec));
    if (ec) co_return false;
  }
  if (!out.error.empty()) PODIUM_LOG(Warn) << out.error;
  co_return out.error.empty();
}

awaitable<void> bridge(TlsStream& client, const UpgradeRequest& request,
                       const UpgradeTarget& target, tcp::socket up, std::shared_ptr<void> owner) {
  boost::system::error_code ec;
  co_await asio::async_write(up, asio::buffer(target.request),
                             asio::redirect_error(use_awaitable, ec));
  // GCC 12 mishandles temporaries and conditionals inside co_await expressions: name
  // everything first.
  std::string rest;
  std::optional<std::string> head;
  if (!ec) head = co_await readHead(up, &rest);
  if (!head) {
    std::string text = "error upgrading connection to the streaming server";
    co_await writeSimple(client, 502, std::move(text));
    co_return;
  }
  if (head->rfind("HTTP/1.1 101", 0) != 0) {
    // Refused upstream: the client sees the same answer (kubectl then falls back to SPDY).
    std::string answer = *head + rest;
    co_await asio::async_write(client, asio::buffer(answer),
                               asio::redirect_error(use_awaitable, ec));
    auto upstream = std::make_shared<tcp::socket>(std::move(up));
    co_await relayBytes(client, upstream, owner);
    co_return;
  }
  auto s = std::make_shared<Bridged>(client, std::move(up), owner);
  std::string protocol = target.clientProtocol;
  s->ws.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& res) {
    res.set(http::field::sec_websocket_protocol, protocol);
  }));
  co_await s->ws.async_accept(request, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return;
  s->ws.binary(true);
  if (target.bridge == UpgradeTarget::Bridge::kRemoteCommand) {
    s->command.emplace(target.channels);
    sendUpstream(s, s->command->open());
  }
  asio::co_spawn(s->upstream.get_executor(), clientToUpstream(s), asio::detached);
  bool open = true;
  if (!rest.empty()) {
    std::string_view first(rest);
    open = co_await toClient(s, first);
  }
  char buf[16384];
  while (open) {
    size_t n = co_await s->upstream.async_read_some(asio::buffer(buf),
                                                    asio::redirect_error(use_awaitable, ec));
    if (ec || n == 0) break;
    std::string_view got(buf, n);
    open = co_await toClient(s, got);
  }
  // The upstream ended (the command's status is written by now): close the WebSocket normally,
  // which kubectl reads as the end of every channel.
  s->closeUpstream();
  if (!s->clientDone && s->ws.is_open()) {
    beast::get_lowest_layer(client).expires_after(kCloseTimeout);
    co_await s->ws.async_close(websocket::close_code::normal,
                               asio::redirect_error(use_awaitable, ec));
  }
  while (!s->clientDone || s->writing) {
    s->finished.expires_after(kCloseTimeout);
    co_await s->finished.async_wait(asio::redirect_error(use_awaitable, ec));
    if (!ec) beast::get_lowest_layer(client).close();  // the client never answered
  }
}

}  // namespace

awaitable<void> writeSimple(TlsStream& client, int status, std::string text) {
  http::response<http::string_body> out{static_cast<http::status>(status), 11};
  out.set(http::field::content_type, "text/plain; charset=utf-8");
  out.body() = std::move(text);
  out.keep_alive(false);
  out.prepare_payload();
  boost::system::error_code ec;
  co_await http::async_write(client, out, asio::redirect_error(use_awaitable, ec));
}

awaitable<void> proxyUpgrade(TlsStream& client, beast::flat_buffer& pending,
                             const UpgradeRequest& request, const UpgradeTarget& target,
                             asio::ssl::context& upstreamTls, std::shared_ptr<void> owner) {
  boost::system::error_code ec;
  auto ex = co_await asio::this_coro::executor;
  tcp::socket sock(ex);
  tcp::endpoint ep(asio::ip::make_address(target.host, ec), target.port);
  if (!ec) co_await sock.async_connect(ep, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    std::string text = "error dialing backend: " + ec.message();
    co_await writeSimple(client, 502, std::move(text));
    co_return;
  }
  sock.set_option(tcp::no_delay(true), ec);
  if (target.bridge != UpgradeTarget::Bridge::kBytes) {
    // Bridges end the client's WebSocket here, which sends nothing before the 101.
    co_await bridge(client, request, target, std::move(sock), owner);
    co_return;
  }
  // Bytes the client already sent after its request head belong to the upgraded stream.
  std::string head = target.request + beast::buffers_to_string(pending.data());
  pending.consume(pending.size());
  if (!target.tls) {
    auto upstream = std::make_shared<tcp::socket>(std::move(sock));
    co_await asio::async_write(*upstream, asio::buffer(head),
                               asio::redirect_error(use_awaitable, ec));
    if (!ec) co_await relayBytes(client, upstream, owner);
    co_return;
  }
  auto upstream = std::make_shared<asio::ssl::stream<tcp::socket>>(std::move(sock), upstreamTls);
  co_await upstream->async_handshake(asio::ssl::stream_base::client,
                                     asio::redirect_error(use_awaitable, ec));
  if (ec) {
    std::string text = "error dialing backend: TLS: " + ec.message();
    co_await writeSimple(client, 502, std::move(text));
    co_return;
  }
  co_await asio::async_write(*upstream, asio::buffer(head),
                             asio::redirect_error(use_awaitable, ec));
  if (!ec) co_await relayBytes(client, upstream, owner);
}

}  // namespace podium::api
