#pragma once

// What repo.cc and repo_write.cc share: libgit2's error text, the callbacks that check a
// server and answer its authentication from Argo CD's repository Secrets, and tree lookup.

#include <git2.h>

#include <string>

#include "repo.h"

namespace podium::gitops {

// `what`: libgit2's last error message.
std::string lastError(const std::string& what);

struct FetchContext {
  const RepoCredentials* creds;
  std::string url;
  int credentialCalls = 0;
  std::string pushStatus;  // a ref update the remote refused, and why
};

int checkCertificate(git_cert* cert, int valid, const char* host, void* payload);
int credentials(git_credential** out, const char* url, const char* userFromUrl,
                unsigned int allowed, void* payload);
// The two above, with `ctx` (which must outlive the remote operation) as their payload.
git_remote_callbacks remoteCallbacks(FetchContext& ctx);

// The commit's root tree (the caller frees it), or nullptr.
git_tree* rootTree(git_repository* repo, const std::string& commit);

}  // namespace podium::gitops
