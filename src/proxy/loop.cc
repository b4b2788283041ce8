#include "loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>

namespace podium::proxy {

namespace {
int64_t monotonicMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

EventLoop::EventLoop() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the wake-up
  epoll_ctl(epfd_, EPOLL_CTL_ADD, wakeFd_, &ev);
  now_ = monotonicMs();
}

EventLoop::~EventLoop() {
  graveyard_.clear();
  close(wakeFd_);
  close(epfd_);
}

bool EventLoop::add(int fd, uint32_t events, Watcher* w) {
  epoll_event ev{};
  ev.events = events | EPOLLET;
  ev.data.ptr = w;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool EventLoop::modify(int fd, uint32_t events, Watcher* w) {
  epoll_event ev{};
  ev.events = events | EPOLLET;
  ev.data.ptr = w;
  return epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void EventLoop::remove(int fd) { epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

uint64_t EventLoop::after(int64_t ms, Task task) {
  uint64_t id = nextTimer_++;
  timers_.push({monotonicMs() + ms, id});
  timerTasks_[id] = std::move(task);
  return id;
}

void EventLoop::cancel(uint64_t id) { timerTasks_.erase(id); }

void EventLoop::post(Task task) {
  {
    std::lock_guard<std::mutex> lock(postMu_);
    posted_.push_back(std::move(task));
  }
  uint64_t one = 1;
  (void)!write(wakeFd_, &one, sizeof one);
}

void EventLoop::stop() {
  post([this] { stopping_ = true; });
}

void EventLoop::drainPosted() {
  uint64_t v;
  while (read(wakeFd_, &v, sizeof v) > 0) {
  }
  std::vector<Task> tasks;
  {
    std::lock_guard<std::mutex> lock(postMu_);
    tasks.swap(posted_);
  }
  for (auto& t : tasks) t();
}

void EventLoop::runTimers() {
  now_ = monotonicMs();
  while (!timers_.empty() && timers_.top().at <= now_) {
    uint64_t id = timers_.top().id;
    timers_.pop();
    auto it = timerTasks_.find(id);
    if (it == timerTasks_.end()) continue;
    Task t = std::move(it->second);
    timerTasks_.erase(it);
    t();
  }
}

void EventLoop::run() { runUntil(-1); }

void EventLoop::runFor(int64_t ms) { runUntil(monotonicMs() + ms); }

void EventLoop::runUntil(int64_t deadline) {
  epoll_event events[256];
  while (!stopping_ && (deadline < 0 || monotonicMs() < deadline)) {
    int timeout = -1;
    while (!timers_.empty() && !timerTasks_.count(timers_.top().id)) timers_.pop();
    if (!timers_.empty())
      timeout = static_cast<int>(std::max<int64_t>(0, timers_.top().at - monotonicMs()));
    if (deadline >= 0) {
      int left = static_cast<int>(std::max<int64_t>(0, deadline - monotonicMs()));
      timeout = timeout < 0 ? left : std::min(timeout, left);
    }
    int n = epoll_wait(epfd_, events, 256, timeout);
    now_ = monotonicMs();
    for (int i = 0; i < n; ++i) {
      auto* w = static_cast<Watcher*>(events[i].data.ptr);
      if (!w) {
        drainPosted();
        continue;
      }
      w->onEvents(events[i].events);
    }
    runTimers();
    graveyard_.clear();
  }
}

}  // namespace podium::proxy
