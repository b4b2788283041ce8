#pragma once

// client-go's rate-limited work queue: a key is queued at most once however often it is added,
// is never handed to two workers at the same time (added again while processing, it is queued
// after done()), and can be delayed or retried with per-key exponential back-off. A key delayed
// twice waits for the earlier of the two. Thread-safe.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "podium/common/time.h"

namespace podium::client {

class WorkQueue {
 public:
  // Per-key retry delays grow from `baseDelay` by doubling up to `maxDelay`. Delays are measured
  // on `clock` (its monotonic time).
  explicit WorkQueue(std::chrono::milliseconds baseDelay = std::chrono::milliseconds(5),
                     std::chrono::milliseconds maxDelay = std::chrono::seconds(300),
                     Clock& clock = realClock());

  void add(const std::string& key);
  void addAfter(const std::string& key, std::chrono::milliseconds delay);
  // Re-adds after this key's next back-off delay.
  void addRateLimited(const std::string& key);
  // Resets a key's back-off (call after a successful sync).
  void forget(const std::string& key);
  int retries(const std::string& key);

  // Blocks for the next key. Returns false once shut down and drained.
  bool get(std::string* key);
  // Marks a key from get() as processed.
  void done(const std::string& key);
  void shutdown();
  // Keys ready to be handed out now.
  size_t length();
  // Whether `key` is ready now (queued, not waiting on a delay).
  bool queued(const std::string& key);
  // How long until a delayed `key` is due (nullopt when it is not waiting).
  std::optional<std::chrono::milliseconds> delayOf(const std::string& key);

 private:
  void promoteDueLocked(std::chrono::steady_clock::time_point now);

  const std::chrono::milliseconds baseDelay_, maxDelay_;
  Clock& clock_;
  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::set<std::string> dirty_, processing_;
  std::map<std::string, std::chrono::steady_clock::time_point> waiting_;  // key -> due
  std::map<std::string, int> failures_;
  bool shuttingDown_ = false;
};

}  // namespace podium::client
