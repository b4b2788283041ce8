// Validation of ValidatingWebhookConfiguration and MutatingWebhookConfiguration (Kubernetes'
// pkg/apis/admissionregistration/validation, the rules users meet).

#include <algorithm>
#include <set>

#include "podium/common/strings.h"
#include "validation.h"

namespace podium::api {

using validation::validateEnum;

void validateWebhookConfiguration(const ResourceInfo& r, const Json& obj, FieldErrors& errs) {
  const Json* hooks = json::find(obj, {"webhooks"});
  if (!hooks || !hooks->is_array()) return;
  std::set<std::string> names;
  for (size_t i = 0; i < hooks->size(); ++i) {
    const Json& w = (*hooks)[i];
    std::string path = "webhooks[" + std::to_string(i) + "]";
    std::string name = json::str(w, "name");
    if (name.empty())
      errs.push_back(FieldError::required(path + ".name"));
    else if (std::count(name.begin(), name.end(), '.') < 2)
      errs.push_back(FieldError::invalid(path + ".name", name,
                                         "should be a domain with at least three segments "
                                         "separated by dots"));
    else if (!names.insert(name).second)
      errs.push_back(FieldError::duplicate(path + ".name", name));
    const Json& cc = json::at(w, {"clientConfig"});
    bool url = !json::at(cc, {"url"}).is_null(), service = !json::at(cc, {"service"}).is_null();
    if (url == service)
      errs.push_back(FieldError::required(path + ".clientConfig",
                                          "exactly one of url or service is required"));
    if (url && json::str(cc, "url").rfind("https://", 0) != 0)
      errs.push_back(FieldError::invalid(path + ".clientConfig.url", cc["url"],
                                         "'https' is the only allowed URL scheme"));
    const Json& versions = json::at(w, {"admissionReviewVersions"});
    if (!versions.is_array() ||
        std::find(versions.begin(), versions.end(), Json("v1")) == versions.end())
      errs.push_back(FieldError::required(path + ".admissionReviewVersions",
                                          "must include at least one of v1"));
    const Json& effects = json::at(w, {"sideEffects"});
    if (effects.is_null())
      errs.push_back(
          FieldError::required(path + ".sideEffects", "must specify one of None, NoneOnDryRun"));
    validateEnum(effects, path + ".sideEffects", {"None", "NoneOnDryRun"}, errs);
    validateEnum(json::at(w, {"failurePolicy"}), path + ".failurePolicy", {"Fail", "Ignore"}, errs);
    validateEnum(json::at(w, {"matchPolicy"}), path + ".matchPolicy", {"Equivalent", "Exact"},
                 errs);
    if (r.plural == "mutatingwebhookconfigurations")
      validateEnum(json::at(w, {"reinvocationPolicy"}), path + ".reinvocationPolicy",
                   {"IfNeeded", "Never"}, errs);
    const Json& timeout = json::at(w, {"timeoutSeconds"});
    if (timeout.is_number_integer() && (timeout.get<int64_t>() < 1 || timeout.get<int64_t>() > 30))
      errs.push_back(FieldError::invalid(path + ".timeoutSeconds", timeout,
                                         "the timeout value must be between 1 and 30 seconds"));
    const Json& conditions = json::at(w, {"matchConditions"});
    if (conditions.is_array() && !conditions.empty())
      errs.push_back(FieldError::forbidden(
          path + ".matchConditions",
          "CEL match conditions are not evaluated by this server (no C++ CEL library in "
          "Debian): use rules, namespaceSelector and objectSelector"));
    const Json& rules = json::at(w, {"rules"});
    if (rules.is_array())
      for (size_t j = 0; j < rules.size(); ++j) {
        std::string rp = path + ".rules[" + std::to_string(j) + "]";
        const Json& ops = json::at(rules[j], {"operations"});
        if (ops.is_array())
          for (size_t k = 0; k < ops.size(); ++k)
            validateEnum(ops[k], rp + ".operations[" + std::to_string(k) + "]",
                         {"*", "CONNECT", "CREATE", "DELETE", "UPDATE"}, errs);
        validateEnum(json::at(rules[j], {"scope"}), rp + ".scope", {"*", "Cluster", "Namespaced"},
                     errs);
      }
  }
}

void validateEphemeralContainers(const Json& pod, const Json& old, FieldErrors& errs) {
  const Json& list = json::at(pod, {"spec", "ephemeralContainers"});
  const Json& before = json::at(old, {"spec", "ephemeralContainers"});
  if (!list.is_null() && !list.is_array()) return;  // the schema check names the type
  size_t kept = before.is_array() ? before.size() : 0;
  // Ephemeral containers are added, never changed or removed.
  if (!list.is_array() || list.size() < kept ||
      !std::equal(before.begin(), before.end(), list.begin()))
    errs.push_back(FieldError::forbidden("spec.ephemeralContainers",
                                         "existing ephemeral containers may not be changed"));
  if (!list.is_array()) return;
  std::set<std::string> names, regular;
  for (const char* l : {"containers", "initContainers"})
    for (const auto& c : json::at(pod, {"spec", l})) regular.insert(json::str(c, "name"));
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& c = list[i];
    std::string path = "spec.ephemeralContainers[" + std::to_string(i) + "]";
    std::string name = json::str(c, "name");
    if (name.empty())
      errs.push_back(FieldError::required(path + ".name"));
    else if (regular.count(name) || !names.insert(name).second)
      errs.push_back(FieldError::duplicate(path + ".name", name));
    if (json::str(c, "image").empty()) errs.push_back(FieldError::required(path + ".image"));
    for (const char* f :
         {"ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "resources"})
      if (const Json& v = json::at(c, {f});
          !v.is_null() && !(v.is_object() && v.empty()) && !(v.is_array() && v.empty()))
        errs.push_back(
            FieldError::forbidden(path + "." + f, "cannot be set for an Ephemeral Container"));
    std::string target = json::str(c, "targetContainerName");
    if (!target.empty() && !regular.count(target)) {
      FieldError e;
      e.type = FieldError::Type::NotFound;
      e.field = path + ".targetContainerName";
      e.value = target;
      errs.push_back(e);
    }
  }
}

void validateApiService(const Json& obj, FieldErrors& errs) {
  const Json& spec = json::at(obj, {"spec"});
  std::string group = json::str(spec, "group"), version = json::str(spec, "version");
  if (version.empty()) errs.push_back(FieldError::required("spec.version"));
  std::string want = group.empty() ? version : version + "." + group;
  std::string name = json::getString(obj, {"metadata", "name"});
  if (!version.empty() && name != want)
    errs.push_back(FieldError::invalid("metadata.name", name, "must be " + want));
  const Json& gpm = json::at(spec, {"groupPriorityMinimum"});
  if (!gpm.is_number_integer() || gpm.get<int64_t>() < 1 || gpm.get<int64_t>() > 20000)
    errs.push_back(FieldError::invalid("spec.groupPriorityMinimum", gpm,
                                       "must be positive and less than 20000"));
  const Json& vp = json::at(spec, {"versionPriority"});
  if (!vp.is_number_integer() || vp.get<int64_t>() < 1 || vp.get<int64_t>() > 1000)
    errs.push_back(
        FieldError::invalid("spec.versionPriority", vp, "must be positive and less than 1000"));
  const Json& svc = json::at(spec, {"service"});
  if (svc.is_null()) {
    if (!json::str(spec, "caBundle").empty())
      errs.push_back(FieldError::forbidden("spec.caBundle", "must not be set for a local API"));
    return;
  }
  if (json::str(svc, "namespace").empty())
    errs.push_back(FieldError::required("spec.service.namespace"));
  if (json::str(svc, "name").empty()) errs.push_back(FieldError::required("spec.service.name"));
  if (json::boolean(spec, "insecureSkipTLSVerify") && !json::str(spec, "caBundle").empty())
    errs.push_back(FieldError::invalid("spec.insecureSkipTLSVerify", true,
                                       "may not be true if caBundle is present"));
}

}  // namespace podium::api
