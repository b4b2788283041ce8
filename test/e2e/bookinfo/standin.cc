// Small stand-ins for Istio's Bookinfo images (productpage, details, reviews v1/v2/v3,
// ratings), behaving as the sample does for its routing tasks: productpage logs a user in with
// a cookie and calls details and reviews with the `end-user` header (3 s timeout, one retry);
// reviews v2/v3 call ratings (black stars with a 10 s timeout, red with 2.5 s) and show
// "Ratings service is currently unavailable" when it fails; productpage shows "Sorry, product
// reviews are currently unavailable for this book." when reviews fails. Names are resolved
// through the pod's /etc/resolv.conf (search path and ndots), as the real images do.
//
// One static binary; the image sets ROLE (productpage, details, reviews, ratings) and, for
// reviews, STAR_COLOR (empty, black or red). Listens on 9080.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string env(const char* name, const char* fallback = "") {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// --- DNS: one A query per name in the search list, over UDP ------------------------------------

struct Resolver {
  std::vector<std::string> servers, search;
  int ndots = 1;
  Resolver() {
    std::ifstream f("/etc/resolv.conf");
    std::string line;
    while (std::getline(f, line)) {
      std::istringstream in(line);
      std::string key, v;
      in >> key;
      if (key == "nameserver" && in >> v) servers.push_back(v);
      if (key == "search")
        while (in >> v) search.push_back(v);
      if (key == "options")
        while (in >> v)
          if (v.rfind("ndots:", 0) == 0) ndots = std::atoi(v.c_str() + 6);
    }
  }
  bool query(const std::string& server, const std::string& name, in_addr* out) const {
    std::string q;
    uint16_t id = static_cast<uint16_t>(std::random_device{}());
    q += static_cast<char>(id >> 8);
    q += static_cast<char>(id & 0xff);
    q += std::string("\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
    std::istringstream labels(name);
    std::string label;
    while (std::getline(labels, label, '.')) {
      if (label.empty() || label.size() > 63) return false;
      q += static_cast<char>(label.size());
      q += label;
    }
    q += std::string("\x00\x00\x01\x00\x01", 5);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(53);
    inet_pton(AF_INET, server.c_str(), &a.sin_addr);
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
    unsigned char r[1500];
    ssize_t n = recv(fd, r, sizeof r, 0);
    close(fd);
    if (n < 12 || r[0] != (id >> 8) || r[1] != (id & 0xff) || (r[3] & 0x0f) != 0) return false;
    int answers = (r[6] << 8) | r[7];
    size_t pos = q.size();  // the question, echoed
    auto skipName = [&](size_t p) {
      while (p < static_cast<size_t>(n)) {
        if ((r[p] & 0xc0) == 0xc0) return p + 2;
        if (r[p] == 0) return p + 1;
        p += r[p] + 1u;
      }
      return static_cast<size_t>(n);
    };
    for (int i = 0; i < answers && pos < static_cast<size_t>(n); ++i) {
      pos = skipName(pos);
      if (pos + 10 > static_cast<size_t>(n)) return false;
      int type = (r[pos] << 8) | r[pos + 1];
      int len = (r[pos + 8] << 8) | r[pos + 9];
      pos += 10;
      if (type == 1 && len == 4 && pos + 4 <= static_cast<size_t>(n)) {
        std::memcpy(out, r + pos, 4);
        return true;
      }
      pos += static_cast<size_t>(len);
    }
    return false;
  }
  bool resolve(const std::string& host, in_addr* out) const {
    if (inet_pton(AF_INET, host.c_str(), out) == 1) return true;
    std::vector<std::string> names;
    int dots = static_cast<int>(std::count(host.begin(), host.end(), '.'));
    if (dots >= ndots) names.push_back(host);
    for (const auto& s : search) names.push_back(host + "." + s);
    if (dots < ndots) names.push_back(host);
    for (const auto& name : names)
      for (const auto& server : servers)
        if (query(server, name, out)) return true;
    return false;
  }
};

// --- HTTP --------------------------------------------------------------------------------------

struct Request {
  std::string method, path;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

struct Response {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Reads one message head and its Content-Length body. false at EOF or on an error.
bool readMessage(int fd, std::string& buf, std::string* head, std::string* body) {
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    char tmp[8192];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
    if (buf.size() > (1 << 20)) return false;
  }
  *head = buf.substr(0, end + 2);
  buf.erase(0, end + 4);
  size_t length = 0;
  std::istringstream lines(*head);
  std::string line;
  while (std::getline(lines, line)) {
    auto colon = line.find(':');
    if (colon != std::string::npos && lower(line.substr(0, colon)) == "content-length")
      length = std::strtoul(line.c_str() + colon + 1, nullptr, 10);
  }
  while (buf.size() < length) {
    char tmp[8192];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
  }
  *body = buf.substr(0, length);
  buf.erase(0, length);
  return true;
}

std::map<std::string, std::string> parseHeaders(const std::string& head, std::string* first) {
  std::map<std::string, std::string> out;
  std::istringstream lines(head);
  std::string line;
  std::getline(lines, *first);
  if (!first->empty() && first->back() == '\r') first->pop_back();
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string v = line.substr(colon + 1);
    while (!v.empty() && v.front() == ' ') v.erase(0, 1);
    out[lower(line.substr(0, colon))] = v;
  }
  return out;
}

const Resolver& resolver() {
  static Resolver r;
  return r;
}

// GET http://host:port/path with `headers`; the status (0: no answer within `timeoutMs`).
int httpGet(const std::string& host, int port, const std::string& path,
            const std::vector<std::pair<std::string, std::string>>& headers, int timeoutMs,
            std::string* body) {
  in_addr ip{};
  if (!resolver().resolve(host, &ip)) return 0;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{timeoutMs / 1000, (timeoutMs % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr = ip;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return 0;
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
                    "\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return 0;
  }
  std::string buf, head;
  bool ok = readMessage(fd, buf, &head, body);
  close(fd);
  if (!ok) return 0;
  std::string first;
  parseHeaders(head, &first);
  auto sp = first.find(' ');
  return sp == std::string::npos ? 0 : std::atoi(first.c_str() + sp + 1);
}

// The headers Bookinfo's services pass on to the services they call.
std::vector<std::pair<std::string, std::string>> propagated(const Request& r) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* h : {"end-user", "x-request-id", "traceparent", "tracestate", "user-agent"})
    if (!r.header(h).empty()) out.emplace_back(h, r.header(h));
  return out;
}

std::string jsonString(const std::string& body, const std::string& key) {
  auto at = body.find("\"" + key + "\":");
  if (at == std::string::npos) return "";
  at = body.find('"', at + key.size() + 3);
  if (at == std::string::npos) return "";
  return body.substr(at + 1, body.find('"', at + 1) - at - 1);
}

// --- the services -------------------------------------------------------------------------------

Response details(const Request& r) {
  if (r.path.rfind("/details/", 0) != 0)
    return {404, "application/json", "{\"error\":\"not found\"}"};
  return {200, "application/json",
          "{\"id\":0,\"author\":\"William Shakespeare\",\"year\":1595,\"type\":\"paperback\","
          "\"pages\":200,\"publisher\":\"PublisherA\",\"language\":\"English\","
          "\"ISBN-10\":\"1234567890\",\"ISBN-13\":\"123-1234567890\"}"};
}

Response ratings(const Request& r) {
  if (r.path.rfind("/ratings/", 0) != 0)
    return {404, "application/json", "{\"error\":\"not found\"}"};
  return {200, "application/json", "{\"id\":0,\"ratings\":{\"Reviewer1\":5,\"Reviewer2\":4}}"};
}

Response reviews(const Request& r) {
  if (r.path.rfind("/reviews/", 0) != 0)
    return {404, "application/json", "{\"error\":\"not found\"}"};
  std::string color = env("STAR_COLOR");
  std::string rating1, rating2;
  if (!color.empty()) {
    std::string body;
    int status = httpGet(env("RATINGS_HOSTNAME", "ratings"), 9080, "/ratings/0", propagated(r),
                         color == "black" ? 10000 : 2500, &body);
    if (status == 200) {
      rating1 = "{\"stars\":5,\"color\":\"" + color + "\"}";
      rating2 = "{\"stars\":4,\"color\":\"" + color + "\"}";
    } else {
      rating1 = rating2 = "{\"error\":\"Ratings service is currently unavailable\"}";
    }
  }
  auto review = [&](const char* who, const char* text, const std::string& rating) {
    std::string s = std::string("{\"reviewer\":\"") + who + "\",\"text\":\"" + text + "\"";
    if (!rating.empty()) s += ",\"rating\":" + rating;
    return s + "}";
  };
  return {200, "application/json",
          "{\"id\":\"0\",\"podname\":\"" + env("HOSTNAME") + "\",\"clustername\":\"null\"," +
              "\"reviews\":[" +
              review("Reviewer1", "An extremely entertaining play by Shakespeare.", rating1) + "," +
              review("Reviewer2", "Absolutely fun and entertaining.", rating2) + "]}"};
}

std::string cookieUser(const Request& r) {
  std::string c = r.header("cookie");
  auto at = c.find("session=");
  if (at == std::string::npos) return "";
  return c.substr(at + 8, c.find(';', at) - at - 8);
}

Response productpage(const Request& r) {
  std::string path = r.path.substr(0, r.path.find('?'));
  if (r.method == "POST" && path == "/login") {
    auto at = r.body.find("username=");
    std::string user =
        at == std::string::npos ? "" : r.body.substr(at + 9, r.body.find('&', at) - at - 9);
    Response resp{302, "text/html", ""};
    resp.headers = {{"Location", "/productpage"}, {"Set-Cookie", "session=" + user + "; Path=/"}};
    return resp;
  }
  if (path == "/logout") {
    Response resp{302, "text/html", ""};
    resp.headers = {{"Location", "/productpage"}, {"Set-Cookie", "session=; Path=/; Max-Age=0"}};
    return resp;
  }
  if (path.rfind("/static", 0) == 0) return {200, "text/css", "body {}\n"};
  if (path == "/api/v1/products")
    return {200, "application/json", "[{\"id\":0,\"title\":\"The Comedy of Errors\"}]"};
  if (path != "/productpage") return {404, "text/html", "<h1>404 Not Found</h1>"};

  std::string user = cookieUser(r);
  auto headers = propagated(r);
  std::erase_if(headers, [](const auto& h) { return h.first == "end-user"; });
  if (!user.empty()) headers.emplace_back("end-user", user);
  std::string html = "<html><head><title>Simple Bookstore App</title></head><body>\n";
  html += user.empty() ? "<button>Sign in</button>\n"
                       : "<span>" + user + "</span> <a href=\"/logout\">sign out</a>\n";
  html += "<h1>The Comedy of Errors</h1>\n";
  std::string d;
  if (httpGet(env("DETAILS_HOSTNAME", "details"), 9080, "/details/0", headers, 3000, &d) == 200)
    html +=
        "<h4>Book Details</h4><dl><dt>Author:</dt><dd>" + jsonString(d, "author") + "</dd></dl>\n";
  else
    html +=
        "<h4>Error fetching product details!</h4>\n<p>Sorry, product details are currently "
        "unavailable for this book.</p>\n";
  // Reviews: a 3 s timeout and one retry, as the real productpage.
  std::string rv;
  int status = 0;
  for (int attempt = 0; attempt < 2 && status != 200; ++attempt) {
    rv.clear();
    status = httpGet(env("REVIEWS_HOSTNAME", "reviews"), 9080, "/reviews/0", headers, 3000, &rv);
  }
  if (status != 200) {
    html +=
        "<h4>Error fetching product reviews!</h4>\n<p>Sorry, product reviews are currently "
        "unavailable for this book.</p>\n";
  } else {
    html += "<h4>Book Reviews</h4>\n";
    size_t at = 0;
    while ((at = rv.find("\"reviewer\":", at)) != std::string::npos) {
      size_t next = rv.find("\"reviewer\":", at + 1);
      std::string one = rv.substr(at, next == std::string::npos ? std::string::npos : next - at);
      html += "<blockquote><p>" + jsonString(one, "text") + "</p><small>" +
              jsonString(one, "reviewer") + "</small>";
      std::string color = jsonString(one, "color");
      std::string error = jsonString(one, "error");
      if (!color.empty())
        html +=
            "<font color=\"" + color + "\"><span class=\"glyphicon glyphicon-star\"></span></font>";
      else if (!error.empty())
        html += "<p><i>" + error + "</i></p>";
      html += "</blockquote>\n";
      at += 1;
    }
    html +=
        "<dl><dt>Reviews served by:</dt><dd><u>" + jsonString(rv, "podname") + "</u></dd></dl>\n";
  }
  html += "</body></html>\n";
  return {200, "text/html; charset=utf-8", html};
}

void serve(int fd, Response (*handler)(const Request&)) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string buf;
  for (;;) {
    std::string head, body, first;
    if (!readMessage(fd, buf, &head, &body)) break;
    Request r;
    r.headers = parseHeaders(head, &first);
    std::istringstream in(first);
    std::string version;
    in >> r.method >> r.path >> version;
    r.body = body;
    Response resp =
        r.path == "/health" ? Response{200, "application/json", "{\"status\":\"ok\"}"} : handler(r);
    bool close = lower(r.header("connection")) == "close";
    std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " +
                      (resp.status == 200   ? "OK"
                       : resp.status == 302 ? "Found"
                                            : "Error") +
                      "\r\nContent-Type: " + resp.contentType +
                      "\r\nContent-Length: " + std::to_string(resp.body.size()) + "\r\n";
    for (const auto& [k, v] : resp.headers) out += k + ": " + v + "\r\n";
    if (close) out += "Connection: close\r\n";
    out += "\r\n" + resp.body;
    if (write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size()) || close) break;
  }
  ::close(fd);
}

}  // namespace

int main() {
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, [](int) { _exit(0); });
  std::string role = env("ROLE");
  Response (*handler)(const Request&) = role == "productpage" ? productpage
                                        : role == "details"   ? details
                                        : role == "reviews"   ? reviews
                                        : role == "ratings"   ? ratings
                                                              : nullptr;
  if (!handler) {
    std::cerr << "ROLE must be productpage, details, reviews or ratings\n";
    return 2;
  }
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(9080);
  if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(ls, 128) != 0) {
    perror("listen :9080");
    return 1;
  }
  std::cout << role << " " << env("STAR_COLOR") << " listening on :9080" << std::endl;
  for (;;) {
    int fd = accept(ls, nullptr, nullptr);
    if (fd >= 0) std::thread(serve, fd, handler).detach();
  }
}
