#include "podium/client/events.h"

#include <cstdio>

#include "podium/common/log.h"

namespace podium::client {

EventRecorder::EventRecorder(Client& client, std::string component, std::string host, Clock& clock)
    : client_(client), component_(std::move(component)), host_(std::move(host)), clock_(clock) {}

void EventRecorder::record(const Json& object, const std::string& type, const std::string& reason,
                           const std::string& message, const std::string& fieldPath) {
  const Json* meta = json::find(object, {"metadata"});
  if (!meta) return;
  std::string ns = json::str(*meta, "namespace");
  if (ns.empty()) ns = "default";  // events about cluster-scoped objects live in default
  std::string uid = json::str(*meta, "uid");
  std::string name = json::str(*meta, "name");
  std::string key = uid + "\n" + reason + "\n" + message + "\n" + fieldPath;
  auto now = clock_.now();
  std::string ts = timefmt::rfc3339(now);
  std::unique_lock<std::mutex> lock(mu_);
  auto it = seen_.find(key);
  auto mono = clock_.monotonic();
  if (it != seen_.end() && mono - it->second.last < std::chrono::minutes(10)) {
    Seen& s = it->second;
    s.count += 1;
    s.last = mono;
    std::string evNs = s.namespace_, evName = s.name;
    int64_t count = s.count;
    lock.unlock();
    auto r =
        client_.patch(resources::kEvents, evNs, evName, {{"count", count}, {"lastTimestamp", ts}});
    if (!r) PODIUM_LOG(Debug) << "event " << evName << ": " << r.error().message();
    return;
  }
  if (seen_.size() > 4096) seen_.clear();
  char suffix[32];
  snprintf(
      suffix, sizeof suffix, "%llx",
      static_cast<unsigned long long>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count()));
  std::string evName = name + "." + suffix;
  seen_[key] = Seen{ns, evName, 1, mono};
  lock.unlock();
  Json involved = {{"kind", json::str(object, "kind")},
                   {"namespace", json::str(*meta, "namespace")},
                   {"name", name},
                   {"uid", uid},
                   {"apiVersion", json::str(object, "apiVersion")},
                   {"resourceVersion", json::str(*meta, "resourceVersion")}};
  if (!fieldPath.empty()) involved["fieldPath"] = fieldPath;
  if (json::str(*meta, "namespace").empty()) involved.erase("namespace");
  Json source = {{"component", component_}};
  if (!host_.empty()) source["host"] = host_;
  Json ev = {{"apiVersion", "v1"},
             {"kind", "Event"},
             {"metadata", {{"name", evName}, {"namespace", ns}}},
             {"involvedObject", involved},
             {"reason", reason},
             {"message", message},
             {"type", type},
             {"source", source},
             {"firstTimestamp", ts},
             {"lastTimestamp", ts},
             {"count", 1},
             {"reportingComponent", component_},
             {"reportingInstance", host_}};
  auto r = client_.create(resources::kEvents, ns, ev);
  if (!r) PODIUM_LOG(Debug) << "event " << evName << ": " << r.error().message();
}

}  // namespace podium::client
