#include "disruption.h"

#include <cmath>

#include "podium/api/selectors.h"

namespace podium::controllers {

using client::Informer;
namespace res = client::resources;

namespace {
// How long a pod an eviction took stays counted out while it has not been marked deleted yet.
constexpr std::chrono::minutes kDisruptedTimeout{2};
}  // namespace

DisruptionController::DisruptionController(client::InformerFactory& f, int workers)
    : Controller("disruption", f.client(), f.clock(), workers),
      budgets_(f.informer(res::kPodDisruptionBudgets)),
      pods_(f.informer(res::kPods)) {
  budgets_.addHandlers(enqueueHandlers(false));
  auto pod = [this](const ObjectPtr& p) {
    for (const auto& b : budgets_.list(namespaceOf(*p))) enqueue(*b);
  };
  pods_.addHandlers({pod, [pod](const ObjectPtr&, const ObjectPtr& n) { pod(n); }, pod});
}

SyncResult DisruptionController::sync(const std::string& key) {
  auto [ns, name] = Informer::splitKey(key);
  ObjectPtr b = budgets_.get(ns, name);
  if (!b || isDeleting(*b)) return SyncResult::ok();
  const Json& spec = at(*b, {"spec"});
  auto selector = api::LabelSelector::fromObject(at(spec, {"selector"}));
  auto now = clock_.now();
  Json status = at(*b, {"status"}).is_object() ? (*b)["status"] : Json::object();
  // Evictions the API counted out: kept while their pod is still there and not yet deleting.
  Json disrupted = Json::object();
  SyncResult result = SyncResult::ok();
  for (const auto& [pod, when] : at(status, {"disruptedPods"}).items()) {
    auto p = pods_.get(ns, pod);
    auto t = timefmt::parseRfc3339(when.is_string() ? when.get<std::string>() : "");
    if (!p || isDeleting(*p) || !t || now - *t > kDisruptedTimeout) continue;
    disrupted[pod] = when;
    result.merge(SyncResult::after(
        std::chrono::duration_cast<std::chrono::milliseconds>(*t + kDisruptedTimeout - now)));
  }
  int64_t expected = 0, healthy = 0;
  if (selector)
    for (const auto& p : pods_.list(ns)) {
      if (!isPodActive(*p) || !selector->matches(at(*p, {"metadata", "labels"}))) continue;
      ++expected;
      if (isPodReady(*p) && !disrupted.contains(nameOf(*p))) ++healthy;
    }
  int64_t desired = expected;
  if (spec.contains("minAvailable"))
    desired = resolveIntOrPercent(spec["minAvailable"], expected, true, expected);
  else if (spec.contains("maxUnavailable"))
    desired = expected - resolveIntOrPercent(spec["maxUnavailable"], expected, true, 0);
  desired = std::max<int64_t>(0, desired);
  int64_t allowed = std::max<int64_t>(0, healthy - desired);
  Json next = status;
  next["observedGeneration"] = json::integer(at(*b, {"metadata"}), "generation", 1);
  next["expectedPods"] = expected;
  next["currentHealthy"] = healthy;
  next["desiredHealthy"] = desired;
  next["disruptionsAllowed"] = allowed;
  if (disrupted.empty())
    next.erase("disruptedPods");
  else
    next["disruptedPods"] = disrupted;
  setCondition(next["conditions"],
               {{"type", "DisruptionAllowed"},
                {"status", allowed > 0 ? "True" : "False"},
                {"reason", allowed > 0 ? "SufficientPods" : "InsufficientPods"},
                {"message", ""},
                {"observedGeneration", next["observedGeneration"]}},
               timefmt::rfc3339(now));
  return result.merge(updateStatus(res::kPodDisruptionBudgets, *b, next));
}

}  // namespace podium::controllers
