#pragma once

// A watch answered over HTTP (kubectl get -w, informers): the cache watcher's events as a
// stream of JSON lines in the shape the client asked for (objects, Table rows or metadata),
// with bookmarks, the initial-events-end marker and the timeoutSeconds deadline.

#include <atomic>

#include "http_codec.h"
#include "podium/api/http.h"
#include "podium/api/storage.h"
#include "printers.h"

namespace podium::api {

class WatchStream : public ResponseStream {
 public:
  WatchStream(Storage& storage, ResourcePtr resource, WatchHandle handle, Shape shape,
              bool bookmarks, bool initialEventsEnd, int64_t timeoutSeconds, Clock& clock,
              std::string includeObject, std::chrono::milliseconds bookmarkInterval,
              bool serverSentEvents = false)
      : storage_(storage),
        sse_(serverSentEvents),
        resource_(std::move(resource)),
        handle_(std::move(handle)),
        shape_(shape),
        bookmarks_(bookmarks),
        initialEventsEnd_(initialEventsEnd),
        clock_(clock),
        includeObject_(std::move(includeObject)),
        bookmarkInterval_(bookmarkInterval) {
    auto now = clock_.monotonic();
    deadline_ = timeoutSeconds > 0 ? now + std::chrono::seconds(timeoutSeconds)
                                   : now + std::chrono::hours(24 * 365);
    lastSent_ = now;
    initialLeft_ = handle_.watcher->initialEvents();
  }
  ~WatchStream() override { cancel(); }

  void start(std::function<void()> wake) override { handle_.watcher->setWakeup(std::move(wake)); }

  bool poll(std::string& out) override {
    std::vector<CacheWatcher::Event> events;
    bool open = handle_.watcher->drain(events);
    for (const auto& ev : events) {
      emit(ev.type == WatchEventType::Added      ? "ADDED"
           : ev.type == WatchEventType::Modified ? "MODIFIED"
                                                 : "DELETED",
           handle_.convert(ev.object), out);
      if (initialLeft_ > 0 && --initialLeft_ == 0 && initialEventsEnd_) bookmark(out, true);
    }
    if (initialEventsEnd_ && !initialSent_ && initialLeft_ == 0 && events.empty() &&
        handle_.watcher->initialEvents() == 0)
      bookmark(out, true);
    auto now = clock_.monotonic();
    if (!out.empty()) lastSent_ = now;
    if (bookmarks_ && events.empty() && now - lastSent_ >= bookmarkInterval_) {
      bookmark(out, false);
      lastSent_ = now;
    }
    if (!open) return false;  // overflowed: the client relists
    return now < deadline_;
  }

  int64_t pollIntervalMs() override {
    auto now = clock_.monotonic();
    auto untilDeadline =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - now).count();
    int64_t next =
        bookmarks_
            ? std::chrono::duration_cast<std::chrono::milliseconds>(bookmarkInterval_).count()
            : 300000;
    return std::max<int64_t>(1, std::min<int64_t>(next, untilDeadline));
  }

  void cancel() override {
    if (!cancelled_.exchange(true)) storage_.stopWatch(handle_);
  }

 private:
  void emit(const char* type, const ObjectPtr& obj, std::string& out) {
    Json payload;
    if (shape_ == Shape::Table) {
      TableOptions to;
      to.includeObject = includeObject_.empty() ? "Metadata" : includeObject_;
      to.noHeaders = sentHeaders_;
      payload = toTable(*resource_, {obj}, to, clock_.now());
      payload["metadata"]["resourceVersion"] =
          json::getString(*obj, {"metadata", "resourceVersion"});
      sentHeaders_ = true;
    } else if (shape_ == Shape::PartialMetadata) {
      payload = partialMetadata(*obj);
    }
    Json ev = {{"type", type}};
    std::string line = "{\"type\":\"" + std::string(type) + "\",\"object\":" +
                       (shape_ == Shape::Object ? json::dump(*obj) : json::dump(payload)) + "}";
    frame(line, out);
  }

  void bookmark(std::string& out, bool initialEnd) {
    Json meta = {{"resourceVersion", std::to_string(handle_.watcher->caughtUp())}};
    if (initialEnd) {
      meta["annotations"] = {{"k8s.io/initial-events-end", "true"}};
      initialSent_ = true;
    }
    Json obj = {
        {"kind", resource_->kind}, {"apiVersion", resource_->apiVersion()}, {"metadata", meta}};
    frame("{\"type\":\"BOOKMARK\",\"object\":" + json::dump(obj) + "}", out);
  }

  // A JSON line, or (for a browser's EventSource) a server-sent event carrying it.
  void frame(const std::string& event, std::string& out) const {
    if (sse_) out += "data: ";
    out += event;
    out += sse_ ? "\n\n" : "\n";
  }

  Storage& storage_;
  bool sse_;
  ResourcePtr resource_;
  WatchHandle handle_;
  Shape shape_;
  bool bookmarks_;
  bool initialEventsEnd_;
  bool initialSent_ = false;
  size_t initialLeft_ = 0;
  bool sentHeaders_ = false;
  Clock& clock_;
  std::string includeObject_;
  std::chrono::milliseconds bookmarkInterval_;
  std::chrono::steady_clock::time_point deadline_, lastSent_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace podium::api
