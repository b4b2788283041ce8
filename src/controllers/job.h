#pragma once

#include "expectations.h"
#include "podium/client/events.h"
#include "util.h"

namespace podium::controllers {

// Runs Jobs to completion: keeps up to `parallelism` pods running until `completions`
// succeed, counts failures against `backoffLimit`, honours `activeDeadlineSeconds` and
// `suspend`, and reports startTime, active/succeeded/failed, completionTime and the
// Complete/Failed conditions. Finished jobs with ttlSecondsAfterFinished are deleted.
class JobController {
 public:
  JobController(client::InformerFactory& informers, client::EventRecorder& events);
  void start() { workers_.start(); }
  void stop() { workers_.stop(); }
  bool sync(const std::string& key);

 private:
  client::Client& client_;
  client::EventRecorder& events_;
  client::Informer& jobs_;
  client::Informer& pods_;
  Expectations expectations_;
  QueueWorkers workers_;
};

}  // namespace podium::controllers
