#pragma once

// Dynamic admission control (Kubernetes' MutatingAdmissionWebhook and
// ValidatingAdmissionWebhook): every create and update of a resource a webhook's rules select
// (and delete, and connect to pods/exec, attach, portforward)
// is sent as an admission.k8s.io/v1 AdmissionReview to the webhook (a URL, or a Service's ready
// endpoint) over HTTPS, verified with the webhook's caBundle. Mutating webhooks run first, in
// the order of their configurations' names and then their list, each seeing the previous one's
// JSONPatch applied (reinvocationPolicy IfNeeded calls a webhook once more if a later one
// changed the object); validating webhooks run after the object's own validation. A denial is
// the webhook's status (400 unless it says otherwise) with Kubernetes' message (`admission
// webhook "x" denied the request: ...`); a webhook that cannot be called fails the request
// (failurePolicy Fail, 500) or is skipped (Ignore). Selection: rules (operations, groups,
// versions, resources with subresources, scope), namespaceSelector over the namespace's labels,
// objectSelector over the object's (new or old) labels. Webhook configurations themselves are
// never sent to webhooks. A DELETE is sent with the object as oldObject and no object; a CONNECT
// with the connect options (PodExecOptions, ...) as the object; either may be refused, by
// mutating webhooks too, and changes nothing. Not yet: matchConditions (refused on create),
// userInfo (the server has no user identities until RBAC).

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "backend.h"
#include "podium/api/cacher.h"
#include "podium/api/resources.h"
#include "podium/api/status.h"
#include "podium/common/expected.h"
#include "podium/common/json.h"

namespace podium::api {

// Where and how to call one webhook.
struct WebhookTarget {
  Backend backend;
  std::string path = "/";
};
// POSTs `body` (JSON) to the target within `timeout`; the answer's body on HTTP 200.
using WebhookCaller = std::function<Expected<std::string, std::string>(
    const WebhookTarget& target, const std::string& body, std::chrono::milliseconds timeout)>;
// The real caller: HTTPS (backend.h), the answer taken only with status 200.
WebhookCaller httpsWebhookCaller();

// Whether a webhook's rule selects this request (exposed for tests).
bool ruleSelects(const Json& rule, const ResourceInfo& r, const std::string& subresource,
                 const std::string& operation);

class Admission {
 public:
  Admission(Cacher& cacher, WebhookCaller caller) : cacher_(cacher), caller_(std::move(caller)) {}

  struct Request {
    const ResourceInfo& resource;
    std::string subresource;  // "", "status", "scale"
    std::string operation;    // "CREATE", "UPDATE", "DELETE" or "CONNECT"
    std::string ns, name;
    const Json* old = nullptr;
    bool dryRun = false;
  };
  // Runs the mutating webhooks over `obj` (true when one changed it); `warnings` gets theirs.
  Expected<bool, ApiError> mutate(const Request& req, Json& obj,
                                  std::vector<std::string>* warnings);
  Expected<void, ApiError> validate(const Request& req, const Json& obj,
                                    std::vector<std::string>* warnings);
  // DELETE (obj null, req.old the object) and CONNECT (obj the options): every selected
  // webhook, mutating ones first, may refuse; nothing is changed.
  Expected<void, ApiError> review(const Request& req, const Json& obj);

 private:
  std::vector<Json> selected(const std::string& plural, const Request& req, const Json& obj);
  // One call: the webhook's response, or the error a failure policy decides on.
  Expected<Json, ApiError> call(const Json& webhook, const Request& req, const Json& obj,
                                std::vector<std::string>* warnings);
  Expected<WebhookTarget, std::string> targetOf(const Json& clientConfig);

  Cacher& cacher_;
  WebhookCaller caller_;
};

}  // namespace podium::api
