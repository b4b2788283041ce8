#pragma once

// Where an application's desired objects come from: mirrors of its git repository (fetched
// with Argo CD's repository Secrets, CA certificates and ssh host keys from the argocd
// namespace), and its source at a commit rendered into objects — plain YAML directories,
// Kustomize (kubectl kustomize) or Helm (helm template, when installed). Thread-safe: one
// repository mirror is used by one caller at a time.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "app.h"
#include "podium/client/client.h"
#include "repo.h"

namespace podium::gitops {

// Edge-triggered ref checks, shared by the Application controller and the image builder: each
// round, every (repository, revision) is asked once for its commit (git ls-remote), and the keys
// whose commit is new since the last round and not the one they already acted on are returned.
class RefWatch {
 public:
  struct Item {
    std::string key, url, revision;
    std::string done;  // the commit the key last acted on
  };
  template <class Ask>
  std::vector<std::string> moved(const std::vector<Item>& items, Ask ask) {
    std::map<std::pair<std::string, std::string>, std::string> asked;
    std::map<std::string, std::string> seen;
    std::vector<std::string> out;
    for (const auto& it : items) {
      if (it.url.empty()) continue;
      auto ref = std::make_pair(it.url, it.revision);
      if (!asked.count(ref)) asked[ref] = ask(it.url, it.revision);
      const std::string& now = asked[ref];
      seen[it.key] = now;
      auto last = lastSeen_.find(it.key);
      if (!now.empty() && (last == lastSeen_.end() || last->second != now) && now != it.done)
        out.push_back(it.key);
    }
    lastSeen_ = std::move(seen);
    return out;
  }

 private:
  std::map<std::string, std::string> lastSeen_;  // each key's commit, as last asked
};

class Sources {
 public:
  Sources(client::Client& client, std::string dataDir);

  struct Loaded {
    std::string commit;   // the revision resolved
    std::string subject;  // its commit message's first line
    TargetList targets;   // in Helm's install order of kinds (kindOrder), stable
  };
  // Fetches the app's repository, resolves `revision` and renders it: what a reconcile
  // compares. The error is Argo CD's ComparisonError message.
  Expected<Loaded, std::string> load(const Json& app, const std::string& revision);
  // The same from the mirror as it is (fetching only when `revision` is unknown to it): what
  // the managed-resources API shows.
  Expected<Loaded, std::string> loadCached(const Json& app, const std::string& revision);
  // The commit the app's source revision names on its remote now (git ls-remote): cheap, for
  // noticing a push between polls.
  Expected<std::string, std::string> remoteCommit(const Json& app);
  Expected<std::string, std::string> remoteCommit(const std::string& url,
                                                  const std::string& revision);

  // For image builds (image_build.cc), with the same mirrors and credentials:
  // Writes the tree of `commit` (fetched when the mirror lacks it) under `dir`; its subject.
  Expected<std::string, std::string> checkout(const std::string& url, const std::string& commit,
                                              const std::string& dir);
  // The file at `path` on the remote's `branch` now.
  Expected<std::string, std::string> readFile(const std::string& url, const std::string& branch,
                                              const std::string& path);
  // Commits `edit` of the file at `path` on top of `branch` and pushes it; when the branch
  // moved meanwhile, fetches and makes the edit again on top (up to 5 times). The new commit, or
  // "" when the edit changes nothing.
  using Edit = std::function<Expected<std::string, std::string>(const std::string& content)>;
  Expected<std::string, std::string> commitEdit(const std::string& url, const std::string& branch,
                                                const std::string& path, const Edit& edit,
                                                const GitRepo::Author& author,
                                                const std::string& message);

 private:
  Expected<Loaded, std::string> loadLocked(const Json& app, const std::string& revision,
                                           bool fetchFirst);
  GitRepo* repo(const std::string& url, std::string* error);
  // repo(url), fetched.
  Expected<GitRepo*, std::string> fetched(const std::string& url);
  RepoCredentials credentialsFor(const std::string& url);
  Expected<std::vector<ManifestFile>, std::string> manifests(GitRepo& repo, const Json& app,
                                                             const std::string& commit);
  Expected<std::string, std::string> helmTemplate(GitRepo& repo, const std::string& commit,
                                                  const std::string& dir, const Json& src,
                                                  const std::string& release,
                                                  const std::string& ns);
  // The app's objects at `commit` (kept per commit, source and destination).
  Expected<TargetList, std::string> render(GitRepo& repo, const Json& app,
                                           const std::string& commit);
  Expected<std::vector<Target>, std::string> parse(GitRepo& repo, const Json& app,
                                                   const std::string& commit);

  client::Client& client_;
  std::string dataDir_;
  std::mutex mu_;                                              // guards the two below
  std::map<std::string, std::unique_ptr<GitRepo>> repos_;      // by URL
  std::map<std::string, std::vector<ManifestFile>> rendered_;  // by commit and source
  std::map<std::string, TargetList> targets_;                  // render()'s
};

}  // namespace podium::gitops
