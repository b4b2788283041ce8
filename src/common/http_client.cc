#include "podium/common/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "podium/common/strings.h"

namespace podium::net {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int remainingMs(SteadyClock::time_point deadline) {
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return ms < 0 ? 0 : static_cast<int>(ms);
}

Expected<void, std::string> connectTo(Fd& s, const std::string& host, int port,
                                      SteadyClock::time_point deadline, const std::string& source) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string ip = host == "localhost" ? "127.0.0.1" : host;
  if (inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1)
    return Unexpected("not an IPv4 address: " + host);
  s.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s.fd < 0) return Unexpected(std::string("socket: ") + strerror(errno));
  sockaddr_in from{};
  from.sin_family = AF_INET;
  if (!source.empty() && inet_pton(AF_INET, source.c_str(), &from.sin_addr) == 1)
    (void)::bind(s.fd, reinterpret_cast<sockaddr*>(&from), sizeof from);  // best effort
  int r = ::connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (r < 0 && errno != EINPROGRESS)
    return Unexpected("dial tcp " + ip + ":" + std::to_string(port) +
                      ": connect: " + strerror(errno));
  if (r < 0) {
    struct pollfd p = {s.fd, POLLOUT, 0};
    int pr = poll(&p, 1, remainingMs(deadline));
    if (pr <= 0) return Unexpected("dial tcp " + ip + ":" + std::to_string(port) + ": i/o timeout");
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0)
      return Unexpected("dial tcp " + ip + ":" + std::to_string(port) +
                        ": connect: " + strerror(err));
  }
  return {};
}

}  // namespace

Expected<void, std::string> tcpConnect(const std::string& host, int port,
                                       std::chrono::milliseconds timeout,
                                       const std::string& source) {
  Fd s;
  return connectTo(s, host, port, SteadyClock::now() + timeout, source);
}

namespace {

Expected<HttpResult, std::string> exchange(const std::string& method, const std::string& host,
                                           int port, const std::string& path,
                                           const std::string& body,
                                           std::chrono::milliseconds timeout,
                                           const std::map<std::string, std::string>& headers,
                                           const std::string& source, size_t maxBody) {
  auto deadline = SteadyClock::now() + timeout;
  Fd s;
  if (auto c = connectTo(s, host, port, deadline, source); !c) return Unexpected(c.error());
  std::string req = method + " " + (path.empty() ? "/" : path) + " HTTP/1.1\r\nHost: " + host +
                    ":" + std::to_string(port) + "\r\n";
  if (!headers.count("User-Agent")) req += "User-Agent: kube-probe/1.32\r\n";
  req += "Accept: */*\r\nConnection: close\r\n";
  if (!body.empty()) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n";
  req += body;
  size_t off = 0;
  while (off < req.size()) {
    struct pollfd p = {s.fd, POLLOUT, 0};
    if (poll(&p, 1, remainingMs(deadline)) <= 0)
      return Unexpected(std::string("write: i/o timeout"));
    ssize_t n = ::send(s.fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Unexpected(std::string("write: ") + strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  std::string resp;
  char buf[4096];
  while (resp.size() < maxBody + 6 * 1024) {
    struct pollfd p = {s.fd, POLLIN, 0};
    int pr = poll(&p, 1, remainingMs(deadline));
    if (pr <= 0) {
      if (resp.find("\r\n\r\n") != std::string::npos) break;
      return Unexpected(std::string(
          "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"));
    }
    ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Unexpected(std::string("read: ") + strerror(errno));
    }
    if (n == 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  if (resp.rfind("HTTP/1.", 0) != 0 || resp.size() < 12)
    return Unexpected(std::string("malformed HTTP response"));
  auto code = strings::parseInt(resp.substr(9, 3));
  if (!code) return Unexpected(std::string("malformed HTTP status line"));
  HttpResult out;
  out.status = static_cast<int>(*code);
  auto headEnd = resp.find("\r\n\r\n");
  if (headEnd != std::string::npos) out.body = resp.substr(headEnd + 4, maxBody);
  return out;
}

}  // namespace

Expected<HttpResult, std::string> httpGet(const std::string& host, int port,
                                          const std::string& path,
                                          std::chrono::milliseconds timeout,
                                          const std::map<std::string, std::string>& headers,
                                          const std::string& source, size_t maxBody) {
  return exchange("GET", host, port, path, "", timeout, headers, source, maxBody);
}

Expected<HttpResult, std::string> httpRequest(const std::string& method, const std::string& host,
                                              int port, const std::string& path,
                                              const std::string& body,
                                              std::chrono::milliseconds timeout,
                                              const std::map<std::string, std::string>& headers,
                                              size_t maxBody) {
  return exchange(method, host, port, path, body, timeout, headers, "", maxBody);
}

}  // namespace podium::net
