#pragma once

// Argo CD's application controller for `argoproj.io/v1alpha1` Applications, unchanged manifests:
// every poll (a few seconds, with jitter), on a push webhook or a refresh annotation, it fetches
// each Application's repository (local, http(s) or ssh, with Argo CD's repository Secrets),
// resolves its targetRevision, renders its path (plain YAML, Kustomize, or Helm when helm is
// installed), compares the result with the live objects (ignoreDifferences aside), and — with
// syncPolicy.automated or a requested operation — syncs: hooks and waves, server-side apply as
// `argocd-controller` (or Replace), prune, self-heal, retries with back-off. The status is Argo
// CD's: sync, health, resources, operationState, history, conditions, reconciledAt. See
// docs/gitops.md.
//
// Beside it runs the image builder for `podium.dev/v1alpha1` ImageBuilds: on each new commit of
// a source branch (noticed the same way, and by the same push webhooks) it builds the image,
// pushes it with a unique tag and commits the new tag on the deploy branch (Argo CD Image
// Updater's git write-back). See docs/image-builds.md.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "podium/api/http.h"
#include "podium/client/client.h"
#include "podium/common/random.h"
#include "podium/common/time.h"

namespace podium::gitops {

// An image build as `podium.dev/v1alpha1` ImageBuilds ask for it: the build context checked out
// at the source commit, and the image to push (NAME:TAG as manifests write it).
struct ImageBuildJob {
  std::string contextDir, dockerfile, image;
};
struct ImageBuildOutcome {
  bool ok = false;
  std::string pushed;  // where the image went ("127.0.0.1:5000/me/app:abc1234")
  std::string step;    // the step that failed ("STEP 3/5: RUN g++ ...", "push")
  std::string error;   // why it failed
  std::string log;     // the builder's output
};
// Builds and pushes (buildah, as `podium image build`); called on a worker, may take minutes.
using ImageBuilder = std::function<ImageBuildOutcome(const ImageBuildJob&)>;

struct GitOpsOptions {
  std::string dataDir;  // repository mirrors live in DATA/gitops/repos
  std::chrono::milliseconds pollInterval{3000};
  // How often each Application's repository is asked which commit its revision names (git
  // ls-remote: refs only); a new one is reconciled at once, without waiting for the poll.
  // 0: only the polls and webhooks.
  std::chrono::milliseconds refCheckInterval{250};
  int workers = 4;  // Applications reconciled (and synced) at the same time
  // What ImageBuilds build with; without one they are answered with a status saying this
  // server builds no images.
  ImageBuilder imageBuilder;
  Clock* clock = &realClock();
  Random* random = &realRandom();  // the polls' jitter
};

class GitOps {
 public:
  virtual ~GitOps() = default;
  virtual void stop() = 0;
  // Argo CD's API paths:
  // - POST /api/webhook: a git host's push event (GitHub, GitLab, Gitea/Gogs), checked against
  //   the secret in Secret argocd/argocd-secret (`webhook.github.secret`, `webhook.gitlab.secret`,
  //   `webhook.gogs.secret`) when one is set; the Applications following the pushed repository
  //   and branch are refreshed at once.
  // - GET /api/v1/applications/NAME/managed-resources[?appNamespace=NS]: each resource's state
  //   in git (targetState) and live (liveState, and normalizedLiveState: the fields git sets),
  //   as JSON strings, and whether it differs (modified): what `argocd app diff` shows.
  virtual api::HttpResponse serve(const api::HttpRequest& request) = 0;
};

// Starts the application controller on `client` (which must outlive it; writes go as its field
// manager, argocd-controller for Argo CD's own).
std::unique_ptr<GitOps> startGitOps(client::Client& client, const GitOpsOptions& options);

}  // namespace podium::gitops
