// `podium rollout list|get|promote|abort|retry|undo`, in the style of the `kubectl argo
// rollouts` plugin: Argo Rollouts' Rollouts through the Kubernetes API, changed the way the
// plugin changes them (status patches for promote/abort/retry, the template for undo).
#include <algorithm>
#include <iostream>

#include "flags.h"
#include "podium/cli/commands.h"
#include "podium/common/strings.h"
#include "remote.h"

namespace podium::cli {

namespace {

using client::resources::kReplicaSets;
using client::resources::kRollouts;
constexpr const char* kHash = "rollouts-pod-template-hash";
constexpr const char* kRevision = "rollout.argoproj.io/revision";

const char* kUsage = R"(Usage: podium rollout COMMAND [NAME] [flags]

Commands, as `kubectl argo rollouts` has them:
  list                 the Rollouts: status, step, weights
  get NAME             one Rollout: status, its step and weights, images, ReplicaSets
  promote NAME         past the current pause (--full: skip every remaining step)
  abort NAME           all traffic back to stable now; the canary is scaled down
  retry NAME           starts an aborted update again from its first step
  undo NAME            back to the previous revision's template (--to-revision N)

Flags:
  -n, --namespace NS   the Rollouts' namespace (default default)
  -o, --output json|yaml
  --data-dir DIR, --server URL, --token FILE, --ca-file FILE   as for `podium app`
)";

int64_t revisionOf(const Json& rs) {
  return strings::parseInt(json::getString(rs, {"metadata", "annotations", kRevision})).value_or(0);
}

// The weight the current step set (the last setWeight before it).
int64_t setWeight(const Json& ro) {
  const Json& steps = json::at(ro, {"spec", "strategy", "canary", "steps"});
  int64_t idx = json::integer(json::at(ro, {"status"}), "currentStepIndex", 0), w = 0;
  for (int64_t i = 0; i < idx && i < static_cast<int64_t>(steps.size()); ++i)
    if (steps[i].contains("setWeight")) w = json::integer(steps[i], "setWeight");
  if (json::getString(ro, {"status", "stableRS"}) ==
      json::getString(ro, {"status", "currentPodHash"}))
    w = 100;
  return w;
}

std::string stepText(const Json& ro) {
  const Json& steps = json::at(ro, {"spec", "strategy", "canary", "steps"});
  return std::to_string(json::integer(json::at(ro, {"status"}), "currentStepIndex", 0)) + "/" +
         std::to_string(steps.size());
}

std::string imageOf(const Json& podTemplate) {
  std::string out;
  for (const auto& c : json::at(podTemplate, {"spec", "containers"}))
    out += (out.empty() ? "" : ",") + json::str(c, "image");
  return out;
}

}  // namespace

int rolloutCommand(const std::vector<std::string>& args) {
  std::vector<std::string> rest = args;
  for (auto& a : rest) {
    if (a == "-n") a = "--namespace";
    if (a == "-o") a = "--output";
  }
  Flags flags({"namespace", "output", "data-dir", "server", "token", "client-cert", "client-key",
               "ca-file", "to-revision"},
              {"full", "help"});
  if (auto err = flags.parse(rest);
      !err.empty() || flags.positional().empty() || flags.has("help")) {
    if (!err.empty()) std::cerr << "podium rollout: " << err << "\n\n";
    std::cerr << kUsage;
    return flags.has("help") ? 0 : 2;
  }
  const auto& pos = flags.positional();
  const std::string& cmd = pos[0];
  std::string ns = flags.get("namespace").value_or("default");
  std::string output = flags.get("output").value_or("");
  auto conn = connection(flags, "kubectl-argo-rollouts");
  auto c = conn ? client::newRemoteClient(*conn) : Unexpected(conn.error());
  if (!c) return std::cerr << "podium rollout: " << c.error() << "\n", 1;
  client::Client& k = **c;
  auto fail = [&](const std::string& m) {
    return std::cerr << "podium rollout " << cmd << ": " << m << "\n", 1;
  };
  if (cmd == "list") {
    auto list = k.list(kRollouts, ns);
    if (!list) return fail(list.error().message());
    std::vector<std::vector<std::string>> rows = {{"NAME", "STRATEGY", "STATUS", "STEP",
                                                   "SET-WEIGHT", "READY", "DESIRED", "UP-TO-DATE",
                                                   "AVAILABLE"}};
    for (const auto& r : list->items)
      rows.push_back(
          {json::getString(*r, {"metadata", "name"}), "Canary",
           json::getString(*r, {"status", "phase"}), stepText(*r), std::to_string(setWeight(*r)),
           std::to_string(json::integer(json::at(*r, {"status"}), "readyReplicas")) + "/" +
               std::to_string(json::integer(json::at(*r, {"spec"}), "replicas", 1)),
           std::to_string(json::integer(json::at(*r, {"spec"}), "replicas", 1)),
           std::to_string(json::integer(json::at(*r, {"status"}), "updatedReplicas")),
           std::to_string(json::integer(json::at(*r, {"status"}), "availableReplicas"))});
    table(rows);
    return 0;
  }
  if (pos.size() < 2)
    return std::cerr << "podium rollout " << cmd << ": NAME is required\n\n" << kUsage, 2;
  const std::string& name = pos[1];
  auto ro = k.get(kRollouts, ns, name);
  if (!ro) return fail(ro.error().message());
  const Json& st = json::at(*ro, {"status"});
  auto statusPatch = [&](const Json& body, const std::string& done) {
    auto r = k.patch(kRollouts, ns, name, {{"status", body}}, "status");
    if (!r) return fail(r.error().message());
    std::cout << "rollout '" << name << "' " << done << "\n";
    return 0;
  };
  if (cmd == "promote") {
    if (flags.has("full")) return statusPatch({{"promoteFull", true}}, "fully promoted");
    const Json& steps = json::at(*ro, {"spec", "strategy", "canary", "steps"});
    int64_t idx = json::integer(st, "currentStepIndex", 0);
    if (json::str(st, "stableRS") == json::str(st, "currentPodHash"))
      return fail("the rollout is already fully promoted");
    Json body = {{"pauseConditions", nullptr}, {"controllerPause", false}};
    // Paused at a pause step, or on an inconclusive analysis: the next step, as the plugin does.
    const Json& pauses = json::at(st, {"pauseConditions"});
    bool inconclusive = pauses.is_array() && !pauses.empty() &&
                        json::str(pauses[0], "reason") == "InconclusiveAnalysis";
    if (idx < static_cast<int64_t>(steps.size()) && (steps[idx].contains("pause") || inconclusive))
      body["currentStepIndex"] = idx + 1;
    if (inconclusive) body["canary"] = {{"currentStepAnalysisRunStatus", nullptr}};
    return statusPatch(body, "promoted");
  }
  if (cmd == "abort") return statusPatch({{"abort", true}}, "aborted");
  if (cmd == "retry") {
    if (!json::boolean(st, "abort")) return fail("the rollout is not aborted");
    return statusPatch({{"abort", false},
                        {"abortReason", nullptr},
                        {"currentStepIndex", 0},
                        {"pauseConditions", nullptr},
                        {"canary", {{"currentStepAnalysisRunStatus", nullptr}}}},
                       "retried");
  }
  auto sets = k.list(kReplicaSets, ns);
  if (!sets) return fail(sets.error().message());
  std::vector<Json> owned;
  for (const auto& rs : sets->items)
    for (const auto& ref : json::at(*rs, {"metadata", "ownerReferences"}))
      if (json::str(ref, "uid") == json::getString(*ro, {"metadata", "uid"})) owned.push_back(*rs);
  std::sort(owned.begin(), owned.end(),
            [](const Json& a, const Json& b) { return revisionOf(a) > revisionOf(b); });
  if (cmd == "undo") {
    int64_t want = strings::parseInt(flags.get("to-revision").value_or("0")).value_or(0);
    const Json* target = nullptr;
    for (const auto& rs : owned)
      if (json::getString(rs, {"metadata", "labels", kHash}) != json::str(st, "currentPodHash") &&
          (want == 0 || revisionOf(rs) == want) && !target)
        target = &rs;
    if (!target) return fail(want ? "no revision " + std::to_string(want) : "no previous revision");
    Json tmpl = json::at(*target, {"spec", "template"});
    tmpl["metadata"]["labels"].erase(kHash);
    auto r = k.patch(kRollouts, ns, name, {{"spec", {{"template", tmpl}}}});
    if (!r) return fail(r.error().message());
    std::cout << "rollout '" << name << "' undo to revision " << revisionOf(*target) << "\n";
    return 0;
  }
  if (cmd != "get")
    return std::cerr << "podium rollout: unknown command " << cmd << "\n\n" << kUsage, 2;
  if (!output.empty()) {
    print(*ro, output);
    return 0;
  }
  std::string stable = json::str(st, "stableRS"), current = json::str(st, "currentPodHash");
  std::cout << "Name:            " << name << "\nNamespace:       " << ns
            << "\nStatus:          " << json::str(st, "phase", "Unknown")
            << "\nMessage:         " << json::str(st, "message")
            << "\nStrategy:        Canary\n  Step:          " << stepText(*ro)
            << "\n  SetWeight:     " << setWeight(*ro) << "\n  ActualWeight:  "
            << json::getString(st, {"canary", "weights", "canary", "weight"})
            << "\nReplicas:\n  Desired:       "
            << json::integer(json::at(*ro, {"spec"}), "replicas", 1)
            << "\n  Current:       " << json::integer(st, "replicas")
            << "\n  Updated:       " << json::integer(st, "updatedReplicas")
            << "\n  Ready:         " << json::integer(st, "readyReplicas")
            << "\n  Available:     " << json::integer(st, "availableReplicas") << "\n\n";
  std::vector<std::vector<std::string>> rows = {
      {"REVISION", "REPLICASET", "ROLE", "DESIRED", "READY", "IMAGE"}};
  for (const auto& rs : owned) {
    std::string h = json::getString(rs, {"metadata", "labels", kHash});
    std::string role = h == stable && h == current ? "stable"
                       : h == stable               ? "stable"
                       : h == current              ? "canary"
                                                   : "";
    rows.push_back({std::to_string(revisionOf(rs)), json::getString(rs, {"metadata", "name"}), role,
                    std::to_string(json::integer(json::at(rs, {"spec"}), "replicas")),
                    std::to_string(json::integer(json::at(rs, {"status"}), "readyReplicas")),
                    imageOf(json::at(rs, {"spec", "template"}))});
  }
  table(rows);
  return 0;
}

}  // namespace podium::cli
