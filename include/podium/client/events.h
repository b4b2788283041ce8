#pragma once

// Records core/v1 Events about objects, the way client-go's event recorder does: repeats of the
// same (object, reason, message) within ten minutes bump count and lastTimestamp on one Event.

#include <map>
#include <mutex>
#include <string>

#include "podium/client/client.h"
#include "podium/common/time.h"

namespace podium::client {

class EventRecorder {
 public:
  EventRecorder(Client& client, std::string component, std::string host = "",
                Clock& clock = realClock());

  // `type` is "Normal" or "Warning". `fieldPath` names a container ("spec.containers{web}").
  void record(const Json& object, const std::string& type, const std::string& reason,
              const std::string& message, const std::string& fieldPath = "");

 private:
  struct Seen {
    std::string namespace_, name;
    int64_t count = 0;
    std::chrono::steady_clock::time_point last;
  };
  Client& client_;
  std::string component_, host_;
  Clock& clock_;
  std::mutex mu_;  // guards seen_
  std::map<std::string, Seen> seen_;
};

}  // namespace podium::client
