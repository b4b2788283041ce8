#include "repo.h"

#include <fnmatch.h>
#include <openssl/sha.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>

namespace podium::gitops {

namespace {

std::string lastError(const std::string& what) {
  const git_error* e = git_error_last();
  return what + ": " + (e && e->message ? e->message : "unknown error");
}

void initOnce() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

std::string hexSha1(const std::string& s) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  static const char* h = "0123456789abcdef";
  std::string out;
  for (unsigned char c : d) out += std::string{h[c >> 4], h[c & 15]};
  return out;
}

bool manifestName(const std::string& name) {
  for (const char* ext : {".yaml", ".yml", ".json"}) {
    size_t n = strlen(ext);
    if (name.size() > n && name.compare(name.size() - n, n, ext) == 0) return true;
  }
  return false;
}

// Argo CD's include/exclude: a glob, or "{a,b}" alternatives, matched against the file's path
// under the app's directory.
bool globMatch(const std::string& pattern, const std::string& path) {
  if (pattern.size() > 2 && pattern.front() == '{' && pattern.back() == '}') {
    std::string inner = pattern.substr(1, pattern.size() - 2);
    size_t start = 0;
    while (start <= inner.size()) {
      size_t comma = inner.find(',', start);
      std::string alt =
          inner.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (globMatch(alt, path)) return true;
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return false;
  }
  std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  return fnmatch(pattern.c_str(), path.c_str(), 0) == 0 ||
         fnmatch(pattern.c_str(), base.c_str(), 0) == 0;
}

}  // namespace

std::string remoteFor(const std::string& url) {
  if (url.rfind("file://", 0) == 0) return url.substr(7);
  return url;
}

Expected<std::unique_ptr<GitRepo>, std::string> GitRepo::open(const std::string& url,
                                                              const std::string& cacheDir) {
  initOnce();
  namespace fs = std::filesystem;
  std::unique_ptr<GitRepo> r(new GitRepo());
  r->url_ = url;
  std::string dir = cacheDir + "/" + hexSha1(url) + ".git";
  std::error_code ec;
  fs::create_directories(cacheDir, ec);
  if (git_repository_open_bare(&r->repo_, dir.c_str()) == 0) return r;
  if (git_repository_init(&r->repo_, dir.c_str(), 1) != 0)
    return Unexpected(lastError("cannot make a mirror in " + dir));
  git_remote* remote = nullptr;
  if (git_remote_create_with_fetchspec(&remote, r->repo_, "origin", remoteFor(url).c_str(),
                                       "+refs/heads/*:refs/heads/*") != 0)
    return Unexpected(lastError("bad repository URL " + url));
  git_remote_add_fetch(r->repo_, "origin", "+refs/tags/*:refs/tags/*");
  git_remote_free(remote);
  return r;
}

GitRepo::~GitRepo() {
  if (repo_) git_repository_free(repo_);
}

Expected<void, std::string> GitRepo::fetch() {
  git_remote* remote = nullptr;
  if (git_remote_lookup(&remote, repo_, "origin") != 0) return Unexpected(lastError("origin"));
  git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
  opts.prune = GIT_FETCH_PRUNE;
  int rc = git_remote_fetch(remote, nullptr, &opts, nullptr);
  if (rc == 0) {
    // The remote's default branch becomes the mirror's HEAD (what "HEAD" resolves to).
    git_buf head = GIT_BUF_INIT;
    if (git_remote_default_branch(&head, remote) == 0) {
      git_repository_set_head(repo_, head.ptr);
      git_buf_dispose(&head);
    }
  }
  git_remote_free(remote);
  if (rc != 0) return Unexpected(lastError("fetch " + url_));
  return {};
}

Expected<std::string, std::string> GitRepo::resolve(const std::string& revision) {
  std::vector<std::string> candidates;
  if (revision.empty() || revision == "HEAD") {
    candidates = {"HEAD"};
  } else {
    candidates = {"refs/heads/" + revision, "refs/tags/" + revision, revision};
  }
  for (const auto& c : candidates) {
    git_object* obj = nullptr;
    if (git_revparse_single(&obj, repo_, (c + "^{commit}").c_str()) != 0) continue;
    char sha[GIT_OID_HEXSZ + 1];
    git_oid_tostr(sha, sizeof sha, git_object_id(obj));
    git_object_free(obj);
    return std::string(sha);
  }
  return Unexpected("unable to resolve '" + revision + "' to a commit SHA in " + url_);
}

namespace {

// The commit's root tree, or nullptr.
git_tree* rootTree(git_repository* repo, const std::string& commit) {
  git_oid oid;
  git_commit* c = nullptr;
  if (git_oid_fromstr(&oid, commit.c_str()) != 0 || git_commit_lookup(&c, repo, &oid) != 0)
    return nullptr;
  git_tree* t = nullptr;
  git_commit_tree(&t, c);
  git_commit_free(c);
  return t;
}

}  // namespace

bool GitRepo::hasFile(const std::string& commit, const std::string& path) {
  git_tree* root = rootTree(repo_, commit);
  if (!root) return false;
  git_tree_entry* e = nullptr;
  bool found = git_tree_entry_bypath(&e, root, path.c_str()) == 0 &&
               git_tree_entry_type(e) == GIT_OBJECT_BLOB;
  if (e) git_tree_entry_free(e);
  git_tree_free(root);
  return found;
}

Expected<void, std::string> GitRepo::checkout(const std::string& commit, const std::string& dir) {
  git_tree* root = rootTree(repo_, commit);
  if (!root) return Unexpected(lastError("commit " + commit));
  std::string error;
  std::function<void(git_tree*, const std::filesystem::path&)> write =
      [&](git_tree* t, const std::filesystem::path& to) {
        std::error_code ec;
        std::filesystem::create_directories(to, ec);
        for (size_t i = 0; i < git_tree_entrycount(t) && error.empty(); ++i) {
          const git_tree_entry* e = git_tree_entry_byindex(t, i);
          std::string name = git_tree_entry_name(e);
          if (name == ".." || name == "." || name.find('/') != std::string::npos) continue;
          if (git_tree_entry_type(e) == GIT_OBJECT_TREE) {
            git_tree* child = nullptr;
            if (git_tree_lookup(&child, repo_, git_tree_entry_id(e)) != 0) continue;
            write(child, to / name);
            git_tree_free(child);
          } else if (git_tree_entry_type(e) == GIT_OBJECT_BLOB &&
                     git_tree_entry_filemode(e) != GIT_FILEMODE_LINK) {
            git_blob* blob = nullptr;
            if (git_blob_lookup(&blob, repo_, git_tree_entry_id(e)) != 0) continue;
            std::ofstream f(to / name, std::ios::binary);
            f.write(static_cast<const char*>(git_blob_rawcontent(blob)),
                    static_cast<std::streamsize>(git_blob_rawsize(blob)));
            if (!f) error = "cannot write " + (to / name).string();
            git_blob_free(blob);
          }
        }
      };
  write(root, dir);
  git_tree_free(root);
  if (!error.empty()) return Unexpected(error);
  return {};
}

std::string GitRepo::subject(const std::string& commit) {
  git_oid oid;
  git_commit* c = nullptr;
  if (git_oid_fromstr(&oid, commit.c_str()) != 0 || git_commit_lookup(&c, repo_, &oid) != 0)
    return "";
  std::string s = git_commit_summary(c) ? git_commit_summary(c) : "";
  git_commit_free(c);
  return s;
}

Expected<std::vector<ManifestFile>, std::string> GitRepo::files(const std::string& commit,
                                                                const std::string& path,
                                                                const DirectoryOptions& o) {
  git_oid oid;
  git_commit* c = nullptr;
  if (git_oid_fromstr(&oid, commit.c_str()) != 0 || git_commit_lookup(&c, repo_, &oid) != 0)
    return Unexpected(lastError("commit " + commit));
  git_tree* root = nullptr;
  int rc = git_commit_tree(&root, c);
  git_commit_free(c);
  if (rc != 0) return Unexpected(lastError("tree of " + commit));
  std::unique_ptr<git_tree, void (*)(git_tree*)> rootHolder(root, git_tree_free);
  std::string dir = path;
  while (!dir.empty() && dir.back() == '/') dir.pop_back();
  while (dir.rfind("./", 0) == 0) dir = dir.substr(2);
  if (dir == ".") dir.clear();
  git_tree* tree = root;
  std::unique_ptr<git_tree, void (*)(git_tree*)> sub(nullptr, git_tree_free);
  if (!dir.empty()) {
    git_tree_entry* e = nullptr;
    if (git_tree_entry_bypath(&e, root, dir.c_str()) != 0 ||
        git_tree_entry_type(e) != GIT_OBJECT_TREE) {
      if (e) git_tree_entry_free(e);
      return Unexpected("app path does not exist: " + path);
    }
    git_tree* t = nullptr;
    git_tree_lookup(&t, repo_, git_tree_entry_id(e));
    git_tree_entry_free(e);
    sub.reset(t);
    tree = t;
  }
  std::vector<ManifestFile> out;
  std::string error;
  std::function<void(git_tree*, const std::string&)> walk = [&](git_tree* t,
                                                                const std::string& rel) {
    size_t n = git_tree_entrycount(t);
    for (size_t i = 0; i < n && error.empty(); ++i) {
      const git_tree_entry* e = git_tree_entry_byindex(t, i);
      std::string name = git_tree_entry_name(e);
      std::string relPath = rel.empty() ? name : rel + "/" + name;
      if (git_tree_entry_type(e) == GIT_OBJECT_TREE) {
        if (!o.recurse) continue;
        git_tree* child = nullptr;
        if (git_tree_lookup(&child, repo_, git_tree_entry_id(e)) != 0) continue;
        walk(child, relPath);
        git_tree_free(child);
        continue;
      }
      if (git_tree_entry_type(e) != GIT_OBJECT_BLOB || !manifestName(name)) continue;
      if (!o.include.empty() && !globMatch(o.include, relPath)) continue;
      if (!o.exclude.empty() && globMatch(o.exclude, relPath)) continue;
      git_blob* blob = nullptr;
      if (git_blob_lookup(&blob, repo_, git_tree_entry_id(e)) != 0) {
        error = lastError(relPath);
        return;
      }
      out.push_back({dir.empty() ? relPath : dir + "/" + relPath,
                     std::string(static_cast<const char*>(git_blob_rawcontent(blob)),
                                 static_cast<size_t>(git_blob_rawsize(blob)))});
      git_blob_free(blob);
    }
  };
  walk(tree, "");
  if (!error.empty()) return Unexpected(error);
  return out;
}

}  // namespace podium::gitops
