#include "podium/client/workqueue.h"

#include <algorithm>
#include <cmath>

namespace podium::client {

using SteadyClock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kFakeClockPoll{20};

WorkQueue::WorkQueue(std::chrono::milliseconds baseDelay, std::chrono::milliseconds maxDelay,
                     Clock& clock)
    : baseDelay_(baseDelay), maxDelay_(maxDelay), clock_(clock) {}

void WorkQueue::add(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shuttingDown_ || dirty_.count(key)) return;
  dirty_.insert(key);
  if (processing_.count(key)) return;  // queued again by done()
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::addAfter(const std::string& key, std::chrono::milliseconds delay) {
  if (delay.count() <= 0) return add(key);
  std::lock_guard<std::mutex> lock(mu_);
  if (shuttingDown_) return;
  auto due = clock_.monotonic() + delay;
  auto [it, inserted] = waiting_.emplace(key, due);
  if (!inserted && due < it->second) it->second = due;
  cv_.notify_all();
}

void WorkQueue::addRateLimited(const std::string& key) {
  std::chrono::milliseconds delay;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int n = failures_[key]++;
    double d = static_cast<double>(baseDelay_.count()) * std::pow(2.0, std::min(n, 30));
    delay = std::chrono::milliseconds(
        static_cast<int64_t>(std::min(d, static_cast<double>(maxDelay_.count()))));
  }
  addAfter(key, delay);
}

void WorkQueue::forget(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_.erase(key);
}

int WorkQueue::retries(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

void WorkQueue::promoteDueLocked(SteadyClock::time_point now) {
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->second > now) {
      ++it;
      continue;
    }
    std::string key = it->first;
    it = waiting_.erase(it);
    if (dirty_.count(key)) continue;
    dirty_.insert(key);
    if (!processing_.count(key)) queue_.push_back(key);
  }
}

bool WorkQueue::get(std::string* key) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    promoteDueLocked(clock_.monotonic());
    if (!queue_.empty()) break;
    if (shuttingDown_) return false;
    if (waiting_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto due = std::min_element(waiting_.begin(), waiting_.end(), [](const auto& a, const auto& b) {
                 return a.second < b.second;
               })->second;
    // The wait is real time; the clock says when a key is due (a fake clock only moves when
    // its test moves it, so wait briefly and look again).
    SteadyClock::duration left = due - clock_.monotonic();
    if (&clock_ != &realClock()) left = std::min<SteadyClock::duration>(left, kFakeClockPoll);
    cv_.wait_for(lock, left);
  }
  *key = queue_.front();
  queue_.pop_front();
  processing_.insert(*key);
  dirty_.erase(*key);
  return true;
}

void WorkQueue::done(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  processing_.erase(key);
  if (dirty_.count(key)) {
    queue_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shuttingDown_ = true;
  queue_.clear();
  waiting_.clear();
  cv_.notify_all();
}

size_t WorkQueue::length() {
  std::lock_guard<std::mutex> lock(mu_);
  promoteDueLocked(clock_.monotonic());
  return queue_.size();
}

bool WorkQueue::queued(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  promoteDueLocked(clock_.monotonic());
  return std::find(queue_.begin(), queue_.end(), key) != queue_.end();
}

std::optional<std::chrono::milliseconds> WorkQueue::delayOf(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = waiting_.find(key);
  if (it == waiting_.end()) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(it->second - clock_.monotonic());
}

}  // namespace podium::client
