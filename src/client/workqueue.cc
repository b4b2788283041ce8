#include "podium/client/workqueue.h"

#include <algorithm>
#include <cmath>

namespace podium::client {

using SteadyClock = std::chrono::steady_clock;

WorkQueue::WorkQueue(std::chrono::milliseconds baseDelay, std::chrono::milliseconds maxDelay)
    : baseDelay_(baseDelay), maxDelay_(maxDelay) {}

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
  delayed_.emplace(SteadyClock::now() + delay, key);
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
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    std::string key = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    if (dirty_.count(key)) continue;
    dirty_.insert(key);
    if (!processing_.count(key)) queue_.push_back(key);
  }
}

bool WorkQueue::get(std::string* key) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    promoteDueLocked(SteadyClock::now());
    if (!queue_.empty()) break;
    if (shuttingDown_) return false;
    if (delayed_.empty())
      cv_.wait(lock);
    else
      cv_.wait_until(lock, delayed_.begin()->first);
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
  delayed_.clear();
  cv_.notify_all();
}

size_t WorkQueue::length() {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

}  // namespace podium::client
