#include "podium/gitops/app_controller.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "diff.h"
#include "health.h"
#include "podium/client/client.h"
#include "podium/client/informer.h"
#include "podium/client/workqueue.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"
#include "repo.h"

namespace podium::gitops {

namespace {

using client::Resource;
const Resource kApplications{"argoproj.io", "v1alpha1", "applications"};
constexpr const char* kTrackingId = "argocd.argoproj.io/tracking-id";
constexpr const char* kRefresh = "argocd.argoproj.io/refresh";
// Where Argo CD keeps its repository Secrets and ConfigMaps (and the webhook secret).
constexpr const char* kArgoNamespace = "argocd";
constexpr const char* kFinalizer = "resources-finalizer.argocd.argoproj.io";

api::HttpResponse jsonReply(int status, const Json& body) {
  api::HttpResponse r;
  r.status = status;
  r.setHeader("Content-Type", "application/json");
  r.body = json::dump(body) + "\n";
  return r;
}

// Argo CD's API error body (grpc-gateway's: a gRPC code and the message).
Json argoError(int grpcCode, const std::string& message) {
  return {{"error", message}, {"code", grpcCode}, {"message", message}};
}

// Helm's install order, which Argo CD's sync uses within a wave; other kinds come after.
int kindOrder(const std::string& kind) {
  static const char* order[] = {"Namespace",
                                "NetworkPolicy",
                                "ResourceQuota",
                                "LimitRange",
                                "PodSecurityPolicy",
                                "PodDisruptionBudget",
                                "ServiceAccount",
                                "Secret",
                                "SecretList",
                                "ConfigMap",
                                "StorageClass",
                                "PersistentVolume",
                                "PersistentVolumeClaim",
                                "CustomResourceDefinition",
                                "ClusterRole",
                                "ClusterRoleList",
                                "ClusterRoleBinding",
                                "ClusterRoleBindingList",
                                "Role",
                                "RoleList",
                                "RoleBinding",
                                "RoleBindingList",
                                "Service",
                                "DaemonSet",
                                "Pod",
                                "ReplicationController",
                                "ReplicaSet",
                                "Deployment",
                                "HorizontalPodAutoscaler",
                                "StatefulSet",
                                "Job",
                                "CronJob",
                                "IngressClass",
                                "Ingress",
                                "APIService"};
  for (int i = 0; i < static_cast<int>(std::size(order)); ++i)
    if (kind == order[i]) return i;
  return static_cast<int>(std::size(order));
}

std::string groupOf(const std::string& apiVersion) {
  auto slash = apiVersion.find('/');
  return slash == std::string::npos ? "" : apiVersion.substr(0, slash);
}

// A Secret's data value, decoded ("" when absent or not base64).
std::string secretValue(const Json& secret, const std::string& key) {
  return strings::base64Decode(json::getString(secret, {"data", key})).value_or("");
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

// The names a kustomization file has (what makes a directory a Kustomize source).
constexpr const char* kKustomizationFiles[] = {"kustomization.yaml", "kustomization.yml",
                                               "Kustomization"};

// Argo CD's sourceType, by the file the manifests came from.
std::string sourceTypeOf(const std::string& file) {
  std::string base = file.substr(file.rfind('/') == std::string::npos ? 0 : file.rfind('/') + 1);
  if (base == "Chart.yaml") return "Helm";
  for (const char* k : kKustomizationFiles)
    if (base == k) return "Kustomize";
  return "Directory";
}

// Whether two repository URLs name the same repository (case, a trailing ".git" or "/", and
// "file://" aside).
bool sameRepository(std::string a, std::string b) {
  auto norm = [](std::string u) {
    u = strings::toLower(remoteFor(u));
    while (!u.empty() && u.back() == '/') u.pop_back();
    if (u.size() > 4 && u.compare(u.size() - 4, 4, ".git") == 0) u.resize(u.size() - 4);
    return u;
  };
  return norm(std::move(a)) == norm(std::move(b));
}

// Whether a sync option ("Key=value") is set in a list of them (spec.syncPolicy.syncOptions,
// an operation's syncOptions) or in an object's argocd.argoproj.io/sync-options annotation.
bool optionSet(const Json& options, const std::string& option) {
  for (const auto& o : options)
    if (o.is_string() && strings::trim(o.get<std::string>()) == option) return true;
  return false;
}
bool annotatedOption(const Json& obj, const std::string& option) {
  std::string a =
      json::getString(obj, {"metadata", "annotations", "argocd.argoproj.io/sync-options"});
  for (const auto& o : strings::split(a, ','))
    if (strings::trim(o) == option) return true;
  return false;
}

struct Target {
  Json obj;
  Resource resource;
  std::string group, version, kind, ns, name;
  std::string file;
  std::string hook;  // PreSync, Sync, PostSync, SyncFail, Skip; "" for a resource
  int wave = 0;      // argocd.argoproj.io/sync-wave
  std::vector<const IgnoreRule*> ignore;  // the app's ignoreDifferences rules that select it
  std::string key() const { return group + "/" + kind + "/" + ns + "/" + name; }
  std::string deletePolicy() const {
    std::string p =
        json::getString(obj, {"metadata", "annotations", "argocd.argoproj.io/hook-delete-policy"});
    return p.empty() ? "BeforeHookCreation" : p;
  }
};

}  // namespace

class AppController : public GitOps {
 public:
  AppController(api::Storage& storage, GitOpsOptions options)
      : client_(client::newLocalClient(storage, "argocd-controller")),
        opts_(std::move(options)),
        apps_(*client_, kApplications) {
    apps_.addHandlers(
        {[this](const client::ObjectPtr& o) { queue_.add(client::Informer::keyOf(*o)); },
         [this](const client::ObjectPtr&, const client::ObjectPtr& n) {
           queue_.add(client::Informer::keyOf(*n));
         },
         nullptr});
    apps_.start();
    apps_.waitForSync(std::chrono::seconds(10));
    // Several apps reconcile at once (one app is never reconciled twice at once: the queue
    // hands a key to one worker at a time), so a sync waiting for its waves holds up no other.
    for (int i = 0; i < std::max(1, opts_.workers); ++i) workers_.emplace_back([this] { work(); });
    poller_ = std::thread([this] { poll(); });
  }
  ~AppController() override { stop(); }
  void stop() override {
    if (stopped_.exchange(true)) return;
    queue_.shutdown();
    for (auto& w : workers_) w.join();
    if (poller_.joinable()) poller_.join();
    apps_.stop();
  }

 private:
  // Every Application is refreshed each poll interval, with up to a quarter of it as jitter.
  void poll() {
    std::mt19937 rng(std::random_device{}());
    while (!stopped_) {
      auto jitter = std::uniform_int_distribution<int64_t>(0, opts_.pollInterval.count() / 4)(rng);
      auto until =
          std::chrono::steady_clock::now() + opts_.pollInterval + std::chrono::milliseconds(jitter);
      while (!stopped_ && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      for (const auto& a : apps_.list("")) queue_.add(client::Informer::keyOf(*a));
    }
  }
  void work() {
    std::string key;
    while (queue_.get(&key)) {
      try {
        reconcile(key);
      } catch (const std::exception& e) {
        PODIUM_LOG(Error) << "gitops: " << key << ": " << e.what();
      }
      queue_.done(key);
    }
  }

  GitRepo* repo(const std::string& url, std::string* error) {
    auto it = repos_.find(url);
    if (it != repos_.end()) return it->second.get();
    auto r = GitRepo::open(url, opts_.dataDir + "/gitops/repos");
    if (!r) {
      *error = r.error();
      return nullptr;
    }
    return (repos_[url] = std::move(*r)).get();
  }

  // How an app syncs: its sync options (with an operation's) and ignoreDifferences.
  struct SyncSettings {
    Json options = Json::array();
    std::vector<IgnoreRule> ignore;
    bool has(const Target* t, const std::string& option) const {
      return optionSet(options, option) || (t && annotatedOption(t->obj, option));
    }
  };

  // The paths a target's ignoreDifferences rules leave out, with the live object's fields of the
  // managers they name.
  static std::vector<FieldPath> ignoredPaths(const Target& t, const Json& live) {
    std::vector<FieldPath> out;
    for (const IgnoreRule* r : t.ignore) {
      out.insert(out.end(), r->paths.begin(), r->paths.end());
      for (const auto& m : r->managers) {
        auto owned = managedPaths(live, m);
        out.insert(out.end(), owned.begin(), owned.end());
      }
    }
    return out;
  }

  // Whether the live object is as git says, ignoreDifferences aside (taken out of both sides, as
  // Argo CD's normaliser does).
  static bool inSync(const Target& t, const Json& live) {
    if (t.ignore.empty()) return contains(live, comparable(t.obj));  // no copy of live
    auto [want, have] = normalized(t, live);
    return contains(have, want);
  }

  // What is compared of a target and its live object: git's fields and the live object, each
  // without the fields the target's ignoreDifferences rules leave out.
  static std::pair<Json, Json> normalized(const Target& t, const Json& live) {
    Json want = comparable(t.obj), have = live;
    for (const auto& p : ignoredPaths(t, live)) {
      removePath(want, p);
      removePath(have, p);
    }
    return {std::move(want), std::move(have)};
  }

  // Gives each target the rules that select it (pointers into `rules`).
  static void attachRules(std::vector<Target>& targets, const std::vector<IgnoreRule>& rules) {
    for (auto& t : targets)
      for (const auto& rule : rules)
        if (rule.matches(t.group, t.kind, t.ns, t.name)) t.ignore.push_back(&rule);
  }

  // What of `t` a sync writes: with RespectIgnoreDifferences, the ignored fields keep their
  // live values.
  static Json toApply(const Target& t, const Json* live, const SyncSettings& settings) {
    if (!live || t.ignore.empty() || !settings.has(&t, "RespectIgnoreDifferences=true"))
      return t.obj;
    Json out = t.obj;
    for (const auto& p : ignoredPaths(t, *live)) keepLive(out, *live, p);
    return out;
  }

  // What fetching `url` takes, as Argo CD finds it in its namespace: a Secret labelled
  // argocd.argoproj.io/secret-type=repository whose `url` is this repository, else the
  // `repo-creds` Secret whose `url` is the longest prefix of it (a credential template); the
  // server's CA certificates from argocd-tls-certs-cm (a key per host) and ssh host keys from
  // argocd-ssh-known-hosts-cm.
  RepoCredentials credentialsFor(const std::string& url) {
    RepoCredentials c;
    if (remoteFor(url).rfind('/', 0) == 0) return c;  // a local path: nothing to look up
    client::ListOptions o;
    o.labelSelector = "argocd.argoproj.io/secret-type in (repository,repo-creds)";
    const Json* best = nullptr;
    size_t bestPrefix = 0;
    auto secrets = client_->list(client::resources::kSecrets, kArgoNamespace, o);
    if (secrets)
      for (const auto& s : secrets->items) {
        std::string type =
            json::getString(*s, {"metadata", "labels", "argocd.argoproj.io/secret-type"});
        std::string u = secretValue(*s, "url");
        if (u.empty()) continue;
        if (type == "repository" && sameRepository(u, url)) {
          best = s.get();
          break;
        }
        if (type == "repo-creds" && url.rfind(u, 0) == 0 && u.size() > bestPrefix) {
          best = s.get();
          bestPrefix = u.size();
        }
      }
    if (best) {
      c.username = secretValue(*best, "username");
      c.password = secretValue(*best, "password");
      c.sshPrivateKey = secretValue(*best, "sshPrivateKey");
      c.insecure = secretValue(*best, "insecure") == "true";
    }
    if (auto cm =
            client_->get(client::resources::kConfigMaps, kArgoNamespace, "argocd-tls-certs-cm"))
      c.tlsCerts = json::getString(*cm, {"data", repoHost(url).host});
    if (auto cm = client_->get(client::resources::kConfigMaps, kArgoNamespace,
                               "argocd-ssh-known-hosts-cm"))
      c.knownHosts = json::getString(*cm, {"data", "ssh_known_hosts"});
    return c;
  }

  // The manifests of a source at a commit: the directory's files, or what `kubectl kustomize`
  // makes of it when it holds a kustomization file (sourceType Kustomize). Cached by commit and
  // source, so an unchanged app costs no rendering.
  Expected<std::vector<ManifestFile>, std::string> manifests(GitRepo& repo, const Json& app,
                                                             const std::string& commit) {
    const Json& src = json::at(app, {"spec", "source"});
    std::string path = json::str(src, "path");
    std::string release = json::getString(src, {"helm", "releaseName"});
    if (release.empty()) release = json::getString(app, {"metadata", "name"});
    std::string destNs = json::getString(app, {"spec", "destination", "namespace"});
    std::string cacheKey = json::str(src, "repoURL") + "\n" + commit + "\n" + json::dump(src) +
                           "\n" + release + "\n" + destNs;
    if (auto it = rendered_.find(cacheKey); it != rendered_.end()) return it->second;
    std::string dir = path;
    while (!dir.empty() && dir.back() == '/') dir.pop_back();
    std::string kustomization;
    for (const char* k : kKustomizationFiles)
      if (kustomization.empty() && repo.hasFile(commit, dir.empty() ? k : dir + "/" + k))
        kustomization = dir.empty() ? k : dir + "/" + k;
    std::string chart = dir.empty() ? "Chart.yaml" : dir + "/Chart.yaml";
    if (!repo.hasFile(commit, chart)) chart.clear();
    std::vector<ManifestFile> files;
    if (!chart.empty()) {
      auto built = helmTemplate(repo, commit, dir, src, release, destNs);
      if (!built) return Unexpected(chart + ": " + built.error());
      files.push_back({chart, std::move(*built)});
    } else if (kustomization.empty()) {
      DirectoryOptions d;
      d.recurse = json::boolean(json::at(src, {"directory"}), "recurse");
      d.include = json::getString(src, {"directory", "include"});
      d.exclude = json::getString(src, {"directory", "exclude"});
      auto f = repo.files(commit, path, d);
      if (!f) return Unexpected(f.error());
      files = std::move(*f);
    } else {
      std::string work = opts_.dataDir + "/gitops/checkouts/" + commit;
      std::error_code ec;
      std::filesystem::remove_all(work, ec);
      if (auto c = repo.checkout(commit, work); !c) return Unexpected(c.error());
      auto built = kustomize(work + "/" + dir);
      std::filesystem::remove_all(work, ec);
      if (!built) return Unexpected(kustomization + ": kustomize build failed: " + built.error());
      files.push_back({kustomization, std::move(*built)});
    }
    if (rendered_.size() > 64) rendered_.clear();
    rendered_[cacheKey] = files;
    return files;
  }

  // Argo CD's retry of a failed automated sync: spec.syncPolicy.retry (limit, default 5 for
  // auto-sync, negative for no limit; backoff duration 5s, factor 2, maxDuration 3m). While a
  // retry waits, operationState.phase is Running with retryCount and when it comes.
  void retryIfFailed(const std::string& key, const Json& spec, const std::string& commit,
                     Json* status) {
    Json& op = (*status)["operationState"];
    std::lock_guard<std::mutex> lock(stateMu_);
    if (json::str(op, "phase") != "Failed") {
      retries_.erase(key);
      return;
    }
    RetryState& st = retries_[key];
    if (st.revision != commit) st = {commit, 0, {}};
    const Json& retry = json::at(spec, {"syncPolicy", "retry"});
    int64_t limit = json::integer(retry, "limit", 5);
    op["retryCount"] = st.count;
    if (limit >= 0 && st.count >= limit) return;
    ++st.count;
    const Json& backoff = json::at(retry, {"backoff"});
    auto base =
        timefmt::parseGoDuration(json::str(backoff, "duration")).value_or(std::chrono::seconds(5));
    auto cap = timefmt::parseGoDuration(json::str(backoff, "maxDuration"))
                   .value_or(std::chrono::minutes(3));
    double factor = static_cast<double>(std::max<int64_t>(1, json::integer(backoff, "factor", 2)));
    auto delay = std::min<std::chrono::milliseconds>(
        cap, std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(base.count()) *
                                                            std::pow(factor, st.count - 1))));
    st.nextAt = std::chrono::steady_clock::now() + delay;
    op["phase"] = "Running";
    op["retryCount"] = st.count;
    op["message"] = json::str(op, "message") + ". Retrying attempt #" + std::to_string(st.count) +
                    " at " +
                    timefmt::rfc3339(std::chrono::system_clock::now() +
                                     std::chrono::duration_cast<std::chrono::seconds>(delay));
    queue_.addAfter(key, delay);
  }

  // A sync's progress, for `podium app sync` and `argocd app get` to show while it runs: the
  // results so far under phase Running (the final status follows when it ends).
  void progress(const Json& app, const Json& results, const std::string& commit,
                const std::string& startedAt, const std::string& message) {
    std::string ns = json::getString(app, {"metadata", "namespace"});
    std::string name = json::getString(app, {"metadata", "name"});
    auto fresh = client_->get(kApplications, ns, name);
    if (!fresh) return;
    Json op = json::at(app, {"operation"}).is_object() ? app["operation"] : Json::object();
    (*fresh)["status"]["operationState"] = {
        {"operation", op},
        {"phase", "Running"},
        {"message", message},
        {"syncResult", {{"revision", commit}, {"resources", results}}},
        {"startedAt", startedAt}};
    // Best effort: the final status follows anyway.
    if (auto r = client_->update(kApplications, ns, *fresh, "status"); !r)
      PODIUM_LOG(Debug) << "gitops: progress of " << name << ": " << r.error().message();
  }

  // The resource of an entry of status.resources (group, version, kind).
  std::optional<Resource> resourceOf(const Json& res) {
    std::string group = json::str(res, "group"), version = json::str(res, "version");
    return client_->resourceFor(group.empty() ? version : group + "/" + version,
                                json::str(res, "kind"));
  }

  // Argo CD's cascading delete: an Application deleted with its finalizer
  // resources-finalizer.argocd.argoproj.io (`podium app delete`, `argocd app delete`) first
  // deletes the resources it tracks (foreground, or background with the finalizer's
  // "/background" form), and lets go once they are gone. Without it, they stay.
  void finalize(const Json& app, const std::string& key) {
    std::string name = json::getString(app, {"metadata", "name"});
    std::string mine;
    Json others = Json::array();
    for (const auto& f : json::at(app, {"metadata", "finalizers"})) {
      if (f.is_string() && f.get<std::string>().rfind(kFinalizer, 0) == 0)
        mine = f.get<std::string>();
      else
        others.push_back(f);
    }
    if (mine.empty()) return;
    client::DeleteOptions d;
    d.propagationPolicy =
        mine == std::string(kFinalizer) + "/background" ? "Background" : "Foreground";
    bool remaining = false;
    for (const auto& res : json::at(app, {"status", "resources"})) {
      auto r = resourceOf(res);
      if (!r) continue;
      auto live = client_->get(*r, json::str(res, "namespace"), json::str(res, "name"));
      // Only what this app still tracks: another app may have taken an object over.
      if (!live ||
          json::getString(*live, {"metadata", "annotations", kTrackingId}).rfind(name + ":", 0) !=
              0)
        continue;
      remaining = true;
      if (!json::find(*live, {"metadata", "deletionTimestamp"}))
        if (auto gone = client_->remove(*r, json::str(res, "namespace"), json::str(res, "name"), d);
            !gone && gone.error().code() != 404)
          PODIUM_LOG(Warn) << "gitops: deleting " << json::str(res, "name") << " of " << name
                           << ": " << gone.error().message();
    }
    if (remaining) {
      queue_.addAfter(key, std::chrono::milliseconds(500));
      return;
    }
    Json obj = app;
    obj["metadata"]["finalizers"] = others;
    auto done =
        client_->update(kApplications, json::getString(app, {"metadata", "namespace"}), obj);
    if (!done && done.error().code() != 404)
      queue_.addAfter(key, std::chrono::milliseconds(500));
    else
      PODIUM_LOG(Info) << "gitops: " << name << " deleted with its resources";
  }

  // Writes one object of a sync as its options say: server-side apply (the default; Argo CD's
  // ServerSideApply=true), or with Replace=true a PUT of the whole object (a create when it is
  // missing). FailOnSharedResource=true refuses an object another app tracks.
  client::Result write(const Target& t, const Json* live, const SyncSettings& settings,
                       const std::string& appName) {
    if (live && settings.has(&t, "FailOnSharedResource=true")) {
      std::string owner = json::getString(*live, {"metadata", "annotations", kTrackingId});
      owner = owner.substr(0, owner.find(':'));
      if (!owner.empty() && owner != appName)
        return Unexpected(api::ApiError(409, "Conflict",
                                        "shared resource found: " + t.kind + "/" + t.name +
                                            " is part of application " + owner));
    }
    Json obj = toApply(t, live, settings);
    if (!settings.has(&t, "Replace=true")) return client_->apply(t.resource, t.ns, obj, true);
    if (!live) return client_->create(t.resource, t.ns, obj);
    obj["metadata"]["resourceVersion"] = json::getString(*live, {"metadata", "resourceVersion"});
    return client_->update(t.resource, t.ns, obj);
  }

  // Deletes a hook object (foreground, so its pods go too) and waits for it to be gone.
  void removeAndWait(const Target& t) {
    client::DeleteOptions d;
    d.propagationPolicy = "Foreground";
    auto r = client_->remove(t.resource, t.ns, t.name, d);
    if (!r) return;
    for (int i = 0; i < 300 && !stopped_; ++i) {
      if (!client_->get(t.resource, t.ns, t.name)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // Waits (up to five minutes) for an object to be Healthy: "Healthy", or why not.
  std::string waitHealthy(const Target& t) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    std::string last = "Missing";
    while (!stopped_ && std::chrono::steady_clock::now() < deadline) {
      auto live = client_->get(t.resource, t.ns, t.name);
      if (live) {
        auto h = healthOf(*live);
        if (!h || h->status == "Healthy") return "Healthy";  // no health check: done once applied
        last = h->status + (h->message.empty() ? "" : ": " + h->message);
        if (h->status == "Degraded") return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return "timed out waiting to be healthy (" + last + ")";
  }

  // `kubectl kustomize DIR`: its YAML, or its error output.
  static Expected<std::string, std::string> kustomize(const std::string& dir) {
    return runTool("kubectl kustomize " + shellQuote(dir), dir + "/.podium-kustomize.err");
  }

  // A Helm chart (a directory with Chart.yaml) through `helm template`, as Argo CD renders
  // one: spec.source.helm's releaseName (default: the app's name), valueFiles (relative to the
  // chart), values / valuesObject, parameters (--set, --set-string with forceString), skipCrds,
  // and the destination namespace.
  Expected<std::string, std::string> helmTemplate(GitRepo& repo, const std::string& commit,
                                                  const std::string& dir, const Json& src,
                                                  const std::string& release,
                                                  const std::string& ns) {
    if (!onPath("helm"))
      return Unexpected(std::string(
          "a Helm chart, and helm is not installed on the server (install helm 3 on its PATH, "
          "or render the chart into plain manifests in git)"));
    std::string work = opts_.dataDir + "/gitops/checkouts/" + commit + "-helm";
    std::error_code ec;
    std::filesystem::remove_all(work, ec);
    if (auto c = repo.checkout(commit, work); !c) return Unexpected(c.error());
    struct Cleanup {
      std::string dir;
      ~Cleanup() {
        std::error_code e;
        std::filesystem::remove_all(dir, e);
      }
    } cleanup{work};
    std::string chartDir = dir.empty() ? work : work + "/" + dir;
    const Json& helm = json::at(src, {"helm"});
    std::string cmd = "helm template " + shellQuote(release) + " " + shellQuote(chartDir);
    if (!ns.empty()) cmd += " --namespace " + shellQuote(ns);
    if (!json::boolean(helm, "skipCrds")) cmd += " --include-crds";
    for (const auto& f : json::at(helm, {"valueFiles"}))
      if (f.is_string()) {
        std::string file = f.get<std::string>();
        if (file.find("..") != std::string::npos)
          return Unexpected("valueFiles: " + file + " leaves the repository");
        cmd += " --values " + shellQuote(chartDir + "/" + file);
      }
    std::string values = json::str(helm, "values");
    if (json::at(helm, {"valuesObject"}).is_object()) values = json::dump(helm["valuesObject"]);
    if (!values.empty()) {
      std::ofstream(work + "/.podium-values.yaml") << values;
      cmd += " --values " + shellQuote(work + "/.podium-values.yaml");
    }
    for (const auto& p : json::at(helm, {"parameters"}))
      cmd += std::string(json::boolean(p, "forceString") ? " --set-string " : " --set ") +
             shellQuote(json::str(p, "name") + "=" + json::str(p, "value"));
    auto out = runTool(cmd, work + "/.podium-helm.err");
    if (!out) return Unexpected("helm template failed: " + out.error());
    return out;
  }

  static bool onPath(const std::string& tool) {
    const char* path = std::getenv("PATH");
    for (const auto& d : strings::split(path ? path : "/usr/bin:/bin", ':'))
      if (!d.empty() && access((d + "/" + tool).c_str(), X_OK) == 0) return true;
    return false;
  }

  static std::string shellQuote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
  }

  // Runs a shell command line: its standard output, or its error output when it fails.
  static Expected<std::string, std::string> runTool(const std::string& cmdline,
                                                    const std::string& errFile) {
    // Warnings (kustomize's deprecated `bases`, ...) go to stderr, kept apart from the YAML.
    std::string cmd = cmdline + " 2>" + shellQuote(errFile);
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return Unexpected("cannot run " + cmdline + ": " + strerror(errno));
    std::string out;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int rc = pclose(p);
    if (rc != 0) {
      std::ifstream f(errFile);
      std::string err((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      return Unexpected(strings::trim(err).empty() ? "exit status " + std::to_string(rc)
                                                   : std::string(strings::trim(err)));
    }
    return out;
  }

  // The desired objects of `app` at `commit`.
  Expected<std::vector<Target>, std::string> render(GitRepo& repo, const Json& app,
                                                    const std::string& commit,
                                                    const std::string& destNs) {
    auto files = manifests(repo, app, commit);
    if (!files) return Unexpected(files.error());
    std::vector<Target> out;
    std::string appName = json::getString(app, {"metadata", "name"});
    for (const auto& f : *files) {
      // JSON is YAML too: one parser for both.
      auto docs = json::parseYamlStream(f.content);
      if (!docs) return Unexpected(f.path + ": " + docs.error());
      std::vector<Json> objects;
      for (auto& doc : *docs) {
        if (doc.is_null()) continue;
        if (doc.is_object() && json::str(doc, "kind") == "List" && doc.contains("items")) {
          for (auto& item : doc["items"]) objects.push_back(item);
        } else {
          objects.push_back(std::move(doc));
        }
      }
      for (auto& obj : objects) {
        if (!obj.is_object())
          return Unexpected(f.path + ": a document is not an object (" + obj.type_name() + ")");
        Target t;
        std::string apiVersion = json::str(obj, "apiVersion");
        t.kind = json::str(obj, "kind");
        t.name = json::getString(obj, {"metadata", "name"});
        if (apiVersion.empty() || t.kind.empty())
          return Unexpected(f.path + ": Object 'Kind' is missing in '" +
                            json::dump(obj).substr(0, 80) + "'");
        if (t.name.empty()) return Unexpected(f.path + ": " + t.kind + " has no metadata.name");
        auto r = client_->resourceFor(apiVersion, t.kind);
        if (!r)
          return Unexpected(f.path + ": the server could not find the requested resource: " +
                            apiVersion + ", Kind=" + t.kind);
        t.resource = *r;
        t.group = groupOf(apiVersion);
        t.version = r->version;
        if (client_->namespaced(*r)) {
          t.ns = json::getString(obj, {"metadata", "namespace"});
          if (t.ns.empty()) t.ns = destNs;
          if (t.ns.empty())
            return Unexpected(f.path + ": " + t.kind + " " + t.name +
                              " is namespaced and the Application names no destination namespace");
          obj["metadata"]["namespace"] = t.ns;
        }
        obj["metadata"]["annotations"][kTrackingId] =
            appName + ":" + t.group + "/" + t.kind + ":" + t.ns + "/" + t.name;
        t.hook = json::getString(obj, {"metadata", "annotations", "argocd.argoproj.io/hook"});
        if (auto w = strings::parseInt(
                json::getString(obj, {"metadata", "annotations", "argocd.argoproj.io/sync-wave"})))
          t.wave = static_cast<int>(*w);
        t.obj = std::move(obj);
        t.file = f.path;
        out.push_back(std::move(t));
      }
    }
    return out;
  }

  void reconcile(const std::string& key) {
    auto [appNs, appName] = client::Informer::splitKey(key);
    client::ObjectPtr appPtr = apps_.get(appNs, appName);
    if (!appPtr) return;
    // An operation is run from the API server's copy, as Argo CD does: the cache can still hold
    // one that a sync just finished (the removal not seen yet), and running it again would
    // replace the sync's result with an empty one.
    if (json::find(*appPtr, {"operation"})) {
      auto fresh = client_->get(kApplications, appNs, appName);
      if (!fresh) return;
      appPtr = std::make_shared<const Json>(std::move(*fresh));
    }
    if (json::find(*appPtr, {"metadata", "deletionTimestamp"})) return finalize(*appPtr, key);
    const Json& app = *appPtr;
    const Json& spec = json::at(app, {"spec"});
    const Json& src = json::at(spec, {"source"});
    const Json& dest = json::at(spec, {"destination"});
    std::string destNs = json::str(dest, "namespace");
    Json status = json::at(app, {"status"}).is_object() ? app["status"] : Json::object();
    Json previous = status;
    std::string now = timefmt::rfc3339(std::chrono::system_clock::now());
    Json conditions = Json::array();
    // A refresh asked for with Argo CD's annotation is done now, recorded (reconciledAt) and
    // the annotation taken off, as Argo CD does.
    bool refresh = !json::getString(app, {"metadata", "annotations", kRefresh}).empty();
    auto fail = [&](const std::string& type, const std::string& message) {
      conditions.push_back({{"type", type}, {"message", message}, {"lastTransitionTime", now}});
      status["sync"] = {{"status", "Unknown"},
                        {"comparedTo", {{"source", src}, {"destination", dest}}}};
      if (!status.contains("health")) status["health"] = {{"status", "Unknown"}};
      writeStatus(app, previous, status, conditions, now, refresh);
    };
    std::string server = json::str(dest, "server"), cluster = json::str(dest, "name");
    if (!(server == "https://kubernetes.default.svc" || cluster == "in-cluster" ||
          (server.empty() && cluster.empty())))
      return fail("InvalidSpecError", "application destination server '" + server + cluster +
                                          "' is not the in-cluster destination "
                                          "(https://kubernetes.default.svc or name in-cluster)");
    std::string url = json::str(src, "repoURL");
    if (url.empty()) return fail("InvalidSpecError", "spec.source.repoURL is required");
    std::string error;
    // The mirrors and render cache are shared with the managed-resources API.
    std::unique_lock<std::mutex> repoLock(repoMu_);
    GitRepo* r = repo(url, &error);
    if (!r) return fail("ComparisonError", "Failed to load target state: " + error);
    if (auto f = r->fetch(credentialsFor(url)); !f)
      return fail("ComparisonError",
                  "Failed to load target state: failed to generate manifest for source 1 of 1: "
                  "rpc error: code = Unknown desc = repository not accessible: " +
                      f.error());
    // A requested operation (`podium app sync`/`rollback`, Argo CD's `operation` field) syncs
    // once to its revision, automated or not.
    const Json* operation = json::find(app, {"operation", "sync"});
    bool operationDone = false;
    std::string opRevision = operation ? json::str(*operation, "revision") : "";
    auto commit =
        r->resolve(!opRevision.empty() ? opRevision : json::str(src, "targetRevision", "HEAD"));
    if (!commit) return fail("ComparisonError", "Failed to load target state: " + commit.error());
    auto targets = render(*r, app, *commit, destNs);
    std::string subject = r->subject(*commit);
    repoLock.unlock();
    if (!targets)
      return fail("ComparisonError",
                  "Failed to load target state: failed to generate manifest for source 1 of 1: " +
                      targets.error());
    SyncSettings settings;
    auto rules = parseIgnoreRules(json::at(spec, {"ignoreDifferences"}));
    if (!rules) return fail("InvalidSpecError", rules.error());
    settings.ignore = std::move(*rules);
    for (const Json* list : {&json::at(spec, {"syncPolicy", "syncOptions"}),
                             &json::at(app, {"operation", "sync", "syncOptions"})})
      for (const auto& o : *list) settings.options.push_back(o);
    attachRules(*targets, settings.ignore);
    // Each object of a new commit is checked by the API server (a strict dry run) before
    // anything of it is applied: a wrong field stops the whole commit, naming its file.
    std::string checkKey =
        url + "\n" + *commit + "\n" + json::dump(src) + json::dump(settings.options);
    bool checked = false;
    {
      std::lock_guard<std::mutex> lock(stateMu_);
      checked = checked_.count(checkKey) > 0;
    }
    if (!checked) {
      for (const auto& t : *targets) {
        if (settings.has(&t, "Validate=false")) continue;
        auto dry = client_->apply(t.resource, t.ns, t.obj, true, client::Client::DryRun::Strict);
        // A namespace that a sync would create is not the manifest's fault.
        if (!dry && (dry.error().code() == 400 || dry.error().code() == 422))
          return fail("ComparisonError",
                      "Failed to load target state: failed to generate manifest for source 1 of "
                      "1: " +
                          t.file + ": " + t.kind + " " + t.name + ": " + dry.error().message());
      }
      std::lock_guard<std::mutex> lock(stateMu_);
      if (checked_.size() > 256) checked_.clear();
      checked_.insert(checkKey);
    }
    // With Validate=false, fields the server does not know are dropped on write (as by
    // `kubectl apply --validate=false`): what git says is what the server would keep of it, or
    // the app would never be Synced.
    for (auto& t : *targets)
      if (settings.has(&t, "Validate=false"))
        if (auto dry =
                client_->apply(t.resource, t.ns, t.obj, true, client::Client::DryRun::Lenient))
          t.obj = knownFields(t.obj, *dry);
    std::stable_sort(targets->begin(), targets->end(), [](const Target& a, const Target& b) {
      return kindOrder(a.kind) < kindOrder(b.kind);
    });

    // Compare: each desired object with its live one; objects of earlier syncs no longer in git
    // are extraneous (to prune).
    std::map<std::string, const Target*> byKey;
    for (const auto& t : *targets) byKey[t.key()] = &t;
    std::vector<Json> extraneous;
    for (const auto& res : json::at(status, {"resources"})) {
      std::string k = json::str(res, "group") + "/" + json::str(res, "kind") + "/" +
                      json::str(res, "namespace") + "/" + json::str(res, "name");
      if (!byKey.count(k) && !json::boolean(res, "hook")) extraneous.push_back(res);
    }
    auto compare = [&](bool* outOfSync) {
      Json resources = Json::array();
      std::string health = "Healthy", healthMessage;
      int missing = 0;
      for (const auto& t : *targets) {
        if (!t.hook.empty()) continue;  // hooks run with syncs; they are not the app's state
        auto live = client_->get(t.resource, t.ns, t.name);
        bool synced = live && inSync(t, *live);
        Json res = {{"group", t.group}, {"version", t.version},
                    {"kind", t.kind},   {"namespace", t.ns},
                    {"name", t.name},   {"status", synced ? "Synced" : "OutOfSync"}};
        if (!live) {
          res["health"] = {{"status", "Missing"}};
          ++missing;
        } else if (auto h = healthOf(*live)) {
          res["health"] = {{"status", h->status}};
          if (!h->message.empty()) res["health"]["message"] = h->message;
          if (healthRank(h->status) > healthRank(health)) {
            health = h->status;
            healthMessage = h->message;
          }
        }
        if (!synced) *outOfSync = true;
        resources.push_back(res);
      }
      for (const auto& e : extraneous) {
        Json res = e;
        res["status"] = "OutOfSync";
        res["requiresPruning"] = true;
        res.erase("health");
        resources.push_back(res);
        *outOfSync = true;
      }
      size_t managed = std::count_if(targets->begin(), targets->end(),
                                     [](const Target& t) { return t.hook.empty(); });
      if (managed > 0 && missing == static_cast<int>(managed)) health = "Missing";
      Json h = {{"status", health}};
      if (!healthMessage.empty()) h["message"] = healthMessage;
      return std::pair{resources, h};
    };
    bool outOfSync = false;
    auto [resources, health] = compare(&outOfSync);

    // Automated sync: a new revision, or drift with selfHeal.
    const Json* automated = json::find(spec, {"syncPolicy", "automated"});
    bool autoSync = automated && automated->is_object() &&
                    !(automated->contains("enabled") && (*automated)["enabled"] == false);
    bool prune = autoSync && json::boolean(*automated, "prune");
    bool selfHeal = autoSync && json::boolean(*automated, "selfHeal");
    bool allowEmpty = autoSync && json::boolean(*automated, "allowEmpty");
    std::string lastSynced = json::getString(status, {"operationState", "syncResult", "revision"});
    std::string lastPhase = json::getString(status, {"operationState", "phase"});
    // A failed automated sync is retried with back-off (phase Running meanwhile); once the
    // retries are spent, the commit is not synced again, with or without selfHeal (a new commit
    // or a manual sync is the way on), as in Argo CD.
    bool retrying = lastPhase == "Running" && lastSynced == *commit;
    bool retryDue = false;
    if (retrying) {
      std::lock_guard<std::mutex> lock(stateMu_);
      auto it = retries_.find(key);
      if (it == retries_.end() ||
          it->second.revision != *commit)  // a retry that outlived a restart
        it = retries_
                 .insert_or_assign(key, RetryState{*commit,
                                                   static_cast<int>(json::integer(
                                                       status["operationState"], "retryCount")),
                                                   {}})
                 .first;
      retryDue = std::chrono::steady_clock::now() >= it->second.nextAt;
    }
    bool gaveUp = lastPhase == "Failed" && lastSynced == *commit;
    bool onlyPruning =
        extraneous.size() > 0 && std::all_of(resources.begin(), resources.end(), [](const Json& r) {
          return json::str(r, "status") == "Synced" || json::boolean(r, "requiresPruning");
        });
    if (operation) {
      Json by = json::at(app, {"operation", "initiatedBy"});
      sync(app, settings, *targets, extraneous, *commit, json::boolean(*operation, "prune"),
           subject, &status, now, by.is_object() ? by : Json{{"username", "admin"}});
      operationDone = true;
      extraneous.clear();
      outOfSync = false;
      std::tie(resources, health) = compare(&outOfSync);
    } else if (autoSync && outOfSync && *commit == lastSynced &&
               (gaveUp || (retrying && !retryDue))) {
      if (gaveUp)
        conditions.push_back(
            {{"type", "SyncError"},
             {"message", "Failed last sync attempt to " + *commit + ": " +
                             json::getString(status, {"operationState", "message"})},
             {"lastTransitionTime", now}});
    } else if (autoSync && outOfSync && (*commit != lastSynced || selfHeal || retryDue) &&
               !(onlyPruning && !prune)) {
      if (prune && !allowEmpty && targets->empty() && !extraneous.empty()) {
        conditions.push_back({{"type", "SyncError"},
                              {"message", "auto-sync will wipe out all resources"},
                              {"lastTransitionTime", now}});
      } else {
        sync(app, settings, *targets, extraneous, *commit, prune, subject, &status, now,
             {{"automated", true}});
        retryIfFailed(key, spec, *commit, &status);
        extraneous.clear();
        outOfSync = false;
        std::tie(resources, health) = compare(&outOfSync);
      }
    }
    status["sync"] = {{"status", outOfSync ? "OutOfSync" : "Synced"},
                      {"revision", *commit},
                      {"comparedTo", {{"source", src}, {"destination", dest}}}};
    status["health"] = health;
    status["resources"] = resources;
    status["sourceType"] = targets->empty() ? "Directory" : sourceTypeOf(targets->front().file);
    writeStatus(app, previous, status, conditions, now, refresh, operationDone);
  }

  void sync(const Json& app, const SyncSettings& settings, const std::vector<Target>& targets,
            const std::vector<Json>& extraneous, const std::string& commit, bool prune,
            const std::string& subject, Json* status, const std::string& startedAt,
            const Json& initiatedBy) {
    const Json& spec = json::at(app, {"spec"});
    std::string destNs = json::getString(spec, {"destination", "namespace"});
    bool createNamespace = settings.has(nullptr, "CreateNamespace=true");
    Json results = Json::array();
    bool failed = false;
    if (createNamespace && !destNs.empty() &&
        !client_->get(client::resources::kNamespaces, "", destNs)) {
      auto made = client_->create(
          client::resources::kNamespaces, "",
          {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", destNs}}}});
      if (!made && made.error().code() != 409) failed = true;
    }
    // Argo CD's order: PreSync hooks, then the resources with the Sync hooks, then PostSync
    // hooks; within a phase by wave, then kind. With hooks or more than one wave, each wave waits
    // for the previous one to be healthy (hooks: to succeed); a failure stops the sync and runs
    // the SyncFail hooks.
    std::set<int> waves;
    bool hooks = false;
    for (const auto& t : targets) {
      if (t.hook == "Skip") continue;
      hooks = hooks || !t.hook.empty();
      waves.insert(t.wave);
    }
    bool multiStep = hooks || waves.size() > 1;
    auto phaseOf = [](const Target& t) { return t.hook.empty() ? std::string("Sync") : t.hook; };
    auto runPhase = [&](const std::string& phase) {
      std::map<int, std::vector<const Target*>> byWave;
      for (const auto& t : targets)
        if (phaseOf(t) == phase) byWave[t.wave].push_back(&t);
      for (auto& [wave, tasks] : byWave) {
        std::vector<std::pair<const Target*, size_t>> started;  // and its result's index
        for (const Target* t : tasks) {
          Json res = {{"group", t->group},  {"version", t->version}, {"kind", t->kind},
                      {"namespace", t->ns}, {"name", t->name},       {"syncPhase", phase}};
          if (!t->hook.empty()) res["hookType"] = t->hook;
          auto live = client_->get(t->resource, t->ns, t->name);
          if (!t->hook.empty() && live &&
              t->deletePolicy().find("BeforeHookCreation") != std::string::npos) {
            removeAndWait(*t);  // a hook runs anew each sync
            live = Unexpected(api::ApiError(404, "NotFound", ""));
          }
          if (t->hook.empty() && live && inSync(*t, *live)) {
            if (multiStep) started.emplace_back(t, SIZE_MAX);  // unchanged, still waited for
            continue;
          }
          auto applied = write(*t, live ? &*live : nullptr, settings,
                               json::getString(app, {"metadata", "name"}));
          if (applied) {
            res["status"] = "Synced";
            res["message"] =
                strings::toLower(t->kind) + "/" + t->name + (live ? " configured" : " created");
            if (!t->hook.empty()) res["hookPhase"] = "Running";
            started.emplace_back(t, results.size());
          } else {
            res["status"] = "SyncFailed";
            res["message"] = t->file + ": " + applied.error().message();
            failed = true;
          }
          results.push_back(res);
        }
        if (failed) return false;
        if (!multiStep) continue;
        progress(app, results, commit, startedAt,
                 "waiting for " + phase + " wave " + std::to_string(wave) + " to be healthy");
        for (auto& [t, index] : started) {
          std::string outcome = waitHealthy(*t);
          if (index != SIZE_MAX && !t->hook.empty()) {
            results[index]["hookPhase"] = outcome == "Healthy" ? "Succeeded" : "Failed";
            std::string policy = t->deletePolicy();
            if ((outcome == "Healthy" && policy.find("HookSucceeded") != std::string::npos) ||
                (outcome != "Healthy" && policy.find("HookFailed") != std::string::npos))
              removeAndWait(*t);
          }
          if (outcome != "Healthy") {
            if (index != SIZE_MAX) {
              results[index]["status"] = "SyncFailed";
              results[index]["message"] = t->kind + "/" + t->name + ": " + outcome;
            }
            failed = true;
          }
        }
        if (failed) return false;
      }
      return true;
    };
    // Pruning comes after the Sync phase's waves (before PostSync hooks), or last of all with
    // PruneLast; objects annotated Prune=false stay, and nothing is pruned after a failure.
    auto pruneExtraneous = [&] {
      std::string policy = "Foreground";
      for (const char* p : {"background", "orphan"})
        if (settings.has(nullptr, std::string("PrunePropagationPolicy=") + p))
          policy = std::string(1, static_cast<char>(toupper(p[0]))) + (p + 1);
      for (const auto& e : extraneous) {
        Json res = e;
        res.erase("requiresPruning");
        res.erase("health");
        res["syncPhase"] = "Sync";
        std::string ns = json::str(e, "namespace"), name = json::str(e, "name");
        auto r = resourceOf(e);
        client::Result live = Unexpected(api::ApiError(404, "NotFound", ""));
        if (r) live = client_->get(*r, ns, name);
        if (!prune || (live && annotatedOption(*live, "Prune=false"))) {
          res["status"] = "PruneSkipped";
          res["message"] = prune ? "ignored (Prune=false)" : "ignored (requires pruning)";
        } else if (r) {
          client::DeleteOptions d;
          d.propagationPolicy = policy;
          auto removed = client_->remove(*r, ns, name, d);
          bool ok = removed || removed.error().code() == 404;
          res["status"] = ok ? "Pruned" : "SyncFailed";
          res["message"] = ok ? "pruned" : removed.error().message();
          failed = failed || !ok;
        }
        results.push_back(res);
      }
      return !failed;
    };
    bool pruneLast = settings.has(nullptr, "PruneLast=true");
    bool ok = !failed && runPhase("PreSync") && runPhase("Sync");
    if (ok && !pruneLast) ok = pruneExtraneous();
    if (ok) ok = runPhase("PostSync");
    if (ok && pruneLast) ok = pruneExtraneous();
    if (!ok) {
      runPhase("SyncFail");
      failed = true;
    }
    std::string reason;
    for (const auto& res : results)
      if (reason.empty() && json::str(res, "status") == "SyncFailed")
        reason = json::str(res, "message");
    std::string finished = timefmt::rfc3339(std::chrono::system_clock::now());
    Json source = json::at(spec, {"source"});
    (*status)["operationState"] = {
        {"operation",
         {{"sync", {{"revision", commit}, {"prune", prune}}},
          {"initiatedBy", initiatedBy},
          {"retry", Json::object()}}},
        {"phase", failed ? "Failed" : "Succeeded"},
        {"message", failed ? "one or more objects failed to apply, reason: " + reason
                           : "successfully synced (all tasks run)"},
        {"syncResult", {{"revision", commit}, {"resources", results}, {"source", source}}},
        {"startedAt", startedAt},
        {"finishedAt", finished}};
    if (failed) return;
    Json history = json::at(*status, {"history"}).is_array() ? (*status)["history"] : Json::array();
    int64_t id = history.empty() ? 0 : json::integer(history.back(), "id") + 1;
    history.push_back({{"id", id},
                       {"revision", commit},
                       {"deployStartedAt", startedAt},
                       {"deployedAt", finished},
                       {"source", source},
                       {"initiatedBy", initiatedBy}});
    int64_t limit = json::integer(spec, "revisionHistoryLimit", 10);
    while (static_cast<int64_t>(history.size()) > std::max<int64_t>(limit, 1))
      history.erase(history.begin());
    (*status)["history"] = history;
    PODIUM_LOG(Info) << "gitops: " << json::getString(app, {"metadata", "namespace"}) << "/"
                     << json::getString(app, {"metadata", "name"}) << " synced to "
                     << commit.substr(0, 7) << " (" << subject << "), " << results.size()
                     << " changes";
  }

  // Writes the status when something in it changed (reconciledAt alone is refreshed at most
  // once a minute, so a quiet app costs no writes).
  void writeStatus(const Json& app, const Json& previous, Json status, const Json& conditions,
                   const std::string& now, bool refresh, bool operationDone = false) {
    std::string ns = json::getString(app, {"metadata", "namespace"});
    std::string name = json::getString(app, {"metadata", "name"});
    // The refresh annotation and a done operation come off after the status is written (which
    // is checked against the version this reconcile read).
    Json done = Json::object();
    if (refresh) done["metadata"]["annotations"][kRefresh] = nullptr;
    if (operationDone) done["operation"] = nullptr;
    struct Unmark {
      AppController* c;
      Json patch;
      std::string ns, name;
      ~Unmark() {
        if (patch.empty()) return;
        auto r = c->client_->patch(kApplications, ns, name, patch);
        if (!r) PODIUM_LOG(Warn) << "gitops: " << name << ": " << r.error().message();
      }
    } unmark{this, done, ns, name};
    status["conditions"] = conditions;
    if (conditions.empty()) status.erase("conditions");
    Json a = previous, b = status;
    a.erase("reconciledAt");
    b.erase("reconciledAt");
    for (Json* s : {&a, &b})
      if (s->contains("conditions"))
        for (auto& c : (*s)["conditions"]) c.erase("lastTransitionTime");
    auto last = timefmt::parseRfc3339(json::str(previous, "reconciledAt"));
    bool stale = !last || std::chrono::system_clock::now() - *last > std::chrono::seconds(60);
    if (a == b && !stale && !refresh && !operationDone) return;
    if (a == b && previous.contains("conditions")) status["conditions"] = previous["conditions"];
    status["reconciledAt"] = now;
    Json obj = app;
    obj["status"] = status;
    auto r = client_->update(kApplications, ns, obj, "status");
    if (!r && r.error().code() == 409) {
      // Changed meanwhile (a sync's progress, an edit): this status (a sync's history among it)
      // still goes on the newest version; a changed spec is looked at again next.
      if (auto fresh = client_->get(kApplications, ns, name)) {
        (*fresh)["status"] = status;
        r = client_->update(kApplications, ns, *fresh, "status");
      }
    }
    if (!r && r.error().code() != 409 && r.error().code() != 404)
      PODIUM_LOG(Warn) << "gitops: status of " << json::getString(app, {"metadata", "name"}) << ": "
                       << r.error().message();
  }

  api::HttpResponse serve(const api::HttpRequest& req) override {
    if (req.path == "/api/webhook" || req.path == "/api/webhook/") return webhook(req);
    std::vector<std::string> parts;
    for (auto& p : strings::split(req.path, '/'))
      if (!p.empty()) parts.push_back(p);
    if (parts.size() == 5 && parts[4] == "managed-resources" && req.method == "GET") {
      auto ns = req.query.find("appNamespace");
      try {
        return managedResources(ns == req.query.end() ? kArgoNamespace : ns->second, parts[3]);
      } catch (const std::exception& e) {  // an app's odd content must not take the server down
        PODIUM_LOG(Error) << "gitops: managed-resources of " << parts[3] << ": " << e.what();
        return jsonReply(500, argoError(13, e.what()));
      }
    }
    return jsonReply(404, argoError(5, "Not Found: " + req.method + " " + req.path));
  }

 private:
  api::HttpResponse managedResources(const std::string& ns, const std::string& name) {
    client::ObjectPtr app = apps_.get(ns, name);
    if (!app)
      return jsonReply(
          404, argoError(5, "applications.argoproj.io \"" + name + "\" not found in " + ns));
    const Json& src = json::at(*app, {"spec", "source"});
    std::string url = json::str(src, "repoURL");
    std::string destNs = json::getString(*app, {"spec", "destination", "namespace"});
    // What the app was last compared with, else its target revision now.
    std::string revision = json::getString(*app, {"status", "sync", "revision"});
    if (revision.empty()) revision = json::str(src, "targetRevision", "HEAD");
    std::unique_lock<std::mutex> repoLock(repoMu_);
    std::string error;
    GitRepo* r = repo(url, &error);
    if (!r) return jsonReply(400, argoError(3, error));
    auto commit = r->resolve(revision);
    if (!commit && r->fetch(credentialsFor(url))) commit = r->resolve(revision);
    if (!commit) return jsonReply(400, argoError(3, commit.error()));
    auto targets = render(*r, *app, *commit, destNs);
    repoLock.unlock();
    if (!targets) return jsonReply(400, argoError(3, targets.error()));
    auto rules = parseIgnoreRules(json::at(*app, {"spec", "ignoreDifferences"}));
    if (!rules) return jsonReply(400, argoError(3, rules.error()));
    attachRules(*targets, *rules);
    Json items = Json::array();
    for (const auto& t : *targets) {
      if (!t.hook.empty()) continue;
      auto live = client_->get(t.resource, t.ns, t.name);
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

  api::HttpResponse webhook(const api::HttpRequest& req) {
    std::string provider =
        !req.header("x-github-event").empty()                                         ? "github"
        : !req.header("x-gitlab-event").empty()                                       ? "gitlab"
        : !req.header("x-gitea-event").empty() || !req.header("x-gogs-event").empty() ? "gogs"
                                                                                      : "";
    if (provider.empty())
      return jsonReply(
          400, {{"message", "unknown webhook: expected a GitHub, GitLab or Gitea push event"}});
    std::string secret;
    if (auto s = client_->get(client::resources::kSecrets, kArgoNamespace, "argocd-secret"))
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
      queue_.add(client::Informer::keyOf(*a));
      refreshed.push_back(json::getString(*a, {"metadata", "namespace"}) + "/" +
                          json::getString(*a, {"metadata", "name"}));
    }
    return jsonReply(200, {{"refreshed", refreshed}});
  }

  client::ClientPtr client_;
  GitOpsOptions opts_;
  client::Informer apps_;
  client::WorkQueue queue_;
  std::mutex repoMu_;                                          // guards the two below
  std::map<std::string, std::unique_ptr<GitRepo>> repos_;      // repoMu_
  std::map<std::string, std::vector<ManifestFile>> rendered_;  // repoMu_
  std::mutex stateMu_;                                         // guards the two below
  std::set<std::string> checked_;  // commits whose objects passed the dry run
  struct RetryState {
    std::string revision;
    int count = 0;
    std::chrono::steady_clock::time_point nextAt;
  };
  std::map<std::string, RetryState> retries_;  // apps whose automated sync failed
  std::vector<std::thread> workers_;
  std::thread poller_;
  std::atomic<bool> stopped_{false};
};

std::unique_ptr<GitOps> startGitOps(api::Storage& storage, const GitOpsOptions& options) {
  return std::make_unique<AppController>(storage, options);
}

}  // namespace podium::gitops
