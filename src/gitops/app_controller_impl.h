#pragma once

// The application controller: one Controller (queue, workers) whose key is an Application.
// A reconcile loads the app's source (sources.h), compares it with the cluster, decides whether
// to sync, and advances a sync a step at a time (sync_run.h); Argo CD's API paths are in
// argocd_api.cc.

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "app.h"
#include "image_build.h"
#include "podium/client/controller.h"
#include "podium/client/informer.h"
#include "podium/gitops/app_controller.h"
#include "sources.h"
#include "sync_run.h"

namespace podium::gitops {

// A JSON answer of Argo CD's API (argocd_api.cc).
api::HttpResponse jsonReply(int status, const Json& body);

class AppController : public GitOps, public client::Controller {
 public:
  AppController(client::Client& client, GitOpsOptions options);
  ~AppController() override { stop(); }
  void stop() override;
  api::HttpResponse serve(const api::HttpRequest& request) override;

 protected:
  client::SyncResult sync(const std::string& key) override;

 private:
  struct Compared {
    Json resources = Json::array();
    Json health;
    bool outOfSync = false;
  };
  // The status of each target (and of the extraneous objects, to prune) against the cluster.
  // `basis` names what git's side was made from (basisOf); a target's verdict under the same
  // basis is reused while its live object's resourceVersion is unchanged.
  Compared compare(const std::string& key, const std::string& basis,
                   const std::vector<Target>& targets, const std::vector<Json>& extraneous);
  client::SyncResult reconcile(const std::string& key, const Json& app);
  // Starts a sync and takes its first step.
  client::SyncResult startRun(const std::string& key, const Json& app, SyncRun::Inputs inputs,
                              Json status, const Json& previous, Json conditions, bool refresh);
  // Takes the next step of a sync under way.
  client::SyncResult continueRun(const std::string& key, const Json& app);
  // Steps a run; records it while it runs, writes the result when it ends.
  client::SyncResult advance(const std::string& key, const Json& app, std::shared_ptr<SyncRun> run,
                             Json status, const Json& previous, const Json& conditions,
                             bool refresh);
  // Whether `targets` of `commit` pass the API's strict dry run (a ComparisonError if not).
  std::string dryRun(const Json& app, const std::vector<Target>& targets, const std::string& commit,
                     const SyncSettings& settings);
  // Argo CD's retry of a failed automated sync; the delay before it, if one is due.
  std::optional<std::chrono::milliseconds> retryIfFailed(const std::string& key, const Json& spec,
                                                         const std::string& commit, Json* status);
  client::SyncResult finalize(const Json& app, const std::string& key);
  client::SyncResult writeStatus(const Json& app, const Json& previous, Json status,
                                 const Json& conditions, const std::string& now, bool refresh,
                                 bool operationDone = false);
  void writeProgress(const Json& app, const SyncRun& run);
  client::SyncResult pollAgain();
  std::optional<Resource> resourceOf(const Json& statusResource);

  // argocd_api.cc
  api::HttpResponse managedResources(const std::string& ns, const std::string& name);
  api::HttpResponse resourceTree(const std::string& ns, const std::string& name);
  api::HttpResponse webhook(const api::HttpRequest& req);

  GitOpsOptions opts_;
  Sources sources_;
  client::Informer apps_;
  std::mutex stateMu_;             // guards the three below
  std::set<std::string> checked_;  // commits whose objects passed the dry run
  struct RetryState {
    std::string revision;
    int count = 0;
    std::chrono::steady_clock::time_point nextAt;
  };
  std::map<std::string, RetryState> retries_;  // apps whose automated sync failed
  struct Running {
    std::shared_ptr<SyncRun> run;
    std::string lastProgress;  // what was last written of it
  };
  std::map<std::string, Running> runs_;  // syncs under way, by app key
  // What compare last concluded of each target of an app (its status entry, with its health,
  // and whether it is in sync), with the basis and live resourceVersion it was concluded for.
  struct Verdict {
    std::string resourceVersion;
    Json entry;
    bool synced = false;
  };
  struct Verdicts {
    std::string basis;
    std::map<std::string, Verdict> byTarget;
  };
  std::mutex comparedMu_;
  std::map<std::string, Verdicts> compared_;  // by app key
  bool stopped_ = false;
  // The ref watcher: asks each app's remote for its revision's commit between polls.
  void watchRefs();
  std::thread refWatcher_;
  std::mutex refMu_;
  std::condition_variable refCv_;
  RefWatch refs_;                        // the watcher's
  std::unique_ptr<ImageBuilds> images_;  // the image builder, sharing sources_
};

}  // namespace podium::gitops
