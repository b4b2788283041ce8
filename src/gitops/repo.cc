#include "repo.h"

#include "repo_internal.h"

#include <fnmatch.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>

#include "podium/common/strings.h"

namespace podium::gitops {

std::string lastError(const std::string& what) {
  const git_error* e = git_error_last();
  return what + ": " + (e && e->message ? e->message : "unknown error");
}

namespace {

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

RepoHost repoHost(const std::string& url) {
  std::string rest = url;
  bool scpLike = rest.find("://") == std::string::npos;
  if (!scpLike) {
    rest = rest.substr(rest.find("://") + 3);
    rest = rest.substr(0, rest.find('/'));
  } else {
    rest = rest.substr(0, rest.find(':'));  // user@host:path
  }
  rest = rest.substr(rest.rfind('@') == std::string::npos ? 0 : rest.rfind('@') + 1);
  RepoHost h;
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    auto close = rest.find(']');
    h.host = rest.substr(1, close - 1);
    if (close != std::string::npos && close + 1 < rest.size() && rest[close + 1] == ':')
      h.port = rest.substr(close + 2);
    return h;
  }
  auto colon = rest.find(':');
  h.host = rest.substr(0, colon);
  if (colon != std::string::npos) h.port = rest.substr(colon + 1);
  return h;
}

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

namespace {

// Whether a known_hosts host field (comma-separated names, "[host]:port", or OpenSSH's hashed
// "|1|salt|hash") names `host` on `port`.
bool knownHostMatches(const std::string& field, const std::string& host, const std::string& port) {
  std::string name = port.empty() || port == "22" ? host : "[" + host + "]:" + port;
  for (const auto& pattern : strings::split(field, ',')) {
    if (pattern.rfind("|1|", 0) == 0) {
      auto parts = strings::split(pattern.substr(3), '|');
      if (parts.size() != 2) continue;
      auto salt = strings::base64Decode(parts[0]);
      if (!salt) continue;
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      HMAC(EVP_sha1(), salt->data(), static_cast<int>(salt->size()),
           reinterpret_cast<const unsigned char*>(name.data()), name.size(), mac, &len);
      if (strings::base64Encode(std::string(reinterpret_cast<char*>(mac), len)) == parts[1])
        return true;
    } else if (pattern == name) {
      return true;
    }
  }
  return false;
}

// OpenSSL's verdict on a server certificate (DER) against the system's CAs and `extraPem`,
// including the name: "" when it is trusted, or why not.
std::string verifyCertificate(const unsigned char* der, size_t len, const std::string& extraPem,
                              const std::string& host) {
  const unsigned char* p = der;
  std::unique_ptr<X509, void (*)(X509*)> cert(d2i_X509(nullptr, &p, static_cast<long>(len)),
                                              X509_free);
  if (!cert) return "unreadable server certificate";
  std::unique_ptr<X509_STORE, void (*)(X509_STORE*)> store(X509_STORE_new(), X509_STORE_free);
  X509_STORE_set_default_paths(store.get());
  if (!extraPem.empty()) {
    std::unique_ptr<BIO, int (*)(BIO*)> bio(
        BIO_new_mem_buf(extraPem.data(), static_cast<int>(extraPem.size())), BIO_free);
    while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store.get(), ca);
      X509_free(ca);
    }
    ERR_clear_error();
  }
  std::unique_ptr<X509_STORE_CTX, void (*)(X509_STORE_CTX*)> ctx(X509_STORE_CTX_new(),
                                                                 X509_STORE_CTX_free);
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1)
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  if (X509_verify_cert(ctx.get()) == 1) return "";
  return std::string("x509: ") + X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
}

}  // namespace

int checkCertificate(git_cert* cert, int valid, const char* host, void* payload) {
  auto* ctx = static_cast<FetchContext*>(payload);
  if (ctx->creds->insecure) return 0;
  std::string why;
  if (cert->cert_type == GIT_CERT_X509) {
    if (valid) return 0;
    auto* x = reinterpret_cast<git_cert_x509*>(cert);
    why = verifyCertificate(static_cast<const unsigned char*>(x->data), x->len,
                            ctx->creds->tlsCerts, host ? host : "");
    if (why.empty()) return 0;
  } else if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2) {
    auto* k = reinterpret_cast<git_cert_hostkey*>(cert);
    if (!(k->type & GIT_CERT_SSH_RAW)) {
      why = "ssh: the server's host key is not available to check";
    } else {
      std::string key = strings::base64Encode(std::string(k->hostkey, k->hostkey_len));
      std::string port = repoHost(ctx->url).port;
      for (const auto& line : strings::split(ctx->creds->knownHosts, '\n')) {
        std::istringstream in(line);
        std::string hosts, type, known;
        if (in >> hosts >> type >> known && hosts[0] != '#' &&
            knownHostMatches(hosts, host ? host : "", port) && known == key)
          return 0;
      }
      why =
          "ssh: handshake failed: knownhosts: key is unknown (add the host's key to "
          "argocd-ssh-known-hosts-cm, or mark the repository insecure)";
    }
  } else {
    return GIT_PASSTHROUGH;
  }
  git_error_set_str(GIT_ERROR_SSL, why.c_str());
  return GIT_ECERTIFICATE;
}

int credentials(git_credential** out, const char* url, const char* userFromUrl,
                unsigned int allowed, void* payload) {
  auto* ctx = static_cast<FetchContext*>(payload);
  const RepoCredentials& c = *ctx->creds;
  // Each kind is offered once: a server that refuses it is answered with an error, not a loop.
  if (++ctx->credentialCalls > 3) {
    git_error_set_str(GIT_ERROR_NET, "authentication failed");
    return GIT_EAUTH;
  }
  std::string user = userFromUrl && *userFromUrl ? userFromUrl : c.username;
  if ((allowed & GIT_CREDENTIAL_SSH_KEY) && !c.sshPrivateKey.empty())
    return git_credential_ssh_key_memory_new(out, user.empty() ? "git" : user.c_str(), nullptr,
                                             c.sshPrivateKey.c_str(), nullptr);
  if (allowed & GIT_CREDENTIAL_USERNAME)
    return git_credential_username_new(out, user.empty() ? "git" : user.c_str());
  if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && !c.username.empty())
    return git_credential_userpass_plaintext_new(out, c.username.c_str(), c.password.c_str());
  git_error_set_str(GIT_ERROR_NET, (std::string("authentication required by ") + url +
                                    " but no repository Secret gives credentials for it")
                                       .c_str());
  return GIT_EAUTH;
}

git_remote_callbacks remoteCallbacks(FetchContext& ctx) {
  git_remote_callbacks cb = GIT_REMOTE_CALLBACKS_INIT;
  cb.certificate_check = checkCertificate;
  cb.credentials = credentials;
  cb.payload = &ctx;
  return cb;
}

Expected<void, std::string> GitRepo::fetch(const RepoCredentials& creds) {
  git_remote* remote = nullptr;
  if (git_remote_lookup(&remote, repo_, "origin") != 0) return Unexpected(lastError("origin"));
  FetchContext ctx{&creds, url_, 0, ""};
  git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
  opts.prune = GIT_FETCH_PRUNE;
  opts.callbacks = remoteCallbacks(ctx);
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

Expected<std::string, std::string> GitRepo::remoteCommit(const std::string& revision,
                                                         const RepoCredentials& creds) {
  if (revision.size() == 40 && revision.find_first_not_of("0123456789abcdef") == std::string::npos)
    return revision;
  git_remote* remote = nullptr;
  if (git_remote_lookup(&remote, repo_, "origin") != 0) return Unexpected(lastError("origin"));
  FetchContext ctx{&creds, url_, 0, ""};
  git_remote_callbacks cb = remoteCallbacks(ctx);
  if (git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, nullptr, nullptr) != 0) {
    git_remote_free(remote);
    return Unexpected(lastError("ls-remote " + url_));
  }
  const git_remote_head** heads = nullptr;
  size_t n = 0;
  std::map<std::string, std::string> refs;
  if (git_remote_ls(&heads, &n, remote) == 0)
    for (size_t i = 0; i < n; ++i) {
      char sha[GIT_OID_HEXSZ + 1];
      git_oid_tostr(sha, sizeof sha, &heads[i]->oid);
      refs[heads[i]->name] = sha;
    }
  git_remote_free(remote);
  // A tag's peeled entry (refs/tags/T^{}) names the commit of an annotated tag.
  std::vector<std::string> candidates =
      revision.empty() || revision == "HEAD"
          ? std::vector<std::string>{"HEAD"}
          : std::vector<std::string>{"refs/heads/" + revision, "refs/tags/" + revision + "^{}",
                                     "refs/tags/" + revision};
  for (const auto& c : candidates)
    if (auto it = refs.find(c); it != refs.end()) return it->second;
  return Unexpected("the remote has no ref " + revision);
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
