#pragma once

// The web UI's front door on the API server's port: the admin password (made on first start and
// kept in DATA/tls/ui-admin.password, as Argo CD keeps its initial admin secret), sessions
// (in memory, 12 h, a random token in an HttpOnly, Secure, SameSite=Strict cookie), the login,
// logout and userinfo calls under /ui/api/, and the built assets (ui/ in the repository, built
// by npm) under /ui/. Everything else the page reads goes through the Kubernetes API with the
// session cookie standing for the admin's credentials.

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "podium/api/http.h"
#include "podium/common/time.h"

namespace podium::api {

class UiServer {
 public:
  UiServer(std::string password, std::string assetsDir, Clock& clock);

  // The user a request's session cookie stands for, if it is a live session.
  std::optional<std::string> sessionUser(const HttpRequest& req);
  // /ui, /ui/ and everything below.
  HttpResponse handle(const HttpRequest& req);

  static constexpr const char* kUser = "admin";
  static constexpr const char* kCookie = "podium_session";

 private:
  HttpResponse login(const HttpRequest& req);
  HttpResponse logout(const HttpRequest& req);
  HttpResponse asset(const HttpRequest& req);

  std::string password_, assetsDir_;
  Clock& clock_;
  std::mutex mu_;                                                          // guards sessions_
  std::map<std::string, std::chrono::steady_clock::time_point> sessions_;  // token -> expiry
};

}  // namespace podium::api
