#include "podium/store/compactor.h"

#include "podium/common/log.h"

namespace podium::store {

Compactor::Compactor(Store& store, Clock& clock, std::chrono::milliseconds interval,
                     std::chrono::milliseconds retention)
    : store_(store), clock_(clock), interval_(interval), retention_(retention) {
  thread_ = std::thread([this] { run(); });
}

Compactor::~Compactor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Compactor::tick() {
  auto now = clock_.monotonic();
  samples_.emplace_back(now, store_.currentRevision());
  int64_t target = 0;
  while (!samples_.empty() && now - samples_.front().first >= retention_) {
    target = samples_.front().second;
    samples_.pop_front();
  }
  if (target > store_.compactedRevision()) {
    auto r = store_.compact(target);
    if (!r)
      PODIUM_LOG(Warn) << "compaction to " << target << " failed: " << r.error().message;
    else
      PODIUM_LOG(Debug) << "compacted store history up to revision " << *r;
  }
}

void Compactor::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (cv_.wait_for(lock, interval_, [this] { return stop_; })) break;
    lock.unlock();
    tick();
    lock.lock();
  }
}

}  // namespace podium::store
