#pragma once

// Fakes for unit tests of every part that acts through a client::Client (Kubernetes' fake
// clientset habit): an in-memory API that keeps objects with resourceVersions, serves watches
// from its history, records every call as an action, and fails chosen calls on request; and a
// clock that only moves when the test moves it.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "podium/client/client.h"
#include "podium/client/informer_factory.h"
#include "podium/common/time.h"

namespace podium::testing {

// 2026-01-01T00:00:00Z, and a monotonic time of its own; advance() moves both.
class FakeClock : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override;
  std::chrono::steady_clock::time_point monotonic() const override;
  void advance(std::chrono::milliseconds d);

 private:
  mutable std::mutex mu_;  // guards offset_
  std::chrono::milliseconds offset_{0};
};

// One call made on the fake: "get", "list", "watch", "create", "update", "patch", "apply",
// "delete", "bind".
struct Action {
  std::string verb;
  std::string resource;  // plural
  std::string ns, name, subresource;
  Json object;  // what was sent (create/update/patch/apply), the delete options otherwise
};

class FakeClient : public client::Client {
 public:
  // Serves the built-in resources Podium's parts use (pods, services, deployments, ...).
  explicit FakeClient(Clock& clock);
  ~FakeClient() override;

  // Serves one more resource (a custom resource appearing later, say).
  void serve(const client::Resource& r, const std::string& kind, bool namespaced = true);
  // Puts an object straight into the store (no action recorded) and returns it as stored,
  // with uid, resourceVersion and creationTimestamp filled in.
  Json add(const client::Resource& r, Json obj);
  // The stored object, or nullptr.
  client::ObjectPtr object(const client::Resource& r, const std::string& ns,
                           const std::string& name) const;
  std::vector<client::ObjectPtr> objects(const client::Resource& r,
                                         const std::string& ns = "") const;
  // The newest resourceVersion of any change to `r` ("0" when none).
  std::string latestResourceVersion(const client::Resource& r) const;

  // Ends every open watch (as a server does when it restarts or drops a slow reader).
  void closeWatches();
  // The next `times` calls of `verb` on `plural` fail with `error`.
  void failNext(const std::string& verb, const std::string& plural, api::ApiError error,
                int times = 1);
  // Recorded calls, oldest first; filtered by verb and resource when given. Reads (get, list,
  // watch) are recorded too.
  std::vector<Action> actions(const std::string& verb = "", const std::string& plural = "") const;
  // Writes only (create, update, patch, apply, delete, bind).
  std::vector<Action> writes() const;
  void clearActions();
  // What getRaw answers (the aggregated metrics APIs); NotFound until set.
  void setRaw(std::function<client::Result(const std::string& path)> handler);

  // client::Client
  client::Result get(const client::Resource& r, const std::string& ns,
                     const std::string& name) override;
  Expected<client::List, api::ApiError> list(const client::Resource& r, const std::string& ns,
                                             const client::ListOptions& options) override;
  Expected<client::WatchPtr, api::ApiError> watch(const client::Resource& r, const std::string& ns,
                                                  const client::ListOptions& options) override;
  client::Result create(const client::Resource& r, const std::string& ns, const Json& obj) override;
  client::Result update(const client::Resource& r, const std::string& ns, const Json& obj,
                        const std::string& subresource) override;
  client::Result patch(const client::Resource& r, const std::string& ns, const std::string& name,
                       const Json& mergePatch, const std::string& subresource) override;
  client::Result apply(const client::Resource& r, const std::string& ns, const Json& config,
                       bool force, DryRun dryRun) override;
  client::Result remove(const client::Resource& r, const std::string& ns, const std::string& name,
                        const client::DeleteOptions& options) override;
  Expected<void, api::ApiError> bind(const std::string& ns, const std::string& pod,
                                     const std::string& uid, const std::string& node) override;
  client::Result getScale(const client::Resource& r, const std::string& ns,
                          const std::string& name) override;
  client::Result getRaw(const std::string& path) override;
  client::Result requestCertificate(const std::string& ns, const std::string& serviceAccount,
                                    const Json& request) override;
  std::vector<client::Resource> namespacedResources() override;
  std::vector<client::Resource> allResources() override;
  std::optional<client::Resource> resourceFor(const std::string& apiVersion,
                                              const std::string& kind) override;
  bool namespaced(const client::Resource& r) override;

 private:
  struct Served {
    client::Resource resource;
    std::string kind;
    bool namespaced;
  };
  struct Change {
    int64_t rv;
    std::string resource;  // key of the resource
    client::EventType type;
    client::ObjectPtr object;
  };
  class FakeWatch;

  static std::string keyOf(const client::Resource& r);
  std::optional<api::ApiError> failure(const std::string& verb, const std::string& plural);
  void record(Action a);
  const Served* servedLocked(const client::Resource& r) const;
  // The stored object, or nullptr (also for a resource not served).
  Json* findLocked(const client::Resource& r, const std::string& ns, const std::string& name);
  client::Result writeLocked(const client::Resource& r, const std::string& ns, Json obj,
                             const std::string& subresource, bool create);
  void emitLocked(const client::Resource& r, client::EventType type, const Json& obj);
  api::ApiError notFound(const client::Resource& r, const std::string& name) const;
  bool selected(const client::ListOptions& o, const std::string& ns, const Json& obj) const;

  Clock& clock_;
  mutable std::mutex mu_;  // guards everything below
  std::map<std::string, Served> served_;
  std::map<std::string, std::map<std::string, Json>> objects_;  // resource -> ns/name -> object
  std::vector<Change> history_;
  std::map<std::string, int64_t> latest_;  // resource -> newest change
  int64_t rv_ = 100;
  int64_t uids_ = 0;
  std::vector<Action> actions_;
  std::function<client::Result(const std::string&)> raw_;
  struct Failure {
    std::string verb, plural;
    api::ApiError error;
    int times;
  };
  std::vector<Failure> failures_;
  std::set<FakeWatch*> watches_;
};

// Waits (up to `timeout`) until every started informer of `informers` has seen the fake's
// newest change to its resource: what a test does between a write and the next sync, instead
// of sleeping.
bool settle(client::InformerFactory& informers, const FakeClient& fake,
            std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Waits (up to `timeout`) for `condition`; true if it held in time.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace podium::testing
