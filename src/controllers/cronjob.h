#pragma once

#include "podium/client/events.h"
#include "util.h"

namespace podium::controllers {

// Runs CronJobs as Kubernetes' CronJob controller does: at each time of `spec.schedule` (in
// `spec.timeZone`, UTC by default) a Job from `spec.jobTemplate`, named
// `<cronjob>-<scheduled time in minutes since the epoch>` (so a time is never run twice), owned
// by the CronJob and annotated with `batch.kubernetes.io/cronjob-scheduled-timestamp`. Only the
// most recent missed time is run (more than 100 missed is reported); one older than
// `startingDeadlineSeconds` is skipped. `concurrencyPolicy`: Allow runs beside active Jobs,
// Forbid waits until none is active (the time is run then if still within the deadline),
// Replace deletes the active ones first. `suspend` starts nothing. Status: `active` (references
// to running Jobs), `lastScheduleTime`, `lastSuccessfulTime`; finished Jobs beyond
// `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` are deleted oldest first. The next
// time is waited for with the injected clock.
class CronJobController : public client::Controller {
 public:
  CronJobController(client::InformerFactory& informers, client::EventRecorder& events,
                    int workers = 1);
  ~CronJobController() override { stop(); }

 protected:
  SyncResult sync(const std::string& key) override;

 private:
  client::EventRecorder& events_;
  client::Informer& cronJobs_;
  client::Informer& jobs_;
};

}  // namespace podium::controllers
