// Argo CD's API paths the application controller serves: push webhooks from git hosts, the
// managed-resources view behind `argocd app diff` / `podium app diff`, and the resource tree
// (resource_tree.cc).
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "app_controller_impl.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"

namespace podium::gitops {

api::HttpResponse jsonReply(int status, const Json& body) {
  api::HttpResponse r;
  r.status = status;
  r.setHeader("Content-Type", "application/json");
  r.body = json::dump(body) + "\n";
  return r;
}

namespace {

// Argo CD's API error body (grpc-gateway's: a gRPC code and the message).
Json argoError(int grpcCode, const std::string& message) {
  return {{"error", message}, {"code", grpcCode}, {"message", message}};
}

std::string hmacSha256Hex(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  static const char* h = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) out += std::string{h[mac[i] >> 4], h[mac[i] & 15]};
  return out;
}

bool equalConstantTime(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// GitHub signs with X-Hub-Signature-256 (sha256=HMAC), Gitea and Gogs with X-Gitea-Signature /
// X-Gogs-Signature (hex HMAC), GitLab sends the secret itself in X-Gitlab-Token.
bool signatureOk(const std::string& provider, const std::string& secret,
                 const api::HttpRequest& req) {
  if (provider == "gitlab") return equalConstantTime(req.header("x-gitlab-token"), secret);
  std::string mac = hmacSha256Hex(secret, req.body);
  if (provider == "github")
    return equalConstantTime(req.header("x-hub-signature-256"), "sha256=" + mac);
  std::string sig = req.header("x-gitea-signature");
  if (sig.empty()) sig = req.header("x-gogs-signature");
  return equalConstantTime(sig, mac);
}

}  // namespace

api::HttpResponse AppController::serve(const api::HttpRequest& req) {
  if (req.path == "/api/webhook" || req.path == "/api/webhook/") return webhook(req);
  std::vector<std::string> parts;
  for (auto& p : strings::split(req.path, '/'))
    if (!p.empty()) parts.push_back(p);
  if (parts.size() == 5 && (parts[4] == "managed-resources" || parts[4] == "resource-tree") &&
      req.method == "GET") {
    auto ns = req.query.find("appNamespace");
    std::string appNs = ns == req.query.end() ? kArgoNamespace : ns->second;
    try {
      if (parts[4] == "resource-tree") return resourceTree(appNs, parts[3]);
      return managedResources(appNs, parts[3]);
    } catch (const std::exception& e) {  // an app's odd content must not take the server down
      PODIUM_LOG(Error) << "gitops: managed-resources of " << parts[3] << ": " << e.what();
      return jsonReply(500, argoError(13, e.what()));
    }
  }
  return jsonReply(404, argoError(5, "Not Found: " + req.method + " " + req.path));
}

api::HttpResponse AppController::managedResources(const std::string& ns, const std::string& name) {
  client::ObjectPtr app = apps_.get(ns, name);
  if (!app)
    return jsonReply(404,
                     argoError(5, "applications.argoproj.io \"" + name + "\" not found in " + ns));
  const Json& src = json::at(*app, {"spec", "source"});
  // What the app was last compared with, else its target revision now.
  std::string revision = json::getString(*app, {"status", "sync", "revision"});
  if (revision.empty()) revision = json::str(src, "targetRevision", "HEAD");
  auto loaded = sources_.loadCached(*app, revision);
  if (!loaded) return jsonReply(400, argoError(3, loaded.error()));
  std::vector<Target> targets = *loaded->targets;
  auto rules = parseIgnoreRules(json::at(*app, {"spec", "ignoreDifferences"}));
  if (!rules) return jsonReply(400, argoError(3, rules.error()));
  attachRules(targets, *rules);
  Json items = Json::array();
  for (const auto& t : targets) {
    if (!t.hook.empty()) continue;
    auto live = client_.get(t.resource, t.ns, t.name);
    Json want = comparable(t.obj), liveView = nullptr;
    bool modified = true;
    if (live) {
      Json have;
      std::tie(want, have) = normalized(t, *live);
      modified = !contains(have, want);
      liveView = projectOnto(have, want);
      liveView["apiVersion"] = t.obj["apiVersion"];
    }
    want["apiVersion"] = t.obj["apiVersion"];
    items.push_back({{"group", t.group},
                     {"kind", t.kind},
                     {"namespace", t.ns},
                     {"name", t.name},
                     {"targetState", json::dump(want)},
                     {"liveState", live ? json::dump(*live) : "null"},
                     {"normalizedLiveState", json::dump(liveView)},
                     {"modified", modified}});
  }
  return jsonReply(200, {{"items", items}});
}

api::HttpResponse AppController::webhook(const api::HttpRequest& req) {
  std::string provider =
      !req.header("x-github-event").empty()                                         ? "github"
      : !req.header("x-gitlab-event").empty()                                       ? "gitlab"
      : !req.header("x-gitea-event").empty() || !req.header("x-gogs-event").empty() ? "gogs"
                                                                                    : "";
  if (provider.empty())
    return jsonReply(
        400, {{"message", "unknown webhook: expected a GitHub, GitLab or Gitea push event"}});
  std::string secret;
  if (auto s = client_.get(client::resources::kSecrets, kArgoNamespace, "argocd-secret"))
    secret = secretValue(*s, "webhook." + provider + ".secret");
  if (!secret.empty() && !signatureOk(provider, secret, req)) {
    PODIUM_LOG(Warn) << "gitops: " << provider << " webhook with a bad signature refused";
    return jsonReply(401, {{"message", "webhook signature mismatch"}});
  }
  auto body = json::parse(req.body);
  if (!body || !body->value.is_object())
    return jsonReply(400, {{"message", "the payload is not JSON"}});
  const Json& p = body->value;
  std::vector<std::string> urls;
  for (const char* k : {"html_url", "clone_url", "ssh_url", "git_url", "url"})
    urls.push_back(json::getString(p, {"repository", k}));
  for (const char* k : {"web_url", "git_http_url", "git_ssh_url"})
    urls.push_back(json::getString(p, {"project", k}));
  std::string ref = json::str(p, "ref");
  std::string revision = ref.rfind("refs/heads/", 0) == 0  ? ref.substr(11)
                         : ref.rfind("refs/tags/", 0) == 0 ? ref.substr(10)
                                                           : ref;
  Json refreshed = Json::array();
  for (const auto& a : apps_.list("")) {
    const Json& src = json::at(*a, {"spec", "source"});
    std::string target = json::str(src, "targetRevision", "HEAD");
    bool sameRepo = false;
    for (const auto& u : urls)
      if (!u.empty() && sameRepository(u, json::str(src, "repoURL"))) sameRepo = true;
    if (!sameRepo || !(target == "HEAD" || target.empty() || target == revision)) continue;
    queue().add(client::Informer::keyOf(*a));
    refreshed.push_back(json::getString(*a, {"metadata", "namespace"}) + "/" +
                        json::getString(*a, {"metadata", "name"}));
  }
  Json built = Json::array();
  for (const auto& k : images_->pushed(urls, revision)) built.push_back(k);
  return jsonReply(200, {{"refreshed", refreshed}, {"imageBuilds", built}});
}

}  // namespace podium::gitops
