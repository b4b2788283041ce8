#include "podium/client/objects.h"

#include "podium/common/time.h"

namespace podium::client {

std::string uidOf(const Json& obj) { return json::getString(obj, {"metadata", "uid"}); }
std::string nameOf(const Json& obj) { return json::getString(obj, {"metadata", "name"}); }
std::string namespaceOf(const Json& obj) { return json::getString(obj, {"metadata", "namespace"}); }
std::string resourceVersionOf(const Json& obj) {
  return json::getString(obj, {"metadata", "resourceVersion"});
}
bool isDeleting(const Json& obj) {
  return json::find(obj, {"metadata", "deletionTimestamp"}) != nullptr;
}

Json controllerRef(const Json& owner) {
  return {{"apiVersion", json::str(owner, "apiVersion")},
          {"kind", json::str(owner, "kind")},
          {"name", nameOf(owner)},
          {"uid", uidOf(owner)},
          {"controller", true},
          {"blockOwnerDeletion", true}};
}

const Json* controllerOf(const Json& obj) {
  const Json* refs = json::find(obj, {"metadata", "ownerReferences"});
  if (!refs || !refs->is_array()) return nullptr;
  for (const auto& r : *refs)
    if (json::boolean(r, "controller")) return &r;
  return nullptr;
}

bool controlledBy(const Json& obj, const std::string& kind, std::string* name) {
  const Json* ref = controllerOf(obj);
  if (!ref || json::str(*ref, "kind") != kind) return false;
  if (name) *name = json::str(*ref, "name");
  return true;
}

bool isPodActive(const Json& pod) {
  std::string phase = json::getString(pod, {"status", "phase"});
  return phase != "Succeeded" && phase != "Failed" && !isDeleting(pod);
}

const Json* findCondition(const Json& obj, const std::string& type) {
  const Json* conds = json::find(obj, {"status", "conditions"});
  if (!conds || !conds->is_array()) return nullptr;
  for (const auto& c : *conds)
    if (json::str(c, "type") == type) return &c;
  return nullptr;
}

bool tolerates(const Json& tolerations, const Json& taint) {
  if (!tolerations.is_array()) return false;
  std::string key = json::str(taint, "key"), value = json::str(taint, "value"),
              effect = json::str(taint, "effect");
  for (const auto& t : tolerations) {
    std::string te = json::str(t, "effect");
    if (!te.empty() && te != effect) continue;
    std::string op = json::str(t, "operator", "Equal");
    std::string tk = json::str(t, "key");
    if (tk.empty() && op == "Exists") return true;
    if (tk != key) continue;
    if (op == "Exists" || json::str(t, "value") == value) return true;
  }
  return false;
}

const Json* untoleratedTaint(const Json& tolerations, const Json& node) {
  const Json& taints = at(node, {"spec", "taints"});
  if (!taints.is_array()) return nullptr;
  for (const auto& t : taints) {
    std::string effect = json::str(t, "effect");
    if ((effect == "NoSchedule" || effect == "NoExecute") && !tolerates(tolerations, t)) return &t;
  }
  return nullptr;
}

bool matchesNodeSelector(const Json& nodeSelector, const Json& node) {
  if (!nodeSelector.is_object()) return true;
  const Json& labels = at(node, {"metadata", "labels"});
  for (const auto& item : nodeSelector.items())
    if (!labels.is_object() || !labels.contains(item.key()) || labels[item.key()] != item.value())
      return false;
  return true;
}

namespace {

bool requirementHolds(const Json& req, const Json& values, const std::string& key,
                      const Json& subject) {
  std::string op = json::str(req, "operator");
  const Json* v = subject.is_object() && subject.contains(key) ? &subject[key] : nullptr;
  std::string have = v && v->is_string() ? v->get<std::string>() : "";
  auto listed = [&] {
    if (!values.is_array()) return false;
    for (const auto& x : values)
      if (x.is_string() && x.get<std::string>() == have) return true;
    return false;
  };
  if (op == "In") return v && listed();
  if (op == "NotIn") return !v || !listed();
  if (op == "Exists") return v != nullptr;
  if (op == "DoesNotExist") return v == nullptr;
  if (op == "Gt" || op == "Lt") {
    if (!v || !values.is_array() || values.size() != 1 || !values[0].is_string()) return false;
    try {
      long long a = std::stoll(have), b = std::stoll(values[0].get<std::string>());
      return op == "Gt" ? a > b : a < b;
    } catch (...) {
      return false;
    }
  }
  return false;
}

}  // namespace

bool matchesNodeSelectorTerms(const Json& selector, const Json& node) {
  if (!selector.is_object()) return true;
  const Json& terms = at(selector, {"nodeSelectorTerms"});
  if (!terms.is_array()) return false;
  const Json& labels = at(node, {"metadata", "labels"});
  Json fields = {{"metadata.name", at(node, {"metadata", "name"})}};
  for (const auto& term : terms) {
    const Json& exprs = at(term, {"matchExpressions"});
    const Json& fieldExprs = at(term, {"matchFields"});
    if ((!exprs.is_array() || exprs.empty()) && (!fieldExprs.is_array() || fieldExprs.empty()))
      continue;  // an empty term matches no node
    bool all = true;
    for (const auto* list : {&exprs, &fieldExprs}) {
      if (!list->is_array()) continue;
      for (const auto& req : *list)
        if (!requirementHolds(req, at(req, {"values"}), json::str(req, "key"),
                              list == &exprs ? labels : fields))
          all = false;
    }
    if (all) return true;
  }
  return false;
}

bool podFitsNode(const Json& podSpec, const Json& node) {
  return matchesNodeSelector(at(podSpec, {"nodeSelector"}), node) &&
         matchesNodeSelectorTerms(at(podSpec, {"affinity", "nodeAffinity",
                                               "requiredDuringSchedulingIgnoredDuringExecution"}),
                                  node);
}

bool isPodReady(const Json& pod) {
  const Json* c = findCondition(pod, "Ready");
  return c && json::str(*c, "status") == "True";
}

int64_t secondsUntilAvailable(const Json& pod, int64_t minReadySeconds,
                              std::chrono::system_clock::time_point now) {
  if (!isPodReady(pod) || minReadySeconds <= 0) return 0;
  const Json* c = findCondition(pod, "Ready");
  auto since = timefmt::parseRfc3339(json::str(*c, "lastTransitionTime"));
  if (!since) return 0;
  auto ready = std::chrono::duration_cast<std::chrono::seconds>(now - *since).count();
  return ready >= minReadySeconds ? 0 : minReadySeconds - ready;
}

bool isPodAvailable(const Json& pod, int64_t minReadySeconds,
                    std::chrono::system_clock::time_point now) {
  return isPodReady(pod) && secondsUntilAvailable(pod, minReadySeconds, now) == 0;
}

bool setCondition(Json& conditions, const Json& condition, const std::string& now) {
  if (!conditions.is_array()) conditions = Json::array();
  std::string type = json::str(condition, "type");
  for (auto& c : conditions) {
    if (json::str(c, "type") != type) continue;
    Json next = condition;
    bool statusChanged = json::str(c, "status") != json::str(condition, "status");
    next["lastTransitionTime"] =
        statusChanged ? Json(now) : c.value("lastTransitionTime", Json(now));
    if (c.contains("lastUpdateTime") || next.contains("lastUpdateTime")) {
      bool same = json::str(c, "status") == json::str(next, "status") &&
                  json::str(c, "reason") == json::str(next, "reason") &&
                  json::str(c, "message") == json::str(next, "message");
      if (same && c.contains("lastUpdateTime")) next["lastUpdateTime"] = c["lastUpdateTime"];
    }
    if (next == c) return false;
    c = std::move(next);
    return true;
  }
  Json next = condition;
  if (!next.contains("lastTransitionTime")) next["lastTransitionTime"] = now;
  conditions.push_back(std::move(next));
  return true;
}

}  // namespace podium::client
