// GitRepo's writing side: a file read at a commit, a commit that changes one file, and a push
// that never overwrites what others pushed (only fast-forwards; a moved branch is reported so
// the change can be made again on top).

#include <memory>

#include "repo.h"
#include "repo_internal.h"

namespace podium::gitops {

namespace {

template <class T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, decltype(Free)>;

git_commit* lookupCommit(git_repository* repo, const std::string& commit) {
  git_oid oid;
  git_commit* c = nullptr;
  if (git_oid_fromstr(&oid, commit.c_str()) != 0 || git_commit_lookup(&c, repo, &oid) != 0)
    return nullptr;
  return c;
}

int pushUpdate(const char* ref, const char* status, void* payload) {
  if (status) static_cast<FetchContext*>(payload)->pushStatus = std::string(ref) + ": " + status;
  return 0;
}

}  // namespace

Expected<std::string, std::string> GitRepo::readFile(const std::string& commit,
                                                     const std::string& path) {
  Owned<git_tree, git_tree_free> root(rootTree(repo_, commit), git_tree_free);
  if (!root) return Unexpected(lastError("commit " + commit));
  git_tree_entry* e = nullptr;
  if (git_tree_entry_bypath(&e, root.get(), path.c_str()) != 0)
    return Unexpected("no file " + path + " at " + commit.substr(0, 7));
  Owned<git_tree_entry, git_tree_entry_free> entry(e, git_tree_entry_free);
  git_blob* b = nullptr;
  if (git_tree_entry_type(e) != GIT_OBJECT_BLOB ||
      git_blob_lookup(&b, repo_, git_tree_entry_id(e)) != 0)
    return Unexpected(path + " is not a file at " + commit.substr(0, 7));
  std::string out(static_cast<const char*>(git_blob_rawcontent(b)),
                  static_cast<size_t>(git_blob_rawsize(b)));
  git_blob_free(b);
  return out;
}

Expected<std::string, std::string> GitRepo::commitFile(const std::string& parent,
                                                       const std::string& path,
                                                       const std::string& content,
                                                       const Author& author,
                                                       const std::string& message) {
  Owned<git_commit, git_commit_free> base(lookupCommit(repo_, parent), git_commit_free);
  if (!base) return Unexpected(lastError("commit " + parent));
  git_tree* t = nullptr;
  if (git_commit_tree(&t, base.get()) != 0) return Unexpected(lastError("tree of " + parent));
  Owned<git_tree, git_tree_free> tree(t, git_tree_free);
  git_filemode_t mode = GIT_FILEMODE_BLOB;
  git_tree_entry* e = nullptr;
  if (git_tree_entry_bypath(&e, tree.get(), path.c_str()) == 0) {
    mode = git_tree_entry_filemode(e);
    git_tree_entry_free(e);
  }
  git_tree_update update{};
  update.action = GIT_TREE_UPDATE_UPSERT;
  update.filemode = mode;
  update.path = path.c_str();
  if (git_blob_create_from_buffer(&update.id, repo_, content.data(), content.size()) != 0)
    return Unexpected(lastError("blob for " + path));
  git_oid treeId;
  if (git_tree_create_updated(&treeId, repo_, tree.get(), 1, &update) != 0)
    return Unexpected(lastError("tree with " + path));
  git_tree* nt = nullptr;
  if (git_tree_lookup(&nt, repo_, &treeId) != 0) return Unexpected(lastError("new tree"));
  Owned<git_tree, git_tree_free> newTree(nt, git_tree_free);
  git_signature* sig = nullptr;
  if (git_signature_now(&sig, author.name.c_str(), author.email.c_str()) != 0)
    return Unexpected(lastError("author"));
  Owned<git_signature, git_signature_free> signature(sig, git_signature_free);
  const git_commit* parents[] = {base.get()};
  git_oid id;
  if (git_commit_create(&id, repo_, nullptr, sig, sig, nullptr, message.c_str(), newTree.get(), 1,
                        parents) != 0)
    return Unexpected(lastError("commit"));
  char sha[GIT_OID_HEXSZ + 1];
  git_oid_tostr(sha, sizeof sha, &id);
  return std::string(sha);
}

Expected<void, std::string> GitRepo::push(const std::string& commit, const std::string& branch,
                                          const RepoCredentials& creds, bool* moved) {
  *moved = false;
  std::string target = "refs/heads/" + branch;
  std::string path = remoteFor(url_);
  if (!path.empty() && path[0] == '/') {
    git_repository* r = nullptr;
    if (git_repository_open(&r, path.c_str()) == 0) {
      Owned<git_repository, git_repository_free> remoteRepo(r, git_repository_free);
      git_reference* head = nullptr;
      bool checkedOut = !git_repository_is_bare(r) && git_repository_head(&head, r) == 0 &&
                        target == git_reference_name(head);
      if (head) git_reference_free(head);
      if (checkedOut)
        return Unexpected("refusing to update " + branch + ", the branch checked out in " + path +
                          " (git's receive.denyCurrentBranch): make it a bare repository");
    }
  }
  git_oid oid;
  if (git_oid_fromstr(&oid, commit.c_str()) != 0) return Unexpected("bad commit id " + commit);
  std::string local = "refs/podium/push/" + branch;
  git_reference* ref = nullptr;
  if (git_reference_create(&ref, repo_, local.c_str(), &oid, 1, "push") != 0)
    return Unexpected(lastError("ref " + local));
  git_reference_free(ref);
  git_remote* rm = nullptr;
  if (git_remote_lookup(&rm, repo_, "origin") != 0) return Unexpected(lastError("origin"));
  Owned<git_remote, git_remote_free> remote(rm, git_remote_free);
  FetchContext ctx{&creds, url_, 0, ""};
  git_push_options opts = GIT_PUSH_OPTIONS_INIT;
  opts.callbacks = remoteCallbacks(ctx);
  opts.callbacks.push_update_reference = pushUpdate;
  std::string spec = local + ":" + target;
  char* specs[] = {spec.data()};
  git_strarray refspecs{specs, 1};
  int rc = git_remote_push(remote.get(), &refspecs, &opts);
  if (rc == GIT_ENONFASTFORWARD || (rc == 0 && !ctx.pushStatus.empty())) {
    *moved = true;
    return Unexpected("push to " + branch +
                      " refused: " + (rc == 0 ? ctx.pushStatus : lastError("the branch moved")));
  }
  if (rc != 0) return Unexpected(lastError("push to " + url_));
  // The mirror follows at once (a fetch would bring the same).
  if (git_reference_create(&ref, repo_, target.c_str(), &oid, 1, "pushed") == 0)
    git_reference_free(ref);
  return {};
}

}  // namespace podium::gitops
