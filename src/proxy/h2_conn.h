#pragma once

// HTTP/2 through the node proxy: a client that opens with HTTP/2's connection preface (h2c with
// prior knowledge, which is how gRPC speaks in the clear) gets an HTTP/2 session (nghttp2).
// Each stream is routed like an HTTP/1.1 request (router.h: VirtualService matches, weights,
// subsets, faults, header operations, timeouts) and sent as a stream of a multiplexed HTTP/2
// connection to the chosen endpoint, one per endpoint and worker. Bodies stream both ways as
// they arrive, trailers (gRPC's grpc-status) pass through, and the proxy's own answers to gRPC
// calls are trailers-only responses with the gRPC status Envoy maps them to. Each stream is
// counted in Istio's metrics (request_protocol grpc or http, grpc_response_status).

#include <openssl/ssl.h>

#include <string>

#include "router.h"
#include "worker.h"

namespace podium::proxy {

// The HTTP/2 connection preface a client sends first.
inline constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Takes over `s` (not registered with the loop) whose first bytes, already read, are
// `received`; a TLS connection's handshake chose h2 by ALPN.
void startH2Connection(Worker& worker, Socket s, std::string received, const RequestSource& from);

}  // namespace podium::proxy
