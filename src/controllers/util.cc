#include "util.h"

#include <cmath>

#include "podium/common/log.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"

namespace podium::controllers {

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

std::string uidOf(const Json& obj) { return json::getString(obj, {"metadata", "uid"}); }
std::string nameOf(const Json& obj) { return json::getString(obj, {"metadata", "name"}); }
std::string namespaceOf(const Json& obj) { return json::getString(obj, {"metadata", "namespace"}); }
bool isDeleting(const Json& obj) {
  return json::find(obj, {"metadata", "deletionTimestamp"}) != nullptr;
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

namespace {
// Drops the hash label and null/empty creationTimestamp so templates compare as the user wrote
// them.
Json normalizeTemplate(const Json& t) {
  Json out = t.is_object() ? t : Json::object();
  if (out.contains("metadata") && out["metadata"].is_object()) {
    Json& m = out["metadata"];
    if (m.contains("labels") && m["labels"].is_object()) {
      m["labels"].erase("pod-template-hash");
      if (m["labels"].empty()) m.erase("labels");
    }
    m.erase("creationTimestamp");
    if (m.empty()) out.erase("metadata");
  }
  return out;
}
}  // namespace

std::string templateHash(const Json& podTemplate, int64_t collisionCount) {
  std::string text = json::dump(normalizeTemplate(podTemplate));
  uint32_t h = 2166136261u;
  for (unsigned char c : text) {
    h ^= c;
    h *= 16777619u;
  }
  if (collisionCount > 0) {
    for (int i = 0; i < 8; ++i) {
      h ^= static_cast<uint8_t>(collisionCount >> (i * 8));
      h *= 16777619u;
    }
  }
  // rand.SafeEncodeString: every digit of the decimal hash mapped to a consonant or digit.
  static const char* alphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string digits = std::to_string(h), out;
  for (char d : digits) out.push_back(alphabet[(d - '0') % 27]);
  return out;
}

bool equalIgnoringHash(const Json& a, const Json& b) {
  return normalizeTemplate(a) == normalizeTemplate(b);
}

int64_t resolveIntOrPercent(const Json& value, int64_t total, bool roundUp, int64_t dflt) {
  if (value.is_number_integer()) return value.get<int64_t>();
  if (!value.is_string()) return dflt;
  std::string s = value.get<std::string>();
  if (s.empty()) return dflt;
  if (s.back() == '%') {
    auto pct = strings::parseInt(s.substr(0, s.size() - 1));
    if (!pct) return dflt;
    double v = static_cast<double>(*pct) * static_cast<double>(total) / 100.0;
    return static_cast<int64_t>(roundUp ? std::ceil(v) : std::floor(v));
  }
  return strings::parseInt(s).value_or(dflt);
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

QueueWorkers::QueueWorkers(std::string name, Sync sync, int workers)
    : name_(std::move(name)), sync_(std::move(sync)), workers_(workers) {}

QueueWorkers::~QueueWorkers() { stop(); }

void QueueWorkers::start() {
  for (int i = 0; i < workers_; ++i)
    threads_.emplace_back([this] {
      std::string key;
      while (queue_.get(&key)) {
        bool ok = false;
        try {
          ok = sync_(key);
        } catch (const std::exception& e) {
          PODIUM_LOG(Error) << name_ << ": sync " << key << " threw: " << e.what();
        }
        if (ok)
          queue_.forget(key);
        else
          queue_.addRateLimited(key);
        queue_.done(key);
      }
    });
}

void QueueWorkers::stop() {
  queue_.shutdown();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace podium::controllers
