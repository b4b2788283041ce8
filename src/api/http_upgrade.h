// The HTTPS transport's upgraded connections: a client's WebSocket or SPDY upgrade joined to
// the server that serves it (the runtime's streaming server, a node agent), byte for byte or
// through a bridge (UpgradeTarget::Bridge).
#pragma once

#include <utility>  // Boost 1.74's asio/awaitable.hpp needs std::exchange declared first

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <memory>
#include <string>

#include "podium/api/http.h"

namespace podium::api {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
using UpgradeRequest = boost::beast::http::request<boost::beast::http::string_body>;

// Answers with a plain-text status and no keep-alive.
boost::asio::awaitable<void> writeSimple(TlsStream& client, int status, std::string text);

// Sends the target's request upstream and joins the two connections until either side ends.
// `pending` holds bytes the client sent after its request head; `upstreamTls` is used when the
// target asks for TLS; `owner` keeps the client stream alive until every coroutine using it
// has ended (some outlive this call by a moment). Runs on the client connection's strand.
boost::asio::awaitable<void> proxyUpgrade(TlsStream& client, boost::beast::flat_buffer& pending,
                                          const UpgradeRequest& request,
                                          const UpgradeTarget& target,
                                          boost::asio::ssl::context& upstreamTls,
                                          std::shared_ptr<void> owner);

}  // namespace podium::api
