// The seed's Go web server, in C++: answers every request on :8080 with
// "Hello World! Running version: <APP_VERSION or 1.0.0>" and stops cleanly on SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

std::atomic<bool> stopping{false};
int stopPipe[2] = {-1, -1};

void onSignal(int) {
  stopping = true;
  char c = 1;
  (void)!write(stopPipe[1], &c, 1);
}

// Reads one request head, answers it, and keeps the connection for the next (HTTP/1.1).
void serve(int fd, const std::string& body) {
  std::string buf;
  char chunk[4096];
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (!stopping) {
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = read(fd, chunk, sizeof chunk);
      if (n <= 0 || buf.size() > 65536) {
        close(fd);
        return;
      }
      buf.append(chunk, static_cast<size_t>(n));
    }
    std::string head = buf.substr(0, end);
    buf.erase(0, end + 4);
    // Request bodies are read and ignored.
    size_t cl = 0;
    for (const char* name : {"\r\nContent-Length:", "\r\ncontent-length:"})
      if (auto p = head.find(name); p != std::string::npos)
        cl = std::strtoul(head.c_str() + p + std::strlen(name), nullptr, 10);
    while (buf.size() < cl) {
      ssize_t n = read(fd, chunk, sizeof chunk);
      if (n <= 0) {
        close(fd);
        return;
      }
      buf.append(chunk, static_cast<size_t>(n));
    }
    buf.erase(0, cl);
    bool closeAfter = head.find("HTTP/1.0") != std::string::npos ||
                      head.find("\r\nConnection: close") != std::string::npos ||
                      head.find("\r\nconnection: close") != std::string::npos;
    std::string resp =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
        std::to_string(body.size()) + (closeAfter ? "\r\nConnection: close" : "") + "\r\n\r\n" +
        body;
    if (head.rfind("HEAD ", 0) == 0) resp.resize(resp.size() - body.size());
    if (write(fd, resp.data(), resp.size()) < 0 || closeAfter) break;
  }
  close(fd);
}

}  // namespace

int main() {
  const char* v = std::getenv("APP_VERSION");
  std::string version = v && *v ? v : "1.0.0";
  std::string body = "Hello World! Running version: " + version + "\n";
  if (pipe(stopPipe) != 0) return 1;
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool v6 = lfd >= 0;
  if (!v6) lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1, zero = 0;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (v6) {
    setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(8080);
    a.sin6_addr = in6addr_any;
    rc = bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(8080);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    rc = bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0 || listen(lfd, 1024) != 0) {
    std::perror("listen :8080");
    return 1;
  }
  std::printf("Server starting on port 8080...\n");
  std::fflush(stdout);
  pollfd fds[2] = {{lfd, POLLIN, 0}, {stopPipe[0], POLLIN, 0}};
  while (!stopping) {
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents) break;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::thread(serve, fd, body).detach();
  }
  close(lfd);
  std::printf("Server stopped\n");
  std::fflush(stdout);
  return 0;
}
