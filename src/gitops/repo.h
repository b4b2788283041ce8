#pragma once

// A git repository as Argo CD's repo-server sees it: a bare mirror of the remote in the data
// directory (libgit2; the remote is a local path, file://, http(s):// or ssh:// URL), fetched
// on demand, whose revisions resolve to commits and whose trees give the manifest files.

#include <git2.h>

#include <memory>
#include <string>
#include <vector>

#include "podium/common/expected.h"

namespace podium::gitops {

struct ManifestFile {
  std::string path;  // relative to the repository's root
  std::string content;
};

struct DirectoryOptions {
  bool recurse = false;
  std::string include;  // glob over file names ("" = every .yaml/.yml/.json)
  std::string exclude;
};

// What a fetch may need, from Argo CD's repository Secrets and ConfigMaps.
struct RepoCredentials {
  std::string username, password;  // http(s): basic authentication
  std::string sshPrivateKey;       // ssh: the key itself (never written to disk)
  bool insecure = false;           // accept any server certificate or host key
  std::string tlsCerts;            // PEM certificates trusted for the server (argocd-tls-certs-cm)
  std::string knownHosts;          // ssh known_hosts lines (argocd-ssh-known-hosts-cm)
};

class GitRepo {
 public:
  // The mirror of `url` under `cacheDir` (made on first use).
  static Expected<std::unique_ptr<GitRepo>, std::string> open(const std::string& url,
                                                              const std::string& cacheDir);
  ~GitRepo();
  // Brings the mirror up to date with the remote's branches and tags. Servers are checked
  // (https: the system's CAs and `tlsCerts`; ssh: `knownHosts`) unless `insecure`.
  Expected<void, std::string> fetch(const RepoCredentials& credentials = {});
  // The commit `revision` names on the remote now, asking it for its refs only (git
  // ls-remote: no objects move): "HEAD"/"" (its default branch), a branch or a tag. A commit id
  // is returned as given.
  Expected<std::string, std::string> remoteCommit(const std::string& revision,
                                                  const RepoCredentials& credentials = {});
  // The commit `revision` names: "HEAD" or "" (the remote's default branch), a branch, a tag,
  // or a (possibly abbreviated) commit id.
  Expected<std::string, std::string> resolve(const std::string& revision);
  // The manifest files (.yaml, .yml, .json) under `path` at `commit`, in path order.
  Expected<std::vector<ManifestFile>, std::string> files(const std::string& commit,
                                                         const std::string& path,
                                                         const DirectoryOptions& options);
  // Whether `path` at `commit` is a file.
  bool hasFile(const std::string& commit, const std::string& path);
  // Writes the whole tree of `commit` under `dir` (for tools that read directories: kustomize).
  Expected<void, std::string> checkout(const std::string& commit, const std::string& dir);
  // The first line of the commit's message.
  std::string subject(const std::string& commit);

  // Writing (repo_write.cc), for a bot's commits as Argo CD Image Updater makes them:
  // The file at `path` in `commit`.
  Expected<std::string, std::string> readFile(const std::string& commit, const std::string& path);
  struct Author {
    std::string name, email;
  };
  // A commit on top of `parent` whose tree is the parent's with `path` holding `content` (its
  // file mode kept). No ref moves.
  Expected<std::string, std::string> commitFile(const std::string& parent, const std::string& path,
                                                const std::string& content, const Author& author,
                                                const std::string& message);
  // Moves the remote's `branch` to `commit`, which must descend from what the branch holds
  // there; `*moved` says the push failed because the branch moved on (fetch and redo the change
  // on top). A local remote whose working tree has `branch` checked out is refused, as git's
  // receive.denyCurrentBranch does.
  Expected<void, std::string> push(const std::string& commit, const std::string& branch,
                                   const RepoCredentials& credentials, bool* moved);

 private:
  GitRepo() = default;
  std::string url_;
  git_repository* repo_ = nullptr;
};

// The host and port a repository URL names (https://host:port/..., ssh://user@host:port/...,
// user@host:path); the port is "" when the URL gives none.
struct RepoHost {
  std::string host, port;
};
RepoHost repoHost(const std::string& url);

// "/srv/repo", "file:///srv/repo" -> the local path; other URLs unchanged.
std::string remoteFor(const std::string& repoUrl);

}  // namespace podium::gitops
