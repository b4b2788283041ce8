// A constant-rate HTTP/1.1 load: GET requests at a fixed total rate over keep-alive connections,
// each request's latency measured from the moment it was due (so a stalled connection shows as
// the queueing it causes, as wrk2 measures it, not as fewer requests sent). One thread, epoll.
//
//   rate_load HOST:PORT RATE SECONDS [CONNECTIONS] [HOST-HEADER]
//
// Prints one line: rate, requests done, errors, and p50/p90/p99/p99.9/max in milliseconds with
// microsecond resolution.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int64_t nowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
      .count();
}

struct Connection {
  int fd = -1;
  bool busy = false;
  int64_t dueUs = 0;           // when the request on the wire was due
  std::deque<int64_t> queued;  // due times of requests waiting for this connection
  std::string in;
};

int connectTo(const sockaddr_in& addr) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    perror("connect");
    exit(1);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// The length of a complete response at the start of `in` (Content-Length bodies), 0 if more is
// needed, -1 if it cannot be read.
long responseLength(const std::string& in) {
  size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  long body = 0;
  for (size_t i = in.find("\r\n"); i < end; i = in.find("\r\n", i + 2)) {
    if (strncasecmp(in.c_str() + i + 2, "content-length:", 15) == 0)
      body = strtol(in.c_str() + i + 17, nullptr, 10);
    else if (strncasecmp(in.c_str() + i + 2, "transfer-encoding:", 18) == 0)
      return -1;
  }
  long total = static_cast<long>(end + 4) + body;
  return static_cast<long>(in.size()) >= total ? total : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s HOST:PORT RATE SECONDS [CONNECTIONS] [HOST-HEADER]\n", argv[0]);
    return 2;
  }
  std::string target = argv[1];
  size_t colon = target.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(atoi(target.c_str() + colon + 1)));
  inet_pton(AF_INET, target.substr(0, colon).c_str(), &addr.sin_addr);
  double rate = atof(argv[2]);
  double seconds = atof(argv[3]);
  int nconn = argc > 4 ? atoi(argv[4]) : 16;
  std::string host = argc > 5 ? argv[5] : target;
  std::string request = "GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n";

  int ep = epoll_create1(0);
  std::vector<Connection> conns(static_cast<size_t>(nconn));
  for (size_t i = 0; i < conns.size(); ++i) {
    conns[i].fd = connectTo(addr);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
  }
  auto send = [&](Connection& c, int64_t due) {
    c.busy = true;
    c.dueUs = due;
    if (write(c.fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
      perror("write");
      exit(1);
    }
  };

  std::vector<int64_t> latencies;
  latencies.reserve(static_cast<size_t>(rate * seconds) + 16);
  long errors = 0;
  double intervalUs = 1e6 / rate;
  int64_t start = nowUs();
  int64_t end = start + static_cast<int64_t>(seconds * 1e6);
  uint64_t issued = 0;
  size_t next = 0;
  epoll_event events[64];
  for (;;) {
    int64_t now = nowUs();
    // Every request due by now goes out (or waits on its connection).
    while (now < end && start + static_cast<int64_t>(issued * intervalUs) <= now) {
      int64_t due = start + static_cast<int64_t>(issued * intervalUs);
      ++issued;
      Connection& c = conns[next++ % conns.size()];
      if (c.busy)
        c.queued.push_back(due);
      else
        send(c, due);
    }
    bool outstanding = false;
    for (const auto& c : conns) outstanding = outstanding || c.busy;
    if (now >= end && !outstanding) break;
    if (now > end + 10'000'000) {
      fprintf(stderr, "responses still outstanding 10 s after the end\n");
      return 1;
    }
    int64_t nextDue = start + static_cast<int64_t>(issued * intervalUs);
    int timeoutMs =
        now >= end ? 100 : static_cast<int>(std::max<int64_t>(0, (nextDue - now) / 1000));
    int n = epoll_wait(ep, events, 64, timeoutMs);
    for (int i = 0; i < n; ++i) {
      Connection& c = conns[events[i].data.u64];
      char buf[65536];
      ssize_t got = read(c.fd, buf, sizeof buf);
      if (got <= 0) {
        fprintf(stderr, "connection closed by the server\n");
        return 1;
      }
      c.in.append(buf, static_cast<size_t>(got));
      for (long len; c.busy && (len = responseLength(c.in)) != 0;) {
        if (len < 0) {
          fprintf(stderr, "chunked responses are not measured\n");
          return 1;
        }
        int64_t done = nowUs();
        if (c.in.compare(9, 3, "200") != 0) ++errors;
        latencies.push_back(done - c.dueUs);
        c.in.erase(0, static_cast<size_t>(len));
        c.busy = false;
        if (!c.queued.empty()) {
          int64_t due = c.queued.front();
          c.queued.pop_front();
          send(c, due);
        }
      }
    }
  }
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    if (latencies.empty()) return 0.0;
    size_t i = std::min(latencies.size() - 1, static_cast<size_t>(p / 100.0 * latencies.size()));
    return latencies[i] / 1000.0;
  };
  printf("rate %.0f/s requests %zu errors %ld p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f max %.3f ms\n",
         rate, latencies.size(), errors, pct(50), pct(90), pct(99), pct(99.9),
         latencies.empty() ? 0.0 : latencies.back() / 1000.0);
  return 0;
}
