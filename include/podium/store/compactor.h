#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "podium/common/time.h"
#include "podium/store/store.h"

namespace podium::store {

// Keeps a store's watch history to a time window, the way kube-apiserver compacts etcd: every
// `interval` it notes the current revision, and compacts up to the newest revision noted at
// least `retention` ago. Watches that resume within the window always succeed; older ones get
// 410 Expired and relist.
class Compactor {
 public:
  Compactor(Store& store, Clock& clock, std::chrono::milliseconds interval,
            std::chrono::milliseconds retention);
  ~Compactor();  // stops the thread

  // One round of the loop (exposed for tests): records a sample and compacts if due.
  void tick();

 private:
  void run();

  Store& store_;
  Clock& clock_;
  std::chrono::milliseconds interval_, retention_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> samples_;  // tick() only
  std::mutex mu_;                                                                  // guards stop_
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace podium::store
