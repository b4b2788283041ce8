#include "sources.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "podium/common/strings.h"

namespace podium::gitops {

namespace {

// `kubectl kustomize DIR`: its YAML, or its error output.
bool onPath(const std::string& tool) {
  const char* path = std::getenv("PATH");
  for (const auto& d : strings::split(path ? path : "/usr/bin:/bin", ':'))
    if (!d.empty() && access((d + "/" + tool).c_str(), X_OK) == 0) return true;
  return false;
}

std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a shell command line: its standard output, or its error output when it fails.
Expected<std::string, std::string> runTool(const std::string& cmdline, const std::string& errFile) {
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

Expected<std::string, std::string> kustomize(const std::string& dir) {
  return runTool("kubectl kustomize " + shellQuote(dir), dir + "/.podium-kustomize.err");
}

}  // namespace

Sources::Sources(client::Client& client, std::string dataDir)
    : client_(client), dataDir_(std::move(dataDir)) {}

GitRepo* Sources::repo(const std::string& url, std::string* error) {
  auto it = repos_.find(url);
  if (it != repos_.end()) return it->second.get();
  auto r = GitRepo::open(url, dataDir_ + "/gitops/repos");
  if (!r) {
    *error = r.error();
    return nullptr;
  }
  return (repos_[url] = std::move(*r)).get();
}

Expected<Sources::Loaded, std::string> Sources::load(const Json& app, const std::string& revision) {
  std::lock_guard<std::mutex> lock(mu_);
  return loadLocked(app, revision, true);
}

Expected<Sources::Loaded, std::string> Sources::loadCached(const Json& app,
                                                           const std::string& revision) {
  std::lock_guard<std::mutex> lock(mu_);
  return loadLocked(app, revision, false);
}

Expected<std::string, std::string> Sources::remoteCommit(const Json& app) {
  return remoteCommit(json::getString(app, {"spec", "source", "repoURL"}),
                      json::getString(app, {"spec", "source", "targetRevision"}));
}

Expected<std::string, std::string> Sources::remoteCommit(const std::string& url,
                                                         const std::string& revision) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string error;
  GitRepo* r = repo(url, &error);
  if (!r) return Unexpected(error);
  return r->remoteCommit(revision, credentialsFor(url));
}

Expected<GitRepo*, std::string> Sources::fetched(const std::string& url) {
  std::string error;
  GitRepo* r = repo(url, &error);
  if (!r) return Unexpected(error);
  if (auto f = r->fetch(credentialsFor(url)); !f) return Unexpected(f.error());
  return r;
}

Expected<std::string, std::string> Sources::checkout(const std::string& url,
                                                     const std::string& commit,
                                                     const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string error;
  GitRepo* r = repo(url, &error);
  if (!r) return Unexpected(error);
  if (!r->resolve(commit)) {
    auto f = fetched(url);
    if (!f) return Unexpected(f.error());
  }
  auto c = r->resolve(commit);
  if (!c) return Unexpected(c.error());
  if (auto w = r->checkout(*c, dir); !w) return Unexpected(w.error());
  return r->subject(*c);
}

Expected<std::string, std::string> Sources::readFile(const std::string& url,
                                                     const std::string& branch,
                                                     const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto r = fetched(url);
  if (!r) return Unexpected(r.error());
  auto tip = (*r)->resolve(branch);
  if (!tip) return Unexpected(tip.error());
  return (*r)->readFile(*tip, path);
}

Expected<std::string, std::string> Sources::commitEdit(const std::string& url,
                                                       const std::string& branch,
                                                       const std::string& path, const Edit& edit,
                                                       const GitRepo::Author& author,
                                                       const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string why;
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto r = fetched(url);
    if (!r) return Unexpected(r.error());
    auto tip = (*r)->resolve(branch);
    if (!tip) return Unexpected(tip.error());
    auto content = (*r)->readFile(*tip, path);
    if (!content) return Unexpected(content.error());
    auto edited = edit(*content);
    if (!edited) return Unexpected(edited.error());
    if (*edited == *content) return std::string();
    auto c = (*r)->commitFile(*tip, path, *edited, author, message);
    if (!c) return Unexpected(c.error());
    bool moved = false;
    auto pushed = (*r)->push(*c, branch, credentialsFor(url), &moved);
    if (pushed) return *c;
    if (!moved) return Unexpected(pushed.error());
    why = pushed.error();
  }
  return Unexpected(branch + " kept moving while the change was pushed: " + why);
}

Expected<Sources::Loaded, std::string> Sources::loadLocked(const Json& app,
                                                           const std::string& revision,
                                                           bool fetchFirst) {
  const std::string prefix = "Failed to load target state: ";
  std::string url = json::getString(app, {"spec", "source", "repoURL"});
  std::string error;
  GitRepo* r = repo(url, &error);
  if (!r) return Unexpected(prefix + error);
  // The mirror is fetched only when the remote's revision is not what it already has (a ref
  // check costs one ls-remote; a refresh of an unchanged app fetches nothing).
  RepoCredentials creds = credentialsFor(url);
  auto commit = r->resolve(revision);
  if (fetchFirst && commit) {
    auto remote = r->remoteCommit(revision, creds);
    if (!remote || *remote != *commit) commit = Unexpected(std::string());
  }
  if (!commit) {
    if (auto f = r->fetch(creds); !f)
      return Unexpected(prefix +
                        "failed to generate manifest for source 1 of 1: rpc error: code = "
                        "Unknown desc = repository not accessible: " +
                        f.error());
    commit = r->resolve(revision);
  }
  if (!commit) return Unexpected(prefix + commit.error());
  auto targets = render(*r, app, *commit);
  if (!targets)
    return Unexpected(prefix + "failed to generate manifest for source 1 of 1: " + targets.error());
  return Loaded{*commit, r->subject(*commit), std::move(*targets)};
}

RepoCredentials Sources::credentialsFor(const std::string& url) {
  RepoCredentials c;
  if (remoteFor(url).rfind('/', 0) == 0) return c;  // a local path: nothing to look up
  client::ListOptions o;
  o.labelSelector = "argocd.argoproj.io/secret-type in (repository,repo-creds)";
  const Json* best = nullptr;
  size_t bestPrefix = 0;
  auto secrets = client_.list(client::resources::kSecrets, kArgoNamespace, o);
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
  if (auto cm = client_.get(client::resources::kConfigMaps, kArgoNamespace, "argocd-tls-certs-cm"))
    c.tlsCerts = json::getString(*cm, {"data", repoHost(url).host});
  if (auto cm =
          client_.get(client::resources::kConfigMaps, kArgoNamespace, "argocd-ssh-known-hosts-cm"))
    c.knownHosts = json::getString(*cm, {"data", "ssh_known_hosts"});
  return c;
}

Expected<std::vector<ManifestFile>, std::string> Sources::manifests(GitRepo& repo, const Json& app,
                                                                    const std::string& commit) {
  const Json& src = json::at(app, {"spec", "source"});
  std::string path = json::str(src, "path");
  std::string release = json::getString(src, {"helm", "releaseName"});
  if (release.empty()) release = json::getString(app, {"metadata", "name"});
  std::string destNs = json::getString(app, {"spec", "destination", "namespace"});
  std::string cacheKey = json::str(src, "repoURL") + "\n" + commit + "\n" + json::dump(src) + "\n" +
                         release + "\n" + destNs;
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
    std::string work = dataDir_ + "/gitops/checkouts/" + commit;
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

// A Helm chart (a directory with Chart.yaml) through `helm template`, as Argo CD renders
// one: spec.source.helm's releaseName (default: the app's name), valueFiles (relative to the
// chart), values / valuesObject, parameters (--set, --set-string with forceString), skipCrds,
// and the destination namespace.
Expected<std::string, std::string> Sources::helmTemplate(GitRepo& repo, const std::string& commit,
                                                         const std::string& dir, const Json& src,
                                                         const std::string& release,
                                                         const std::string& ns) {
  if (!onPath("helm"))
    return Unexpected(std::string(
        "a Helm chart, and helm is not installed on the server (install helm 3 on its PATH, "
        "or render the chart into plain manifests in git)"));
  std::string work = dataDir_ + "/gitops/checkouts/" + commit + "-helm";
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

Expected<TargetList, std::string> Sources::render(GitRepo& repo, const Json& app,
                                                  const std::string& commit) {
  // What a commit renders to is kept: a refresh of an unchanged app parses nothing. (Failures
  // are not kept: a kind unknown now may be served once its CRD is applied.)
  std::string key = commit + "\n" + json::dump(json::at(app, {"spec", "source"})) + "\n" +
                    json::dump(json::at(app, {"spec", "destination"})) + "\n" +
                    json::getString(app, {"metadata", "name"});
  if (auto it = targets_.find(key); it != targets_.end()) return it->second;
  auto out = parse(repo, app, commit);
  if (!out) return Unexpected(out.error());
  std::stable_sort(out->begin(), out->end(), [](const Target& a, const Target& b) {
    return kindOrder(a.kind) < kindOrder(b.kind);
  });
  if (targets_.size() > 16) targets_.clear();
  TargetList list = std::make_shared<const std::vector<Target>>(std::move(*out));
  targets_[key] = list;
  return list;
}

Expected<std::vector<Target>, std::string> Sources::parse(GitRepo& repo, const Json& app,
                                                          const std::string& commit) {
  std::string destNs = json::getString(app, {"spec", "destination", "namespace"});
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
      auto r = client_.resourceFor(apiVersion, t.kind);
      if (!r)
        return Unexpected(f.path + ": the server could not find the requested resource: " +
                          apiVersion + ", Kind=" + t.kind);
      t.resource = *r;
      t.group = groupOf(apiVersion);
      t.version = r->version;
      if (client_.namespaced(*r)) {
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

}  // namespace podium::gitops
