#include "ui_server.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <fstream>
#include <sstream>

#include "http_codec.h"
#include "podium/common/strings.h"

namespace podium::api {

namespace {

constexpr std::chrono::hours kSessionLifetime{12};

std::string randomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

bool sameSecret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string cookieValue(const HttpRequest& req, const std::string& name) {
  for (const auto& part : strings::split(req.header("cookie"), ';')) {
    auto kv = strings::trim(part);
    if (kv.substr(0, name.size() + 1) == name + "=") return std::string(kv.substr(name.size() + 1));
  }
  return "";
}

const char* mimeType(const std::string& path) {
  static const std::map<std::string, const char*> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"}};
  auto dot = path.rfind('.');
  auto it = dot == std::string::npos ? kTypes.end() : kTypes.find(path.substr(dot));
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

HttpResponse status(int code, const std::string& reason, const std::string& message) {
  HttpResponse r;
  r.status = code;
  r.setHeader("Content-Type", "application/json");
  r.body = json::dump(Json{{"kind", "Status"},
                           {"apiVersion", "v1"},
                           {"status", code < 400 ? "Success" : "Failure"},
                           {"reason", reason},
                           {"message", message},
                           {"code", code}});
  return r;
}

}  // namespace

UiServer::UiServer(std::string password, std::string assetsDir, Clock& clock)
    : password_(std::move(password)), assetsDir_(std::move(assetsDir)), clock_(clock) {}

std::optional<std::string> UiServer::sessionUser(const HttpRequest& req) {
  std::string token = cookieValue(req, kCookie);
  if (token.empty()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(token);
  if (it == sessions_.end()) return std::nullopt;
  if (clock_.monotonic() >= it->second) {
    sessions_.erase(it);
    return std::nullopt;
  }
  return std::string(kUser);
}

HttpResponse UiServer::handle(const HttpRequest& req) {
  const std::string& p = req.path;
  if (p == "/ui") {
    HttpResponse r;
    r.status = 302;
    r.setHeader("Location", "/ui/");
    return r;
  }
  if (p == "/ui/api/login") return login(req);
  if (p == "/ui/api/logout") return logout(req);
  if (p == "/ui/api/userinfo") {
    auto user = sessionUser(req);
    Json body = {{"loggedIn", user.has_value()}};
    if (user) body["username"] = *user;
    HttpResponse r;
    r.setHeader("Content-Type", "application/json");
    r.setHeader("Cache-Control", "no-store");
    r.body = json::dump(body);
    return r;
  }
  if (p.rfind("/ui/api/", 0) == 0) return status(404, "NotFound", "no such UI call: " + p);
  return asset(req);
}

HttpResponse UiServer::login(const HttpRequest& req) {
  if (req.method != "POST") return status(405, "MethodNotAllowed", "log in with a POST");
  auto body = json::parse(req.body);
  if (!body || !body->value.is_object())
    return status(400, "BadRequest", "the body must be {\"username\": ..., \"password\": ...}");
  std::string user = json::str(body->value, "username"), pw = json::str(body->value, "password");
  if (user != kUser || !sameSecret(pw, password_))
    return status(401, "Unauthorized", "Invalid username or password");
  std::string token = randomHex(32);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = clock_.monotonic();
    std::erase_if(sessions_, [&](const auto& s) { return s.second <= now; });
    sessions_[token] = now + kSessionLifetime;
  }
  HttpResponse r;
  r.setHeader("Content-Type", "application/json");
  r.setHeader("Set-Cookie", std::string(kCookie) + "=" + token +
                                "; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=" +
                                std::to_string(std::chrono::seconds(kSessionLifetime).count()));
  r.body = json::dump(Json{{"username", kUser}});
  return r;
}

HttpResponse UiServer::logout(const HttpRequest& req) {
  if (req.method != "POST") return status(405, "MethodNotAllowed", "log out with a POST");
  {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_.erase(cookieValue(req, kCookie));
  }
  HttpResponse r = status(200, "", "logged out");
  r.setHeader("Set-Cookie",
              std::string(kCookie) + "=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
  return r;
}

HttpResponse UiServer::asset(const HttpRequest& req) {
  if (req.method != "GET" && req.method != "HEAD")
    return status(405, "MethodNotAllowed", "the UI's files are read with GET");
  std::string rel = req.path.substr(std::string("/ui/").size());
  // Files are plain names in the assets folder; any other path is the page itself (its own
  // routes: /ui/applications/..., /ui/cluster).
  bool file = !rel.empty() && rel.find('/') == std::string::npos &&
              rel.find("..") == std::string::npos && rel.find('.') != std::string::npos;
  std::string path = assetsDir_ + "/" + (file ? rel : "index.html");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (file) return status(404, "NotFound", "no such UI file: " + rel);
    HttpResponse r;
    r.status = 503;
    r.setHeader("Content-Type", "text/plain; charset=utf-8");
    r.body = "Podium's web UI was not built (no " + path +
             "): run the README's setup command, or `scripts/build-ui.sh`.\n";
    return r;
  }
  std::ostringstream data;
  data << in.rdbuf();
  HttpResponse r;
  r.setHeader("Content-Type", mimeType(path));
  r.setHeader("Cache-Control", file ? "public, max-age=300" : "no-cache");
  r.setHeader("X-Content-Type-Options", "nosniff");
  r.setHeader("X-Frame-Options", "DENY");
  r.setHeader("Content-Security-Policy",
              "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'");
  if (req.method == "GET") r.body = data.str();
  return r;
}

}  // namespace podium::api
