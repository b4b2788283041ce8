// The HTTPS POST admission webhooks are called with: one connection per call (Kubernetes keeps
// them alive; a webhook's latency is its own), the server's certificate verified against the
// webhook's caBundle (or the system's roots) for the name the configuration gives, the whole
// exchange bounded by the webhook's timeout.
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "admission.h"

namespace podium::api {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Expected<std::string, std::string> post(const WebhookTarget& t, const std::string& body,
                                        std::chrono::milliseconds timeout) {
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  boost::system::error_code ec;
  if (t.caBundle.empty())
    ctx.set_default_verify_paths(ec);
  else
    ctx.add_certificate_authority(asio::buffer(t.caBundle), ec);
  if (ec) return Unexpected("caBundle: " + ec.message());
  ctx.set_verify_mode(asio::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
  if (!SSL_set_tlsext_host_name(stream.native_handle(), t.serverName.c_str()))
    return Unexpected(std::string("TLS SNI failed"));
  stream.set_verify_callback(asio::ssl::host_name_verification(t.serverName));
  std::string url = "https://" + t.serverName + ":" + std::to_string(t.port) + t.path;
  std::string error, answer;
  int status = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        try {
          tcp::resolver resolver(io);
          auto endpoints =
              co_await resolver.async_resolve(t.host, std::to_string(t.port), asio::use_awaitable);
          co_await beast::get_lowest_layer(stream).async_connect(endpoints, asio::use_awaitable);
          co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
          http::request<http::string_body> req{http::verb::post, t.path, 11};
          req.set(http::field::host, t.serverName);
          req.set(http::field::content_type, "application/json");
          req.set(http::field::accept, "application/json");
          req.set(http::field::user_agent, "podium-apiserver");
          req.body() = body;
          req.prepare_payload();
          co_await http::async_write(stream, req, asio::use_awaitable);
          beast::flat_buffer buffer;
          http::response_parser<http::string_body> parser;
          parser.body_limit(3 * 1024 * 1024);
          co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
          status = static_cast<int>(parser.get().result_int());
          answer = parser.get().body();
        } catch (const boost::system::system_error& e) {
          error = e.code().message();
        }
      },
      asio::detached);
  io.run_for(timeout);
  if (!io.stopped()) return Unexpected("Post \"" + url + "\": context deadline exceeded");
  if (!error.empty()) return Unexpected("Post \"" + url + "\": " + error);
  if (status != 200)
    return Unexpected("Post \"" + url + "\": the server answered " + std::to_string(status));
  return answer;
}

}  // namespace

WebhookCaller httpsWebhookCaller() { return post; }

}  // namespace podium::api
