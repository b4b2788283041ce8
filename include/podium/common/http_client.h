#pragma once

// A minimal blocking HTTP/1.1 client for loopback and pod addresses: readiness checks of the
// processes the agent supervises, the httpGet probes of containers, and the node proxy's span
// exports to a trace collector.

#include <chrono>
#include <map>
#include <string>

#include "podium/common/expected.h"

namespace podium::net {

struct HttpResult {
  int status = 0;
  std::string body;  // first `maxBody` bytes at most
};

// GET http://host:port/path. Errors (refused, timeout, malformed reply) are messages.
Expected<HttpResult, std::string> httpGet(const std::string& host, int port,
                                          const std::string& path,
                                          std::chrono::milliseconds timeout,
                                          const std::map<std::string, std::string>& headers = {},
                                          const std::string& source = "",
                                          size_t maxBody = 10 * 1024);

// `method` `path` with `body` (sent with Content-Length when not empty), otherwise as httpGet.
Expected<HttpResult, std::string> httpRequest(
    const std::string& method, const std::string& host, int port, const std::string& path,
    const std::string& body, std::chrono::milliseconds timeout,
    const std::map<std::string, std::string>& headers = {}, size_t maxBody = 10 * 1024);

// Connects to host:port within `timeout` (tcpSocket probes).
Expected<void, std::string> tcpConnect(const std::string& host, int port,
                                       std::chrono::milliseconds timeout,
                                       const std::string& source = "");
// `maxBody`: 10 KiB by default, as much as the kubelet reads of a probe's answer.
// `source`: the local address to connect from, if it is one of the node's (probes come from
// mesh::kProbeSource); otherwise the kernel's choice.

}  // namespace podium::net
