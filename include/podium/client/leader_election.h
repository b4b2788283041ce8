#pragma once

// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it
// (kube-controller-manager --leader-elect): a candidate takes the Lease when it is free or its
// holder stopped renewing it for leaseDuration, renews it every retryPeriod, and gives up
// leading when it could not renew within renewDeadline (another may take over once the lease
// duration has passed). Expiry is judged on the candidate's own monotonic clock, from when it
// last saw the record change, so the hosts' clocks need not agree.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "podium/client/client.h"
#include "podium/common/time.h"

namespace podium::client {

struct LeaderElectionConfig {
  std::string ns = "kube-system";
  std::string name;      // the Lease
  std::string identity;  // this candidate (unique: host name and a random suffix)
  std::chrono::milliseconds leaseDuration{3000};
  std::chrono::milliseconds renewDeadline{2000};
  std::chrono::milliseconds retryPeriod{500};
};

class LeaderElector {
 public:
  // `onStartedLeading` runs (on the elector's thread) when this candidate becomes the leader;
  // `onStoppedLeading` when it loses or gives up the lease (and at stop() while leading).
  LeaderElector(Client& client, Clock& clock, LeaderElectionConfig config,
                std::function<void()> onStartedLeading, std::function<void()> onStoppedLeading);
  ~LeaderElector() { stop(); }
  void start();
  // Stops campaigning; a leader steps down and releases the Lease so a standby takes over at
  // once.
  void stop();
  bool leading() const { return leading_; }
  // One attempt to take or renew the Lease (what the loop does each retryPeriod); for tests.
  bool tryAcquireOrRenew();

 private:
  void run();
  void release();

  Client& client_;
  Clock& clock_;
  LeaderElectionConfig config_;
  std::function<void()> onStarted_, onStopped_;
  std::atomic<bool> leading_{false};
  // The record as last seen, and when (this candidate's clock).
  std::string observedHolder_, observedRenew_;
  std::chrono::steady_clock::time_point observedAt_{};
  std::chrono::steady_clock::time_point lastRenewed_{};
  std::mutex mu_;  // guards stopping_ (with cv_)
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace podium::client
