#pragma once

// One sync of an application, as Argo CD runs it, advanced a step at a time: each step does
// what can be done now and returns, so an application's reconciles (its work queue) drive the
// sync and no thread ever sleeps waiting for it. Order: PreSync hooks, then the resources with
// the Sync hooks, then PostSync hooks; within a phase by wave, then kind. With hooks or more
// than one wave, each wave waits for the previous one to be healthy (hooks: to succeed, then
// deleted by their policy); a failure stops the sync and runs the SyncFail hooks. Pruning comes
// after the Sync phase (before PostSync), or last with PruneLast; Prune=false objects stay.

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "app.h"
#include "podium/client/client.h"
#include "podium/common/time.h"

namespace podium::gitops {

class SyncRun {
 public:
  struct Inputs {
    Json app;
    SyncSettings settings;
    TargetList targets = std::make_shared<const std::vector<Target>>();
    std::vector<Json> extraneous;  // status.resources entries no longer in git
    std::string commit, subject;
    bool prune = false;
    Json initiatedBy;
    bool requested = false;  // a requested operation (not an automated sync)
    // Argo CD's selective sync (operation.sync.resources): only these ("group/kind/ns/name")
    // are applied or pruned, hooks do not run, and the sync is not recorded in the history.
    // Empty: everything.
    std::set<std::string> only;
    bool selected(const Target& t) const {
      return only.empty() || (t.hook.empty() && only.count(t.key()));
    }
  };
  enum class State { Running, Succeeded, Failed };

  SyncRun(client::Client& client, Clock& clock, Inputs inputs);

  // Does what can be done now. Running: step again after *wait.
  State step(std::chrono::milliseconds* wait);

  const Inputs& inputs() const { return in_; }
  // The per-object results so far (Argo CD's syncResult.resources).
  const Json& results() const { return results_; }
  // What the sync waits for, or its outcome.
  const std::string& message() const { return message_; }
  const std::string& startedAt() const { return startedAt_; }
  // How long a wave may take to become healthy before the sync fails.
  static constexpr std::chrono::minutes kWaveTimeout{5};

 private:
  struct Task {
    const Target* target = nullptr;
    std::optional<size_t> result;  // index into results_ (none: unchanged, only waited for)
    bool applied = false, done = false, recreating = false;
    bool removing = false;  // a hook deleted by its policy, not gone yet
    std::chrono::steady_clock::time_point removingSince;
  };
  struct Stage {
    bool prune = false;  // the prune step, else one wave of one phase
    std::string phase;
    int wave = 0;
    std::vector<Task> tasks;
    bool applied = false;
    std::chrono::steady_clock::time_point since;
  };

  static Stage pruneStage();
  static Task taskFor(const Target& t);
  std::vector<Stage> stagesFor(const std::vector<std::string>& phases, bool withPrune) const;
  // Applies the stage's tasks; false while a hook of an earlier sync is still going away.
  bool apply(Stage& s);
  // Whether every task of the stage is healthy (hooks: succeeded); failures set failed_.
  bool settled(Stage& s);
  void pruneExtraneous();
  void fail(const std::string& reason);
  client::Result write(const Target& t, const Json* live);
  void removeHook(const Target& t);

  client::Client& client_;
  Clock& clock_;
  Inputs in_;
  bool multiStep_ = false;
  std::vector<Stage> stages_;
  size_t stage_ = 0;
  bool failed_ = false, syncFailRun_ = false;
  Json results_ = Json::array();
  std::string message_, failReason_, startedAt_;
};

}  // namespace podium::gitops
