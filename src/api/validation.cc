#include "validation.h"

#include <regex>
#include <set>

#include "podium/api/selectors.h"
#include "podium/common/cron.h"
#include "podium/common/strings.h"

namespace podium::api {
namespace validation {

namespace {
const std::regex kLabelRe("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
const std::regex kSubdomainRe("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
const std::regex kDns1035Re("[a-z]([-a-z0-9]*[a-z0-9])?");
const std::regex kQualifiedNameRe("([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]");
const std::regex kLabelValueRe("(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?");
}  // namespace

std::string dns1123Subdomain(const std::string& s) {
  if (s.size() > 253) return "must be no more than 253 characters";
  if (!std::regex_match(s, kSubdomainRe))
    return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
           "or '.', and "
           "must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
           "validation is "
           "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
  return "";
}

std::string dns1123Label(const std::string& s) {
  if (s.size() > 63) return "must be no more than 63 characters";
  if (!std::regex_match(s, kLabelRe))
    return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
           "and must start "
           "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
           "validation is "
           "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
  return "";
}

std::string dns1035Label(const std::string& s) {
  if (s.size() > 63) return "must be no more than 63 characters";
  if (!std::regex_match(s, kDns1035Re))
    return "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
           "an "
           "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
           "'abc-123', regex "
           "used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
  return "";
}

std::string qualifiedName(const std::string& s) {
  std::string name = s;
  size_t slash = s.find('/');
  if (slash != std::string::npos) {
    std::string prefix = s.substr(0, slash);
    name = s.substr(slash + 1);
    if (prefix.empty()) return "prefix part must be non-empty";
    if (auto e = dns1123Subdomain(prefix); !e.empty()) return "prefix part " + e;
    if (name.find('/') != std::string::npos)
      return "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
             "start and end "
             "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
             "used for "
             "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
             "subdomain prefix and "
             "'/' (e.g. 'example.com/MyName')";
  }
  if (name.empty()) return "name part must be non-empty";
  if (name.size() > 63) return "name part must be no more than 63 characters";
  if (!std::regex_match(name, kQualifiedNameRe))
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
           "end with an "
           "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
           "validation is "
           "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
  return "";
}

std::string labelValue(const std::string& s) {
  if (s.size() > 63) return "must be no more than 63 characters";
  if (!std::regex_match(s, kLabelValueRe))
    return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
           "or '.', and "
           "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
           "'12345', regex "
           "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
  return "";
}

std::string pathSegmentName(const std::string& s) {
  if (s == "." || s == "..") return "may not be '" + s + "'";
  if (s.find('/') != std::string::npos) return "may not contain '/'";
  if (s.find('%') != std::string::npos) return "may not contain '%'";
  return "";
}

const Json& at(const Json& obj, const char* key) {
  static const Json null;
  if (!obj.is_object()) return null;
  auto it = obj.find(key);
  return it == obj.end() ? null : *it;
}

void validateEnum(const Json& v, const std::string& path, const std::vector<std::string>& allowed,
                  FieldErrors& errs) {
  if (!v.is_string()) return;
  if (std::find(allowed.begin(), allowed.end(), v.get<std::string>()) == allowed.end())
    errs.push_back(FieldError::notSupported(path, v, allowed));
}

}  // namespace validation

namespace {

using namespace validation;

std::string str(const Json& obj, std::initializer_list<std::string_view> path) {
  return json::getString(obj, path);
}

// Which name rule each kind uses (ValidateObjectMeta's nameFn).
std::string nameProblem(const ResourceInfo& r, const std::string& name) {
  if (r.custom) return r.group.empty() ? "" : dns1123Subdomain(name);
  const std::string& p = r.plural;
  if (r.group.empty() && (p == "namespaces")) return dns1123Label(name);
  if (r.group.empty() && p == "services") return dns1035Label(name);
  if (r.group == "rbac.authorization.k8s.io") return pathSegmentName(name);
  if (r.group.empty() && p == "serviceaccounts") return dns1123Subdomain(name);
  return dns1123Subdomain(name);
}

void validateLabels(const Json& labels, const std::string& path, FieldErrors& errs) {
  if (labels.is_null()) return;
  if (!labels.is_object()) return;
  for (const auto& item : labels.items()) {
    if (auto e = qualifiedName(item.key()); !e.empty())
      errs.push_back(FieldError::invalid(path, item.key(), e));
    if (!item.value().is_string()) continue;
    if (auto e = labelValue(item.value().get<std::string>()); !e.empty())
      errs.push_back(FieldError::invalid(path, item.value(), e));
  }
}

void validateMeta(const ResourceInfo& r, const Json& obj, const Json* old, FieldErrors& errs) {
  const Json& meta = at(obj, "metadata");
  std::string name = str(obj, {"metadata", "name"});
  if (name.empty()) {
    errs.push_back(FieldError::required("metadata.name", "name or generateName is required"));
  } else if (auto e = nameProblem(r, name); !e.empty()) {
    errs.push_back(FieldError::invalid("metadata.name", name, e));
  }
  std::string ns = str(obj, {"metadata", "namespace"});
  if (r.namespaced) {
    if (ns.empty())
      errs.push_back(FieldError::required("metadata.namespace"));
    else if (auto e = dns1123Label(ns); !e.empty())
      errs.push_back(FieldError::invalid("metadata.namespace", ns, e));
  } else if (!ns.empty()) {
    errs.push_back(FieldError::forbidden("metadata.namespace", "not allowed on this type"));
  }
  validateLabels(at(meta, "labels"), "metadata.labels", errs);
  const Json& ann = at(meta, "annotations");
  if (ann.is_object()) {
    size_t total = 0;
    for (const auto& item : ann.items()) {
      total += item.key().size() +
               (item.value().is_string() ? item.value().get_ref<const std::string&>().size() : 0);
      if (auto e = qualifiedName(strings::toLower(item.key())); !e.empty())
        errs.push_back(FieldError::invalid("metadata.annotations", item.key(), e));
    }
    if (total > 262144) {
      FieldError fe = FieldError::tooLong("metadata.annotations", "", 262144);
      fe.detail = "must have at most 262144 bytes";
      fe.type = FieldError::Type::TooLong;
      errs.push_back(fe);
    }
  }
  const Json& fin = at(meta, "finalizers");
  if (fin.is_array())
    for (size_t i = 0; i < fin.size(); ++i)
      if (fin[i].is_string())
        if (auto e = qualifiedName(fin[i].get<std::string>()); !e.empty())
          errs.push_back(
              FieldError::invalid("metadata.finalizers[" + std::to_string(i) + "]", fin[i], e));
  const Json& owners = at(meta, "ownerReferences");
  if (owners.is_array())
    for (size_t i = 0; i < owners.size(); ++i) {
      std::string base = "metadata.ownerReferences[" + std::to_string(i) + "]";
      for (const char* f : {"apiVersion", "kind", "name", "uid"})
        if (json::str(owners[i], f).empty()) errs.push_back(FieldError::required(base + "." + f));
    }
  if (old) {
    std::string oldName = str(*old, {"metadata", "name"});
    if (name != oldName)
      errs.push_back(FieldError::invalid("metadata.name", name, "field is immutable"));
  }
}

void validatePort(const Json& v, const std::string& path, FieldErrors& errs, bool required) {
  if (v.is_null()) {
    if (required) errs.push_back(FieldError::required(path));
    return;
  }
  if (!v.is_number_integer()) return;
  int64_t p = v.get<int64_t>();
  if (p < 1 || p > 65535)
    errs.push_back(FieldError::invalid(path, v, "must be between 1 and 65535, inclusive"));
}

void validateProtocol(const Json& v, const std::string& path, FieldErrors& errs) {
  if (!v.is_string()) return;
  std::string p = v.get<std::string>();
  if (p != "TCP" && p != "UDP" && p != "SCTP")
    errs.push_back(FieldError::notSupported(path, v, {"SCTP", "TCP", "UDP"}));
}

std::string ianaSvcName(const std::string& s) {
  static const std::regex re("[a-z0-9]([a-z0-9-]*[a-z0-9])*");
  if (s.size() > 15) return "must be no more than 15 characters";
  if (!std::regex_match(s, re))
    return "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)";
  if (s.find("--") != std::string::npos) return "must not contain consecutive hyphens";
  bool letter = false;
  for (char c : s) letter = letter || std::isalpha(static_cast<unsigned char>(c));
  if (!letter) return "must contain at least one letter (a-z)";
  return "";
}

void validateContainers(const Json& list, const std::string& path, bool required, bool requireImage,
                        std::set<std::string>& names, FieldErrors& errs) {
  if (!list.is_array() || list.empty()) {
    if (required) errs.push_back(FieldError::required(path));
    return;
  }
  static const std::regex envRe("[-._a-zA-Z][-._a-zA-Z0-9]*");
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& c = list[i];
    std::string base = path + "[" + std::to_string(i) + "]";
    std::string name = json::str(c, "name", "");
    if (name.empty())
      errs.push_back(FieldError::required(base + ".name"));
    else if (auto e = dns1123Label(name); !e.empty())
      errs.push_back(FieldError::invalid(base + ".name", name, e));
    else if (!names.insert(name).second)
      errs.push_back(FieldError::duplicate(base + ".name", name));
    if (requireImage && json::str(c, "image", "").empty())
      errs.push_back(FieldError::required(base + ".image"));
    const Json& ports = at(c, "ports");
    if (ports.is_array()) {
      std::set<std::string> portNames;
      for (size_t j = 0; j < ports.size(); ++j) {
        std::string pb = base + ".ports[" + std::to_string(j) + "]";
        validatePort(at(ports[j], "containerPort"), pb + ".containerPort", errs, true);
        if (!at(ports[j], "hostPort").is_null() && at(ports[j], "hostPort") != 0)
          validatePort(at(ports[j], "hostPort"), pb + ".hostPort", errs, false);
        validateProtocol(at(ports[j], "protocol"), pb + ".protocol", errs);
        std::string pn = json::str(ports[j], "name", "");
        if (!pn.empty()) {
          if (auto e = ianaSvcName(pn); !e.empty())
            errs.push_back(FieldError::invalid(pb + ".name", pn, e));
          else if (!portNames.insert(pn).second)
            errs.push_back(FieldError::duplicate(pb + ".name", pn));
        }
      }
    }
    const Json& env = at(c, "env");
    if (env.is_array())
      for (size_t j = 0; j < env.size(); ++j) {
        std::string en = json::str(env[j], "name", "");
        std::string eb = base + ".env[" + std::to_string(j) + "].name";
        if (en.empty())
          errs.push_back(FieldError::required(eb));
        else if (!std::regex_match(en, envRe))
          errs.push_back(FieldError::invalid(
              eb, en,
              "a valid environment variable name must consist of alphabetic characters, "
              "digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  "
              "or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is "
              "'[-._a-zA-Z][-._a-zA-Z0-9]*')"));
      }
    validateEnum(at(c, "imagePullPolicy"), base + ".imagePullPolicy",
                 {"Always", "IfNotPresent", "Never"}, errs);
    validateEnum(at(c, "terminationMessagePolicy"), base + ".terminationMessagePolicy",
                 {"File", "FallbackToLogsOnError"}, errs);
  }
}

void validatePodSpec(const Json& spec, const std::string& path, FieldErrors& errs,
                     const std::vector<std::string>& restartPolicies = {"Always", "OnFailure",
                                                                        "Never"}) {
  if (!spec.is_object()) {
    errs.push_back(FieldError::required(path + ".containers"));
    return;
  }
  std::set<std::string> names;
  validateContainers(at(spec, "containers"), path + ".containers", true, true, names, errs);
  validateContainers(at(spec, "initContainers"), path + ".initContainers", false, true, names,
                     errs);
  validateEnum(at(spec, "restartPolicy"), path + ".restartPolicy", restartPolicies, errs);
  validateEnum(at(spec, "dnsPolicy"), path + ".dnsPolicy",
               {"ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"}, errs);
  const Json& tgp = at(spec, "terminationGracePeriodSeconds");
  if (tgp.is_number_integer() && tgp.get<int64_t>() < 0)
    errs.push_back(FieldError::invalid(path + ".terminationGracePeriodSeconds", tgp,
                                       "must be greater than or equal to 0"));
  const Json& vols = at(spec, "volumes");
  if (vols.is_array()) {
    std::set<std::string> vnames;
    for (size_t i = 0; i < vols.size(); ++i) {
      std::string vn = json::str(vols[i], "name", "");
      std::string vb = path + ".volumes[" + std::to_string(i) + "].name";
      if (vn.empty())
        errs.push_back(FieldError::required(vb));
      else if (auto e = dns1123Label(vn); !e.empty())
        errs.push_back(FieldError::invalid(vb, vn, e));
      else if (!vnames.insert(vn).second)
        errs.push_back(FieldError::duplicate(vb, vn));
    }
  }
  validateLabels(at(spec, "nodeSelector"), path + ".nodeSelector", errs);
}

void validateNonNegative(const Json& v, const std::string& path, FieldErrors& errs) {
  if (v.is_number_integer() && v.get<int64_t>() < 0)
    errs.push_back(FieldError::invalid(path, v, "must be greater than or equal to 0"));
}

// Deployment, ReplicaSet, StatefulSet, DaemonSet: selector + template.
void validateWorkload(const ResourceInfo& r, const Json& obj, const Json* old, FieldErrors& errs) {
  const Json& spec = at(obj, "spec");
  const Json& selector = at(spec, "selector");
  if (selector.is_null()) {
    errs.push_back(FieldError::required("spec.selector"));
  } else {
    auto sel = LabelSelector::fromObject(selector);
    if (!sel) {
      errs.push_back(FieldError::invalid("spec.selector", selector, sel.error()));
    } else if (sel->empty()) {
      errs.push_back(FieldError::invalid("spec.selector", selector,
                                         "empty selector is invalid for " + r.singular));
    } else {
      const Json& labels = at(at(at(spec, "template"), "metadata"), "labels");
      if (!sel->matches(labels))
        errs.push_back(FieldError::invalid("spec.template.metadata.labels",
                                           labels.is_null() ? Json::object() : labels,
                                           "`selector` does not match template `labels`"));
    }
    const Json& ml = at(selector, "matchLabels");
    validateLabels(ml, "spec.selector.matchLabels", errs);
  }
  validateNonNegative(at(spec, "replicas"), "spec.replicas", errs);
  validateNonNegative(at(spec, "minReadySeconds"), "spec.minReadySeconds", errs);
  validateNonNegative(at(spec, "revisionHistoryLimit"), "spec.revisionHistoryLimit", errs);
  validateLabels(at(at(at(spec, "template"), "metadata"), "labels"),
                 "spec.template.metadata.labels", errs);
  validatePodSpec(at(at(spec, "template"), "spec"), "spec.template.spec", errs, {"Always"});
  if (r.plural == "deployments") {
    const Json& strategy = at(spec, "strategy");
    validateEnum(at(strategy, "type"), "spec.strategy.type", {"Recreate", "RollingUpdate"}, errs);
    if (at(strategy, "type") == "Recreate" && !at(strategy, "rollingUpdate").is_null())
      errs.push_back(
          FieldError::forbidden("spec.strategy.rollingUpdate",
                                "may not be specified when strategy `type` is 'Recreate'"));
    const Json& pds = at(spec, "progressDeadlineSeconds");
    const Json& mrs = at(spec, "minReadySeconds");
    if (pds.is_number_integer() && mrs.is_number_integer() &&
        pds.get<int64_t>() <= mrs.get<int64_t>())
      errs.push_back(FieldError::invalid("spec.progressDeadlineSeconds", pds,
                                         "must be greater than minReadySeconds"));
  }
  if (r.plural == "statefulsets") {
    validateEnum(at(spec, "podManagementPolicy"), "spec.podManagementPolicy",
                 {"OrderedReady", "Parallel"}, errs);
    validateNonNegative(at(at(spec, "ordinals"), "start"), "spec.ordinals.start", errs);
    validateEnum(at(at(spec, "updateStrategy"), "type"), "spec.updateStrategy.type",
                 {"OnDelete", "RollingUpdate"}, errs);
    if (old) {
      Json a = spec, b = at(*old, "spec");
      for (Json* s : {&a, &b})
        for (const char* f : {"replicas", "ordinals", "template", "updateStrategy",
                              "persistentVolumeClaimRetentionPolicy", "minReadySeconds"})
          if (s->is_object()) s->erase(f);
      if (a != b)
        errs.push_back(FieldError::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
            "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
            "'minReadySeconds' are forbidden"));
    }
  }
  if (old && !at(at(*old, "spec"), "selector").is_null() &&
      at(at(*old, "spec"), "selector") != selector)
    errs.push_back(FieldError::invalid("spec.selector", selector, "field is immutable"));
}

// A ReplicationController's selector is a plain map of labels that its template must carry.
void validateReplicationController(const Json& obj, FieldErrors& errs) {
  const Json& spec = at(obj, "spec");
  const Json& selector = at(spec, "selector");
  const Json& labels = at(at(at(spec, "template"), "metadata"), "labels");
  if (!selector.is_object() || selector.empty()) {
    errs.push_back(FieldError::required("spec.selector"));
  } else {
    validateLabels(selector, "spec.selector", errs);
    for (const auto& [k, v] : selector.items())
      if (!labels.is_object() || !labels.contains(k) || labels[k] != v) {
        errs.push_back(FieldError::invalid("spec.template.metadata.labels",
                                           labels.is_null() ? Json::object() : labels,
                                           "`selector` does not match template `labels`"));
        break;
      }
  }
  if (at(spec, "template").is_null()) errs.push_back(FieldError::required("spec.template"));
  validateNonNegative(at(spec, "replicas"), "spec.replicas", errs);
  validateNonNegative(at(spec, "minReadySeconds"), "spec.minReadySeconds", errs);
  validateLabels(labels, "spec.template.metadata.labels", errs);
  validatePodSpec(at(at(spec, "template"), "spec"), "spec.template.spec", errs, {"Always"});
}

void validateService(const Json& obj, const Json* old, FieldErrors& errs) {
  const Json& spec = at(obj, "spec");
  std::string type = json::str(spec, "type", "ClusterIP");
  validateEnum(at(spec, "type"), "spec.type",
               {"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"}, errs);
  const Json& ports = at(spec, "ports");
  bool headless = json::str(spec, "clusterIP", "") == "None";
  if (type != "ExternalName" && !headless && (!ports.is_array() || ports.empty()))
    errs.push_back(FieldError::required("spec.ports"));
  if (type == "ExternalName" && json::str(spec, "externalName", "").empty())
    errs.push_back(FieldError::required("spec.externalName"));
  if (ports.is_array()) {
    std::set<std::string> names;
    std::set<std::string> portProto;
    for (size_t i = 0; i < ports.size(); ++i) {
      const Json& p = ports[i];
      std::string base = "spec.ports[" + std::to_string(i) + "]";
      std::string name = json::str(p, "name", "");
      if (ports.size() > 1 && name.empty()) errs.push_back(FieldError::required(base + ".name"));
      if (!name.empty()) {
        if (auto e = dns1123Label(name); !e.empty())
          errs.push_back(FieldError::invalid(base + ".name", name, e));
        else if (!names.insert(name).second)
          errs.push_back(FieldError::duplicate(base + ".name", name));
      }
      validatePort(at(p, "port"), base + ".port", errs, true);
      validateProtocol(at(p, "protocol"), base + ".protocol", errs);
      const Json& tp = at(p, "targetPort");
      if (tp.is_number_integer())
        validatePort(tp, base + ".targetPort", errs, false);
      else if (tp.is_string())
        if (auto e = ianaSvcName(tp.get<std::string>()); !e.empty())
          errs.push_back(FieldError::invalid(base + ".targetPort", tp, e));
      if (!at(p, "nodePort").is_null() && type != "NodePort" && type != "LoadBalancer" &&
          at(p, "nodePort") != 0)
        errs.push_back(FieldError::forbidden(base + ".nodePort",
                                             "may not be used when `type` is '" + type + "'"));
      std::string key = (at(p, "port").is_number() ? at(p, "port").dump() : "") + "/" +
                        json::str(p, "protocol", "TCP");
      if (!portProto.insert(key).second)
        errs.push_back(FieldError::duplicate(
            base, Json{{"port", at(p, "port")}, {"protocol", json::str(p, "protocol", "TCP")}}));
    }
  }
  validateLabels(at(spec, "selector"), "spec.selector", errs);
  validateEnum(at(spec, "sessionAffinity"), "spec.sessionAffinity", {"ClientIP", "None"}, errs);
  if (old) {
    std::string oldIp = json::getString(*old, {"spec", "clusterIP"});
    std::string newIp = json::str(spec, "clusterIP", "");
    std::string oldType = json::getString(*old, {"spec", "type"});
    if (!oldIp.empty() && newIp != oldIp && !(oldType == "ExternalName" || type == "ExternalName"))
      errs.push_back(FieldError::invalid("spec.clusterIPs[0]", newIp, "may not change once set"));
  }
}

void validateConfigKeys(const Json& data, const std::string& path, FieldErrors& errs) {
  if (!data.is_object()) return;
  static const std::regex re("[-._a-zA-Z0-9]+");
  for (const auto& item : data.items()) {
    const std::string& k = item.key();
    if (k.size() > 253 || !std::regex_match(k, re) || k == "." || k == "..")
      errs.push_back(FieldError::invalid(
          path, k,
          "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
          "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
          "'[-._a-zA-Z0-9]+')"));
  }
}

void validateJob(const Json& obj, const Json* old, FieldErrors& errs) {
  const Json& spec = at(obj, "spec");
  validatePodSpec(at(at(spec, "template"), "spec"), "spec.template.spec", errs,
                  {"OnFailure", "Never"});
  const Json& rp = at(at(at(spec, "template"), "spec"), "restartPolicy");
  if (rp.is_null()) errs.push_back(FieldError::required("spec.template.spec.restartPolicy"));
  for (const char* f : {"parallelism", "completions", "backoffLimit", "activeDeadlineSeconds"})
    validateNonNegative(at(spec, f), std::string("spec.") + f, errs);
  if (old) {
    if (at(at(*old, "spec"), "selector") != at(spec, "selector") &&
        !at(at(*old, "spec"), "selector").is_null())
      errs.push_back(
          FieldError::invalid("spec.selector", at(spec, "selector"), "field is immutable"));
    if (at(at(*old, "spec"), "template") != at(spec, "template"))
      errs.push_back(
          FieldError::invalid("spec.template", at(spec, "template"), "field is immutable"));
  }
}

void validateCronJob(const Json& obj, FieldErrors& errs) {
  std::string name = json::getString(obj, {"metadata", "name"});
  if (name.size() > 52)
    errs.push_back(
        FieldError::invalid("metadata.name", name, "must be no more than 52 characters"));
  const Json& spec = at(obj, "spec");
  const Json& schedule = at(spec, "schedule");
  if (!schedule.is_string() || schedule.get<std::string>().empty()) {
    errs.push_back(FieldError::required("spec.schedule"));
  } else if (auto s = cron::Schedule::parse(schedule.get<std::string>()); !s) {
    errs.push_back(FieldError::invalid("spec.schedule", schedule, s.error()));
  }
  const Json& tz = at(spec, "timeZone");
  if (!tz.is_null() && (!tz.is_string() || !cron::knownTimeZone(tz.get<std::string>()) ||
                        tz.get<std::string>().empty()))
    errs.push_back(FieldError::invalid(
        "spec.timeZone", tz,
        "unknown time zone " + (tz.is_string() ? tz.get<std::string>() : tz.dump())));
  const Json& policy = at(spec, "concurrencyPolicy");
  if (!policy.is_null() && policy != "Allow" && policy != "Forbid" && policy != "Replace")
    errs.push_back(
        FieldError::notSupported("spec.concurrencyPolicy", policy, {"Allow", "Forbid", "Replace"}));
  for (const char* f :
       {"startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"})
    validateNonNegative(at(spec, f), std::string("spec.") + f, errs);
  const Json& job = at(at(spec, "jobTemplate"), "spec");
  validatePodSpec(at(at(job, "template"), "spec"), "spec.jobTemplate.spec.template.spec", errs,
                  {"OnFailure", "Never"});
  if (at(at(at(job, "template"), "spec"), "restartPolicy").is_null())
    errs.push_back(FieldError::required("spec.jobTemplate.spec.template.spec.restartPolicy"));
}

void validateIngress(const Json& obj, FieldErrors& errs) {
  const Json& rules = at(at(obj, "spec"), "rules");
  if (!rules.is_array()) return;
  for (size_t i = 0; i < rules.size(); ++i) {
    const Json& paths = at(at(rules[i], "http"), "paths");
    if (!paths.is_array()) continue;
    for (size_t j = 0; j < paths.size(); ++j) {
      std::string base =
          "spec.rules[" + std::to_string(i) + "].http.paths[" + std::to_string(j) + "]";
      const Json& pt = at(paths[j], "pathType");
      if (pt.is_null())
        errs.push_back(FieldError::required(base + ".pathType", "pathType must be specified"));
      else
        validateEnum(pt, base + ".pathType", {"Exact", "ImplementationSpecific", "Prefix"}, errs);
      if (at(paths[j], "backend").is_null())
        errs.push_back(FieldError::required(base + ".backend"));
    }
  }
}

void validateCrd(const Json& obj, FieldErrors& errs) {
  const Json& spec = at(obj, "spec");
  std::string group = json::str(spec, "group", "");
  std::string plural = json::getString(spec, {"names", "plural"});
  std::string kind = json::getString(spec, {"names", "kind"});
  std::string name = str(obj, {"metadata", "name"});
  if (group.empty())
    errs.push_back(FieldError::required("spec.group"));
  else if (group.find('.') == std::string::npos)
    errs.push_back(
        FieldError::invalid("spec.group", group, "should be a domain with at least one dot"));
  if (plural.empty())
    errs.push_back(FieldError::required("spec.names.plural"));
  else if (auto e = dns1123Label(plural); !e.empty())
    errs.push_back(FieldError::invalid("spec.names.plural", plural, e));
  if (kind.empty()) errs.push_back(FieldError::required("spec.names.kind"));
  if (!plural.empty() && !group.empty() && name != plural + "." + group)
    errs.push_back(
        FieldError::invalid("metadata.name", name, "must be spec.names.plural+\".\"+spec.group"));
  validateEnum(at(spec, "scope"), "spec.scope", {"Cluster", "Namespaced"}, errs);
  if (at(spec, "scope").is_null()) errs.push_back(FieldError::required("spec.scope"));
  const Json& versions = at(spec, "versions");
  if (!versions.is_array() || versions.empty()) {
    errs.push_back(FieldError::required("spec.versions",
                                        "must have exactly one version marked as storage version"));
    return;
  }
  int storage = 0;
  std::set<std::string> seen;
  for (size_t i = 0; i < versions.size(); ++i) {
    std::string vn = json::str(versions[i], "name", "");
    std::string base = "spec.versions[" + std::to_string(i) + "]";
    if (vn.empty())
      errs.push_back(FieldError::required(base + ".name"));
    else if (auto e = dns1035Label(vn); !e.empty())
      errs.push_back(FieldError::invalid(base + ".name", vn, e));
    else if (!seen.insert(vn).second)
      errs.push_back(FieldError::duplicate(base + ".name", vn));
    if (json::boolean(versions[i], "storage", false)) ++storage;
  }
  if (storage != 1)
    errs.push_back(FieldError::invalid("spec.versions", Json::array(),
                                       "must have exactly one version marked as storage version"));
}

}  // namespace

// Istio's Telemetry: tracing is configured through it; the standard metrics and Envoy's access
// log are always on in Podium's proxies, so a Telemetry changing them is refused, not ignored.
void validateTelemetry(const Json& obj, FieldErrors& errs) {
  const Json& spec = at(obj, "spec");
  for (const char* f : {"metrics", "accessLogging"})
    if (at(spec, f).is_array() && !at(spec, f).empty())
      errs.push_back(FieldError::forbidden(
          std::string("spec.") + f,
          "not supported: Podium's node proxies always report Istio's standard metrics and write "
          "Envoy's access log; a Telemetry may configure spec.tracing"));
  const Json& tracing = at(spec, "tracing");
  if (!tracing.is_array()) return;
  for (size_t i = 0; i < tracing.size(); ++i) {
    std::string path = "spec.tracing[" + std::to_string(i) + "]";
    const Json& pct = at(tracing[i], "randomSamplingPercentage");
    if (pct.is_number() && (pct.get<double>() < 0 || pct.get<double>() > 100))
      errs.push_back(FieldError::invalid(path + ".randomSamplingPercentage", pct,
                                         "must be between 0.0 and 100.0"));
    const Json& tags = at(tracing[i], "customTags");
    if (!tags.is_object()) continue;
    for (const auto& [name, tag] : tags.items()) {
      int kinds = 0;
      for (const char* k : {"literal", "environment", "header"}) kinds += tag.contains(k);
      if (kinds != 1)
        errs.push_back(
            FieldError::invalid(path + ".customTags." + name, tag,
                                "must have exactly one of literal, environment, header"));
    }
  }
}

FieldErrors validateObject(const ResourceInfo& r, const Json& obj, const Json* old) {
  FieldErrors errs;
  validateMeta(r, obj, old, errs);
  if (r.group == "telemetry.istio.io" && r.plural == "telemetries") validateTelemetry(obj, errs);
  if (r.custom) return errs;
  const std::string& g = r.group;
  const std::string& p = r.plural;
  if (g.empty()) {
    if (p == "pods") {
      validatePodSpec(at(obj, "spec"), "spec", errs);
      if (old) {
        // Pods are immutable except for images, deadlines and added tolerations.
        Json a = at(obj, "spec"), b = at(*old, "spec");
        for (Json* s : {&a, &b}) {
          if (!s->is_object()) continue;
          for (const char* list : {"containers", "initContainers"})
            if (s->contains(list) && (*s)[list].is_array())
              for (auto& c : (*s)[list]) c.erase("image");
          s->erase("activeDeadlineSeconds");
          s->erase("tolerations");
          s->erase("nodeName");
          s->erase("terminationGracePeriodSeconds");
        }
        if (a != b)
          errs.push_back(FieldError::forbidden(
              "spec",
              "pod updates may not change fields other than `spec.containers[*].image`,"
              "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
              "(only additions "
              "to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set "
              "to 1 if it "
              "was previously negative)"));
      }
    } else if (p == "services") {
      validateService(obj, old, errs);
    } else if (p == "configmaps") {
      validateConfigKeys(at(obj, "data"), "data", errs);
      validateConfigKeys(at(obj, "binaryData"), "binaryData", errs);
      if (old && at(*old, "immutable") == true &&
          (at(obj, "data") != at(*old, "data") || at(obj, "binaryData") != at(*old, "binaryData")))
        errs.push_back(FieldError::forbidden("data", "field is immutable when `immutable` is set"));
    } else if (p == "secrets") {
      validateConfigKeys(at(obj, "data"), "data", errs);
      if (old && at(obj, "type") != at(*old, "type"))
        errs.push_back(FieldError::invalid("type", at(obj, "type"), "field is immutable"));
      if (old && at(*old, "immutable") == true && at(obj, "data") != at(*old, "data"))
        errs.push_back(FieldError::forbidden("data", "field is immutable when `immutable` is set"));
    } else if (p == "podtemplates") {
      validatePodSpec(at(at(obj, "template"), "spec"), "template.spec", errs);
    } else if (p == "replicationcontrollers") {
      validateReplicationController(obj, errs);
    } else if (p == "persistentvolumes" || p == "persistentvolumeclaims") {
      validateStorageKinds(r, obj, old, errs);
    }
  } else if (g == "apps" && p != "controllerrevisions") {
    validateWorkload(r, obj, old, errs);
  } else if (g == "apiregistration.k8s.io") {
    validateApiService(obj, errs);
  } else if (g == "admissionregistration.k8s.io") {
    validateWebhookConfiguration(r, obj, errs);
  } else if (g == "storage.k8s.io") {
    validateStorageKinds(r, obj, old, errs);
  } else if (g == "batch" && p == "jobs") {
    validateJob(obj, old, errs);
  } else if (g == "batch" && p == "cronjobs") {
    validateCronJob(obj, errs);
  } else if (g == "networking.k8s.io" && p == "ingresses") {
    validateIngress(obj, errs);
  } else if (g == "apiextensions.k8s.io") {
    validateCrd(obj, errs);
  } else if (g == "autoscaling") {
    const Json& spec = at(obj, "spec");
    if (json::getString(spec, {"scaleTargetRef", "kind"}).empty())
      errs.push_back(FieldError::required("spec.scaleTargetRef.kind"));
    if (json::getString(spec, {"scaleTargetRef", "name"}).empty())
      errs.push_back(FieldError::required("spec.scaleTargetRef.name"));
    const Json& maxR = at(spec, "maxReplicas");
    const Json& minR = at(spec, "minReplicas");
    if (!maxR.is_number_integer() || maxR.get<int64_t>() < 1)
      errs.push_back(
          FieldError::invalid("spec.maxReplicas", maxR, "must be greater than or equal to 1"));
    else if (minR.is_number_integer() && minR.get<int64_t>() > maxR.get<int64_t>())
      errs.push_back(FieldError::invalid("spec.maxReplicas", maxR,
                                         "must be greater than or equal to `minReplicas`"));
  }
  return errs;
}

}  // namespace podium::api
