#pragma once

#include "expectations.h"
#include "podium/client/events.h"
#include "util.h"

namespace podium::controllers {

// Runs Jobs to completion: keeps up to `parallelism` pods running until `completions`
// succeed, counts failures against `backoffLimit`, honours `activeDeadlineSeconds` and
// `suspend`, and reports startTime, active/succeeded/failed, completionTime and the
// Complete/Failed conditions. A finished or suspended job's running pods are deleted (a failed
// delete is retried); finished jobs with ttlSecondsAfterFinished are deleted after it.
class JobController : public client::Controller {
 public:
  JobController(client::InformerFactory& informers, client::EventRecorder& events, int workers = 1);
  ~JobController() override { stop(); }

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  SyncResult deleteActive(const Json& job, std::vector<ObjectPtr>& active);

  client::EventRecorder& events_;
  client::Informer& jobs_;
  client::Informer& pods_;
  Expectations expectations_;
};

}  // namespace podium::controllers
