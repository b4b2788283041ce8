#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "backend.h"
#include "podium/common/strings.h"

namespace podium::api {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

}  // namespace

Expected<BackendReply, std::string> httpsRequest(const Backend& t, const std::string& method,
                                                 const std::string& target, const std::string& body,
                                                 const std::map<std::string, std::string>& headers,
                                                 std::chrono::milliseconds timeout) {
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  boost::system::error_code ec;
  if (t.caBundle.empty())
    ctx.set_default_verify_paths(ec);
  else
    ctx.add_certificate_authority(asio::buffer(t.caBundle), ec);
  if (ec) return Unexpected("CA bundle: " + ec.message());
  ctx.set_verify_mode(t.insecure ? asio::ssl::verify_none : asio::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
  if (!SSL_set_tlsext_host_name(stream.native_handle(), t.serverName.c_str()))
    return Unexpected(std::string("TLS SNI failed"));
  if (!t.insecure) stream.set_verify_callback(asio::ssl::host_name_verification(t.serverName));
  std::string url = "https://" + t.serverName + ":" + std::to_string(t.port) + target;
  std::string error;
  BackendReply reply;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        try {
          tcp::resolver resolver(io);
          auto endpoints =
              co_await resolver.async_resolve(t.host, std::to_string(t.port), asio::use_awaitable);
          co_await beast::get_lowest_layer(stream).async_connect(endpoints, asio::use_awaitable);
          co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
          http::request<http::string_body> req{http::string_to_verb(method), target, 11};
          req.set(http::field::host, t.serverName);
          req.set(http::field::user_agent, "podium-apiserver");
          for (const auto& [k, v] : headers) req.set(k, v);
          req.body() = body;
          if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
            req.prepare_payload();
          co_await http::async_write(stream, req, asio::use_awaitable);
          beast::flat_buffer buffer;
          http::response_parser<http::string_body> parser;
          parser.body_limit(16 * 1024 * 1024);
          co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
          reply.status = static_cast<int>(parser.get().result_int());
          reply.contentType = std::string(parser.get()[http::field::content_type]);
          reply.body = parser.get().body();
        } catch (const boost::system::system_error& e) {
          error = e.code().message();
        }
      },
      asio::detached);
  io.run_for(timeout);
  if (!io.stopped()) return Unexpected(method + " \"" + url + "\": context deadline exceeded");
  if (!error.empty()) return Unexpected(method + " \"" + url + "\": " + error);
  return reply;
}

std::string caBundleOf(const Json& owner) {
  const Json& b = json::at(owner, {"caBundle"});
  return b.is_string() ? strings::base64Decode(b.get<std::string>()).value_or("") : "";
}

Expected<Backend, std::string> serviceBackend(const Cacher& cacher, const std::string& ns,
                                              const std::string& name, int64_t port) {
  Backend b;
  b.serverName = name + "." + ns + ".svc";
  auto svc = cacher.get("/registry/core/services/" + ns + "/" + name);
  if (!svc) return Unexpected("service \"" + name + "\" not found");
  std::string portName;
  bool found = false;
  for (const auto& p : json::at(*svc->object, {"spec", "ports"}))
    if (json::integer(p, "port", 0) == port) {
      portName = json::str(p, "name");
      found = true;
    }
  if (!found) return Unexpected("service \"" + name + "\" has no port " + std::to_string(port));
  if (auto ep = cacher.get("/registry/core/endpoints/" + ns + "/" + name))
    for (const auto& subset : json::at(*ep->object, {"subsets"})) {
      const Json& addrs = json::at(subset, {"addresses"});
      if (!addrs.is_array() || addrs.empty()) continue;
      for (const auto& p : json::at(subset, {"ports"}))
        if (json::str(p, "name") == portName) {
          b.host = json::str(addrs[0], "ip");
          b.port = static_cast<int>(json::integer(p, "port", 443));
          return b;
        }
    }
  return Unexpected("no endpoints available for service \"" + name + "\"");
}

}  // namespace podium::api
