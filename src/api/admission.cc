#include "admission.h"

#include <algorithm>
#include <map>

#include "patch.h"
#include "podium/api/selectors.h"
#include "podium/common/strings.h"

namespace podium::api {

namespace {

bool listed(const Json& list, const std::string& value) {
  if (!list.is_array()) return false;
  for (const auto& v : list)
    if (v.is_string() && (v.get<std::string>() == "*" || v.get<std::string>() == value))
      return true;
  return false;
}

const Json& labelsOf(const Json* obj) {
  static const Json kNone = Json::object();
  const Json* l = obj ? json::find(*obj, {"metadata", "labels"}) : nullptr;
  return l && l->is_object() ? *l : kNone;
}

bool selectorMatches(const Json& selector, const Json& labels) {
  if (!selector.is_object() || selector.empty()) return true;
  auto sel = LabelSelector::fromObject(selector);
  return sel && sel->matches(labels);
}

}  // namespace

bool ruleSelects(const Json& rule, const ResourceInfo& r, const std::string& subresource,
                 const std::string& operation) {
  if (!listed(json::at(rule, {"operations"}), operation) ||
      !listed(json::at(rule, {"apiGroups"}), r.group) ||
      !listed(json::at(rule, {"apiVersions"}), r.version))
    return false;
  std::string scope = json::str(rule, "scope", "*");
  if ((scope == "Cluster" && r.namespaced) || (scope == "Namespaced" && !r.namespaced))
    return false;
  const Json& resources = json::at(rule, {"resources"});
  if (!resources.is_array()) return false;
  for (const auto& e : resources) {
    if (!e.is_string()) continue;
    const std::string& s = e.get<std::string>();
    auto slash = s.find('/');
    std::string res = s.substr(0, slash);
    std::string sub = slash == std::string::npos ? "" : s.substr(slash + 1);
    if ((res == "*" || res == r.plural) &&
        (slash == std::string::npos ? subresource.empty()
                                    : !subresource.empty() && (sub == "*" || sub == subresource)))
      return true;
  }
  return false;
}

std::vector<Json> Admission::selected(const std::string& plural, const Request& req,
                                      const Json& obj) {
  std::vector<Json> out;
  int64_t rev = 0;
  auto configs = cacher_.list("/registry/admissionregistration.k8s.io/" + plural + "/", &rev);
  if (configs.empty()) return out;
  std::sort(configs.begin(), configs.end(), [](const CachedObject& a, const CachedObject& b) {
    return json::getString(*a.object, {"metadata", "name"}) <
           json::getString(*b.object, {"metadata", "name"});
  });
  const ResourceInfo& r = req.resource;
  // The labels a namespaceSelector looks at: the object's namespace's (a Namespace's own).
  Json nsLabels;
  bool nsScoped = r.namespaced || (r.group.empty() && r.plural == "namespaces");
  if (r.namespaced) {
    if (auto ns = cacher_.get("/registry/core/namespaces/" + req.ns))
      nsLabels = labelsOf(ns->object.get());
  } else if (nsScoped) {
    nsLabels = labelsOf(&obj);
  }
  for (const auto& c : configs) {
    const Json& hooks = json::at(*c.object, {"webhooks"});
    if (!hooks.is_array()) continue;
    for (const auto& w : hooks) {
      const Json& rules = json::at(w, {"rules"});
      if (!rules.is_array() || std::none_of(rules.begin(), rules.end(), [&](const Json& rule) {
            return ruleSelects(rule, r, req.subresource, req.operation);
          }))
        continue;
      if (nsScoped && !selectorMatches(json::at(w, {"namespaceSelector"}), nsLabels)) continue;
      const Json& objSel = json::at(w, {"objectSelector"});
      if (!selectorMatches(objSel, labelsOf(&obj)) &&
          !(req.old && selectorMatches(objSel, labelsOf(req.old))))
        continue;
      out.push_back(w);
    }
  }
  return out;
}

WebhookCaller httpsWebhookCaller() {
  return [](const WebhookTarget& t, const std::string& body,
            std::chrono::milliseconds timeout) -> Expected<std::string, std::string> {
    auto reply = httpsRequest(
        t.backend, "POST", t.path, body,
        {{"Content-Type", "application/json"}, {"Accept", "application/json"}}, timeout);
    if (!reply) return Unexpected(reply.error());
    if (reply->status != 200)
      return Unexpected("POST \"https://" + t.backend.serverName + t.path +
                        "\": the server answered " + std::to_string(reply->status));
    return std::move(reply->body);
  };
}

Expected<WebhookTarget, std::string> Admission::targetOf(const Json& cc) {
  WebhookTarget t;
  std::string ca = caBundleOf(cc);
  if (const Json& url = json::at(cc, {"url"}); url.is_string()) {
    std::string u = url.get<std::string>();
    if (u.rfind("https://", 0) != 0) return Unexpected("webhook URL " + u + " is not https");
    std::string rest = u.substr(8);
    auto slash = rest.find('/');
    std::string hostport = rest.substr(0, slash);
    t.path = slash == std::string::npos ? "/" : rest.substr(slash);
    auto colon = hostport.rfind(':');
    if (colon != std::string::npos && hostport.find(']') == std::string::npos) {
      auto p = strings::parseInt(hostport.substr(colon + 1));
      if (!p || *p <= 0 || *p > 65535) return Unexpected("bad port in webhook URL " + u);
      t.backend.port = static_cast<int>(*p);
      hostport = hostport.substr(0, colon);
    }
    t.backend.host = t.backend.serverName = hostport;
    t.backend.caBundle = ca;
    return t;
  }
  const Json& svcRef = json::at(cc, {"service"});
  auto b = serviceBackend(cacher_, json::str(svcRef, "namespace"), json::str(svcRef, "name"),
                          json::integer(svcRef, "port", 443));
  if (!b) return Unexpected(b.error());
  t.backend = std::move(*b);
  t.backend.caBundle = ca;
  t.path = json::str(svcRef, "path", "/");
  return t;
}

Expected<Json, ApiError> Admission::call(const Json& w, const Request& req, const Json& obj,
                                         std::vector<std::string>* warnings) {
  const ResourceInfo& r = req.resource;
  std::string name = json::str(w, "name");
  std::string uid = strings::uuid4();
  Json kind = {{"group", r.group}, {"version", r.version}, {"kind", r.kind}};
  Json resource = {{"group", r.group}, {"version", r.version}, {"resource", r.plural}};
  Json request = {{"uid", uid},
                  {"kind", kind},
                  {"resource", resource},
                  {"requestKind", kind},
                  {"requestResource", resource},
                  {"name", req.name},
                  {"operation", req.operation},
                  {"userInfo", Json::object()},
                  {"object", obj},
                  {"oldObject", req.old ? *req.old : Json()},
                  {"dryRun", req.dryRun},
                  {"options", Json()}};
  static const std::map<std::string, std::string> kOptions = {
      {"CREATE", "CreateOptions"}, {"UPDATE", "UpdateOptions"}, {"DELETE", "DeleteOptions"}};
  if (auto o = kOptions.find(req.operation); o != kOptions.end())
    request["options"] = {{"apiVersion", "meta.k8s.io/v1"}, {"kind", o->second}};
  if (r.namespaced) request["namespace"] = req.ns;
  if (!req.subresource.empty()) {
    request["subResource"] = req.subresource;
    request["requestSubResource"] = req.subresource;
  }
  Json review = {
      {"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"request", request}};
  auto fail = [&](const std::string& why) -> Expected<Json, ApiError> {
    if (json::str(w, "failurePolicy", "Fail") == "Ignore") return Json();
    return Unexpected(ApiError::internal("failed calling webhook \"" + name + "\": " + why));
  };
  auto target = targetOf(json::at(w, {"clientConfig"}));
  if (!target) return fail("failed to call webhook: " + target.error());
  auto timeout = std::chrono::seconds(json::integer(w, "timeoutSeconds", 10));
  auto answer = caller_(*target, json::dump(review), timeout);
  if (!answer) return fail("failed to call webhook: " + answer.error());
  auto parsed = json::parse(*answer);
  if (!parsed) return fail("received invalid webhook response: " + parsed.error());
  const Json& response = json::at(parsed->value, {"response"});
  if (!response.is_object()) return fail("webhook response was absent");
  if (json::str(response, "uid") != uid)
    return fail("expected response.uid=\"" + uid + "\", got \"" + json::str(response, "uid") +
                "\"");
  if (warnings && json::at(response, {"warnings"}).is_array())
    for (const auto& m : response["warnings"])
      if (m.is_string()) warnings->push_back(m.get<std::string>());
  if (!json::boolean(response, "allowed")) {
    const Json& st = json::at(response, {"status"});
    int code = static_cast<int>(json::integer(st, "code", 0));
    std::string msg = json::str(st, "message");
    std::string denied = "admission webhook \"" + name + "\" denied the request";
    return Unexpected(
        ApiError(code < 400 ? 400 : code, json::str(st, "reason"),
                 msg.empty() ? denied + " without explanation" : denied + ": " + msg));
  }
  return response;
}

Expected<bool, ApiError> Admission::mutate(const Request& req, Json& obj,
                                           std::vector<std::string>* warnings) {
  if (req.resource.group == "admissionregistration.k8s.io") return false;
  auto hooks = selected("mutatingwebhookconfigurations", req, obj);
  std::vector<size_t> again;  // IfNeeded webhooks that a later one may have changed things for
  size_t lastChange = 0;
  bool changed = false;
  auto run = [&](size_t i) -> Expected<void, ApiError> {
    const Json& w = hooks[i];
    auto resp = call(w, req, obj, warnings);
    if (!resp) return Unexpected(resp.error());
    const Json& patch = json::at(*resp, {"patch"});
    if (!patch.is_string() || patch.get<std::string>().empty()) return {};
    auto bad = [&](const std::string& why) {
      return ApiError::internal("failed calling webhook \"" + json::str(w, "name") + "\": " + why);
    };
    if (json::str(*resp, "patchType") != "JSONPatch")
      return Unexpected(bad("unsupported patchType \"" + json::str(*resp, "patchType") + "\""));
    auto text = strings::base64Decode(patch.get<std::string>());
    if (!text) return Unexpected(bad("the patch is not base64"));
    auto patched = applyJsonPatch(obj, *text);
    if (!patched) return Unexpected(bad("the patch does not apply: " + patched.error().message()));
    if (*patched != obj) {
      obj = std::move(*patched);
      changed = true;
      lastChange = i;
    }
    return {};
  };
  for (size_t i = 0; i < hooks.size(); ++i) {
    if (auto r = run(i); !r) return Unexpected(r.error());
    if (json::str(hooks[i], "reinvocationPolicy") == "IfNeeded") again.push_back(i);
  }
  // Once more for IfNeeded webhooks that ran before a later webhook changed the object.
  for (size_t i : again)
    if (changed && i < lastChange)
      if (auto r = run(i); !r) return Unexpected(r.error());
  return changed;
}

Expected<void, ApiError> Admission::validate(const Request& req, const Json& obj,
                                             std::vector<std::string>* warnings) {
  if (req.resource.group == "admissionregistration.k8s.io") return {};
  for (const auto& w : selected("validatingwebhookconfigurations", req, obj))
    if (auto resp = call(w, req, obj, warnings); !resp) return Unexpected(resp.error());
  return {};
}

Expected<void, ApiError> Admission::review(const Request& req, const Json& obj) {
  if (req.resource.group == "admissionregistration.k8s.io") return {};
  for (const char* kind : {"mutatingwebhookconfigurations", "validatingwebhookconfigurations"})
    for (const auto& w : selected(kind, req, obj))
      if (auto resp = call(w, req, obj, nullptr); !resp) return Unexpected(resp.error());
  return {};
}

}  // namespace podium::api
