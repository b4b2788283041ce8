#include "podium/client/leader_election.h"

#include "podium/client/objects.h"
#include "podium/common/log.h"

namespace podium::client {

LeaderElector::LeaderElector(Client& client, Clock& clock, LeaderElectionConfig config,
                             std::function<void()> onStartedLeading,
                             std::function<void()> onStoppedLeading)
    : client_(client),
      clock_(clock),
      config_(std::move(config)),
      onStarted_(std::move(onStartedLeading)),
      onStopped_(std::move(onStoppedLeading)) {}

void LeaderElector::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void LeaderElector::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void LeaderElector::run() {
  while (true) {
    bool ok = tryAcquireOrRenew();
    auto now = clock_.monotonic();
    if (ok) {
      lastRenewed_ = now;
      if (!leading_.exchange(true)) {
        PODIUM_LOG(Info) << "leader election: " << config_.identity << " leads " << config_.ns
                         << "/" << config_.name;
        if (onStarted_) onStarted_();
      }
    } else if (leading_ && now - lastRenewed_ >= config_.renewDeadline) {
      // Could not renew in time: another may take the lease once it expires, so stop first.
      leading_ = false;
      PODIUM_LOG(Warn) << "leader election: " << config_.identity << " lost " << config_.ns << "/"
                       << config_.name;
      if (onStopped_) onStopped_();
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, config_.retryPeriod, [this] { return stopping_; })) break;
  }
  if (leading_.exchange(false)) {
    if (onStopped_) onStopped_();
    release();
  }
}

bool LeaderElector::tryAcquireOrRenew() {
  auto now = clock_.monotonic();
  std::string nowText = timefmt::rfc3339Micro(clock_.now());
  int64_t seconds = std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(
                                             config_.leaseDuration + std::chrono::milliseconds(999))
                                             .count());
  auto current = client_.get(resources::kLeases, config_.ns, config_.name);
  if (!current) {
    if (current.error().code() != 404) return false;
    Json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", config_.name}, {"namespace", config_.ns}}},
                  {"spec",
                   {{"holderIdentity", config_.identity},
                    {"leaseDurationSeconds", seconds},
                    {"acquireTime", nowText},
                    {"renewTime", nowText},
                    {"leaseTransitions", 0}}}};
    if (!client_.create(resources::kLeases, config_.ns, lease)) return false;
    observedHolder_ = config_.identity;
    observedRenew_ = nowText;
    observedAt_ = now;
    return true;
  }
  const Json& spec = at(*current, {"spec"});
  std::string holder = json::str(spec, "holderIdentity");
  std::string renew = json::str(spec, "renewTime");
  if (holder != observedHolder_ || renew != observedRenew_) {
    observedHolder_ = holder;
    observedRenew_ = renew;
    observedAt_ = now;
  }
  // Another holder's lease counts as held until it has gone unrenewed for its duration (as
  // this candidate has watched it).
  auto duration = std::chrono::seconds(json::integer(spec, "leaseDurationSeconds", seconds));
  if (!holder.empty() && holder != config_.identity && now < observedAt_ + duration) return false;
  Json next = *current;
  Json& s = next["spec"];
  if (holder != config_.identity) {
    s["acquireTime"] = nowText;
    s["leaseTransitions"] = json::integer(spec, "leaseTransitions", 0) + (holder.empty() ? 0 : 1);
  }
  s["holderIdentity"] = config_.identity;
  s["leaseDurationSeconds"] = seconds;
  s["renewTime"] = nowText;
  // The resourceVersion read is the precondition: two candidates never both take it.
  auto written = client_.update(resources::kLeases, config_.ns, next);
  if (!written) return false;
  observedHolder_ = config_.identity;
  observedRenew_ = nowText;
  observedAt_ = now;
  return true;
}

void LeaderElector::release() {
  auto current = client_.get(resources::kLeases, config_.ns, config_.name);
  if (!current || json::getString(*current, {"spec", "holderIdentity"}) != config_.identity) return;
  Json next = *current;
  next["spec"]["holderIdentity"] = "";
  next["spec"]["leaseDurationSeconds"] = 1;
  if (auto r = client_.update(resources::kLeases, config_.ns, next); !r)
    PODIUM_LOG(Debug) << "leader election: release: " << r.error().message();
}

}  // namespace podium::client
