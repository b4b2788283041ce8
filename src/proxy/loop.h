#pragma once

// One thread's event loop: epoll (edge-triggered) for sockets, a timer heap, and a queue of
// functions posted from other threads (woken through an eventfd). Everything registered with a
// loop runs on its thread. Objects that own watched sockets are destroyed through
// destroyLater(), after the current batch of events, so no event reaches a deleted watcher.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <vector>

namespace podium::proxy {

class Watcher {
 public:
  virtual ~Watcher() = default;
  virtual void onEvents(uint32_t events) = 0;
};

class Deletable {
 public:
  virtual ~Deletable() = default;
};

class EventLoop {
 public:
  using Task = std::function<void()>;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Watches fd for `events` (EPOLLIN/EPOLLOUT/...; edge-triggered is added).
  bool add(int fd, uint32_t events, Watcher* watcher);
  bool modify(int fd, uint32_t events, Watcher* watcher);
  void remove(int fd);
  // Deletes `obj` after the events being dispatched now.
  void destroyLater(Deletable* obj) { graveyard_.emplace_back(obj); }

  // Runs `task` on the loop after `ms` milliseconds; returns an id for cancel().
  uint64_t after(int64_t ms, Task task);
  void cancel(uint64_t timerId);
  // Runs `task` on the loop thread soon (thread-safe).
  void post(Task task);

  void run();   // until stop()
  void stop();  // thread-safe
  // Runs for `ms` milliseconds or until stop(), whichever comes first (tests and fuzzing drive
  // a loop on their own thread this way).
  void runFor(int64_t ms);
  int64_t nowMs() const { return now_; }

 private:
  void runUntil(int64_t deadlineMs);  // -1: no deadline
  void drainPosted();
  void runTimers();
  int epfd_ = -1;
  int wakeFd_ = -1;
  bool stopping_ = false;
  int64_t now_ = 0;
  struct Timer {
    int64_t at;
    uint64_t id;
    bool operator>(const Timer& o) const { return at > o.at || (at == o.at && id > o.id); }
  };
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  std::map<uint64_t, Task> timerTasks_;
  uint64_t nextTimer_ = 1;
  std::vector<std::unique_ptr<Deletable>> graveyard_;
  std::mutex postMu_;  // guards posted_
  std::vector<Task> posted_;
};

}  // namespace podium::proxy
