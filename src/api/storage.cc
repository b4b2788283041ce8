#include "podium/api/storage.h"

#include <arpa/inet.h>

#include <algorithm>

#include "apply.h"
#include "defaults.h"
#include "patch.h"
#include "podium/api/selectors.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"
#include "schema_check.h"
#include "validation.h"

namespace podium::api {
namespace {

Json& meta(Json& obj) {
  Json& m = obj["metadata"];
  if (!m.is_object()) m = Json::object();
  return m;
}

std::string metaString(const Json& obj, const char* field) {
  return json::getString(obj, {"metadata", field});
}

// Everything but metadata and status: what metadata.generation tracks.
Json specPart(const Json& obj) {
  Json out = obj;
  if (out.is_object()) {
    out.erase("metadata");
    out.erase("status");
    out.erase("apiVersion");
    out.erase("kind");
  }
  return out;
}

Json withoutVolatile(const Json& obj) {
  Json out = obj;
  if (out.is_object() && out.contains("metadata") && out["metadata"].is_object()) {
    out["metadata"].erase("resourceVersion");
    out["metadata"].erase("selfLink");
  }
  return out;
}

bool resetsStatusOnCreate(const ResourceInfo& r) {
  if (r.custom) return r.hasStatus;
  static const std::set<std::string> kinds = {"apps/deployments",
                                              "apps/replicasets",
                                              "apps/statefulsets",
                                              "apps/daemonsets",
                                              "batch/jobs",
                                              "batch/cronjobs",
                                              "autoscaling/horizontalpodautoscalers",
                                              "networking.k8s.io/ingresses",
                                              "policy/poddisruptionbudgets"};
  return kinds.count(r.group + "/" + r.plural) > 0;
}

bool isCore(const ResourceInfo& r, const char* plural) {
  return r.group.empty() && r.plural == plural;
}

bool nonEmptyList(const Json* v) { return v && v->is_array() && !v->empty(); }

// True when an object marked for deletion has nothing left to wait for: no finalizers (and,
// for namespaces, no spec.finalizers) and no graceful termination under way (pods on a node).
bool deletionComplete(const ResourceInfo& r, const Json& obj) {
  if (!json::find(obj, {"metadata", "deletionTimestamp"})) return false;
  if (nonEmptyList(json::find(obj, {"metadata", "finalizers"}))) return false;
  if (isCore(r, "namespaces") && nonEmptyList(json::find(obj, {"spec", "finalizers"})))
    return false;
  return json::integer(*json::find(obj, {"metadata"}), "deletionGracePeriodSeconds", 0) <= 0;
}

struct Cidr {
  uint32_t base = 0;
  int bits = 32;
  bool parse(const std::string& text) {
    size_t slash = text.find('/');
    if (slash == std::string::npos) return false;
    in_addr a{};
    if (inet_pton(AF_INET, text.substr(0, slash).c_str(), &a) != 1) return false;
    auto b = strings::parseInt(text.substr(slash + 1));
    if (!b || *b < 8 || *b > 30) return false;
    bits = static_cast<int>(*b);
    uint32_t mask = bits == 0 ? 0 : ~uint32_t(0) << (32 - bits);
    base = ntohl(a.s_addr) & mask;
    return true;
  }
  uint32_t size() const { return uint32_t(1) << (32 - bits); }
  bool contains(uint32_t ip) const { return ip - base < size(); }
  static std::string str(uint32_t ip) {
    in_addr a{htonl(ip)};
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, buf, sizeof buf);
    return buf;
  }
  static std::optional<uint32_t> ip(const std::string& text) {
    in_addr a{};
    if (inet_pton(AF_INET, text.c_str(), &a) != 1) return std::nullopt;
    return ntohl(a.s_addr);
  }
};

std::string encodeContinue(int64_t rv, const std::string& lastKey) {
  Json t = {{"v", "meta.k8s.io/v1"}, {"rv", rv}, {"start", lastKey + "\x01"}};
  return strings::base64UrlEncode(t.dump());
}

std::optional<std::string> decodeContinue(const std::string& token) {
  auto raw = strings::base64UrlDecode(token);
  if (!raw) raw = strings::base64Decode(token);
  if (!raw) return std::nullopt;
  auto parsed = json::parse(*raw);
  if (!parsed || !parsed->value.is_object() || !parsed->value.contains("start") ||
      !parsed->value["start"].is_string())
    return std::nullopt;
  return parsed->value["start"].get<std::string>();
}

}  // namespace

Storage::Storage(store::Store& store, Cacher& cacher, ResourceRegistry& registry, Clock& clock,
                 StorageOptions options)
    : store_(store),
      cacher_(cacher),
      registry_(registry),
      clock_(clock),
      options_(std::move(options)) {}

std::string Storage::now() const { return timefmt::rfc3339(clock_.now()); }

ObjectPtr Storage::toVersion(const ResourceInfo& r, const ObjectPtr& obj) const {
  if (!r.custom || !obj) return obj;
  std::string want = r.apiVersion();
  if (obj->is_object() && json::str(*obj, "apiVersion", "") == want) return obj;
  auto copy = std::make_shared<Json>(*obj);
  (*copy)["apiVersion"] = want;
  return copy;
}

std::string Storage::serialize(const ResourceInfo& r, const Json& obj) const {
  Json out = withoutVolatile(obj);
  if (r.custom && !r.storageVersion.empty()) out["apiVersion"] = r.group + "/" + r.storageVersion;
  return json::dump(out);
}

ApiError Storage::storeError(const ResourceInfo& r, const std::string& name,
                             const store::Error& e) const {
  switch (e.code) {
    case store::Errc::NotFound:
      return ApiError::notFound(r.group, r.qualifiedResource(), name);
    case store::Errc::AlreadyExists:
      return ApiError::alreadyExists(r.group, r.qualifiedResource(), name);
    case store::Errc::Conflict:
      return ApiError::conflictModified(r.group, r.qualifiedResource(), name);
    case store::Errc::Unavailable:
      return ApiError::serviceUnavailable("storage is unavailable: " + e.message);
    default:
      return ApiError::internal(e.message);
  }
}

// ----------------------------------------------------------------------------- reads

Expected<ObjectPtr, ApiError> Storage::get(const ResourceInfo& r, const std::string& ns,
                                           const std::string& name) {
  auto c = cacher_.get(r.key(ns, name));
  if (!c) return Unexpected(ApiError::notFound(r.group, r.qualifiedResource(), name));
  return toVersion(r, c->object);
}

namespace {
struct Filters {
  LabelSelector labels;
  FieldSelector fields;
};

Expected<Filters, ApiError> parseFilters(const ResourceInfo& r, const ListOptions& o) {
  Filters f;
  auto ls = LabelSelector::parse(o.labelSelector);
  if (!ls) return Unexpected(ApiError::badRequest(ls.error()));
  f.labels = std::move(*ls);
  auto fs = FieldSelector::parse(
      o.fieldSelector, r.custom ? std::vector<std::string>{} : selectableFields(r.group, r.plural));
  if (!fs) return Unexpected(ApiError::badRequest(fs.error()));
  f.fields = std::move(*fs);
  return f;
}

bool matches(const Filters& f, const Json& obj) {
  if (!f.labels.empty()) {
    const Json* labels = json::find(obj, {"metadata", "labels"});
    if (!f.labels.matches(labels ? *labels : Json())) return false;
  }
  return f.fields.empty() || f.fields.matches(obj);
}
}  // namespace

Expected<ListResult, ApiError> Storage::list(const ResourceInfo& r, const std::string& ns,
                                             const ListOptions& o) {
  auto filters = parseFilters(r, o);
  if (!filters) return Unexpected(filters.error());
  std::string prefix = r.keyPrefix() + (r.namespaced && !ns.empty() ? ns + "/" : "");
  std::string start = prefix;
  if (!o.continueToken.empty()) {
    auto s = decodeContinue(o.continueToken);
    if (!s || s->compare(0, prefix.size(), prefix) != 0)
      return Unexpected(ApiError::badRequest("continue key is not valid: invalid continue token"));
    start = *s;
  }
  int64_t rev = 0;
  std::vector<CachedObject> all;
  std::string exact = filters->fields.exactName();
  if (!exact.empty() && (!r.namespaced || !ns.empty())) {
    rev = cacher_.revision();
    if (auto c = cacher_.get(r.key(ns, exact))) all.push_back(*c);
  } else {
    all = cacher_.list(prefix, &rev);
  }
  ListResult out;
  out.resourceVersion = std::to_string(rev);
  std::string lastKey;
  int64_t matchedAfterLimit = 0;
  for (const auto& c : all) {
    if (!o.continueToken.empty()) {
      // Keys sort like their namespace/name; skip everything before the token's position.
      std::string k = r.key(metaString(*c.object, "namespace"), metaString(*c.object, "name"));
      if (k < start) continue;
    }
    if (!matches(*filters, *c.object)) continue;
    if (o.limit > 0 && static_cast<int64_t>(out.items.size()) >= o.limit) {
      ++matchedAfterLimit;
      continue;
    }
    out.items.push_back(toVersion(r, c.object));
    lastKey = r.key(metaString(*c.object, "namespace"), metaString(*c.object, "name"));
  }
  if (matchedAfterLimit > 0) {
    out.continueToken = encodeContinue(rev, lastKey);
    out.remainingItemCount = matchedAfterLimit;
  }
  return out;
}

Expected<WatchHandle, ApiError> Storage::watch(const ResourceInfo& r, const std::string& ns,
                                               const ListOptions& o, bool sendInitialEvents) {
  auto filters = parseFilters(r, o);
  if (!filters) return Unexpected(filters.error());
  std::string prefix = r.keyPrefix() + (r.namespaced && !ns.empty() ? ns + "/" : "");
  int64_t from = -1;
  if (!o.resourceVersion.empty() && o.resourceVersion != "0" && !sendInitialEvents) {
    auto v = strings::parseInt(o.resourceVersion);
    if (!v || *v < 0)
      return Unexpected(ApiError::badRequest("invalid resource version: " + o.resourceVersion));
    from = *v;
  }
  auto f = std::make_shared<Filters>(std::move(*filters));
  int64_t oldest = 0;
  auto w = cacher_.watch(
      prefix, from, [f](const Json& obj) { return matches(*f, obj); }, &oldest);
  if (!w) {
    if (w.error() == Cacher::WatchError::Expired)
      return Unexpected(ApiError::expired("too old resource version: " + o.resourceVersion + " (" +
                                          std::to_string(oldest) + ")"));
    return Unexpected(ApiError::timeout("Too large resource version: " + o.resourceVersion +
                                        ", current: " + std::to_string(cacher_.revision())));
  }
  WatchHandle h;
  h.watcher = *w;
  h.startRevision = from < 0 ? cacher_.revision() : from;
  auto rp = std::make_shared<ResourceInfo>(r);
  h.convert = [this, rp](const ObjectPtr& obj) { return toVersion(*rp, obj); };
  return h;
}

void Storage::stopWatch(const WatchHandle& handle) {
  if (handle.watcher) cacher_.stopWatch(handle.watcher);
}

// ----------------------------------------------------------------------------- writes

Expected<void, ApiError> Storage::checkSchema(const ResourceInfo& r, Json& obj,
                                              const WriteOptions& o,
                                              std::vector<std::string>* warnings) {
  SchemaIssues issues;
  api::checkSchema(obj, r.schema, r.custom, issues);
  if (!issues.decodeErrors.empty()) {
    std::string msg = r.kind + " in version \"" + r.version + "\" cannot be handled as a " +
                      r.kind + ": " + strings::join(issues.decodeErrors, ", ");
    return Unexpected(ApiError::badRequest(msg));
  }
  if (!issues.unknownFields.empty()) {
    std::vector<std::string> parts;
    for (const auto& u : issues.unknownFields) parts.push_back("unknown field \"" + u + "\"");
    if (o.fieldValidation == FieldValidation::Strict)
      return Unexpected(
          ApiError::badRequest("strict decoding error: " + strings::join(parts, ", ")));
    if (o.fieldValidation == FieldValidation::Warn && warnings)
      for (const auto& p : parts) warnings->push_back(p);
  }
  if (!issues.invalid.empty())
    return Unexpected(
        ApiError::invalid(r.group, r.qualifiedKind(), metaString(obj, "name"), issues.invalid));
  return {};
}

Expected<void, ApiError> Storage::admitNamespace(const ResourceInfo& r, const std::string& ns) {
  if (!r.namespaced) return {};
  auto nsObj = cacher_.get("/registry/core/namespaces/" + ns);
  if (!nsObj) return Unexpected(ApiError::notFound("", "namespaces", ns));
  const Json& o = *nsObj->object;
  if (json::find(o, {"metadata", "deletionTimestamp"}) ||
      json::getString(o, {"status", "phase"}) == "Terminating")
    return Unexpected(ApiError::forbidden(
        r.plural + " \"\" is forbidden: unable to create new content in namespace " + ns +
        " because it is being terminated"));
  return {};
}

Expected<void, ApiError> Storage::allocateServiceAddresses(Json& svc, const Json* old) {
  Json& spec = svc["spec"];
  if (!spec.is_object()) return {};
  std::string type = json::str(spec, "type", "ClusterIP");
  std::string name = metaString(svc, "name");
  if (type == "ExternalName") {
    spec.erase("clusterIP");
    spec.erase("clusterIPs");
    return {};
  }
  Cidr cidr;
  if (!cidr.parse(options_.serviceCidr))
    return Unexpected(ApiError::internal("bad service CIDR " + options_.serviceCidr));
  std::set<uint32_t> usedIps;
  std::set<int64_t> usedPorts;
  int64_t rev;
  for (const auto& c : cacher_.list("/registry/core/services/", &rev)) {
    if (old && metaString(*c.object, "uid") == metaString(*old, "uid")) continue;
    if (auto ip = Cidr::ip(json::getString(*c.object, {"spec", "clusterIP"}))) usedIps.insert(*ip);
    const Json* ports = json::find(*c.object, {"spec", "ports"});
    if (ports && ports->is_array())
      for (const auto& p : *ports)
        if (json::integer(p, "nodePort", 0) != 0) usedPorts.insert(json::integer(p, "nodePort", 0));
  }
  std::string ip = json::str(spec, "clusterIP", "");
  if (ip.empty() && old) ip = json::getString(*old, {"spec", "clusterIP"});
  if (ip.empty()) {
    // .1 is the API's own Service and .10 cluster DNS, as in k3s.
    for (uint32_t i = 2; i + 1 < cidr.size(); ++i) {
      uint32_t cand = cidr.base + i;
      if (i == 10 || usedIps.count(cand)) continue;
      ip = Cidr::str(cand);
      break;
    }
    if (ip.empty())
      return Unexpected(ApiError::internal("failed to allocate a serviceIP: range is full"));
  } else if (ip != "None") {
    auto parsed = Cidr::ip(ip);
    if (!parsed)
      return Unexpected(ApiError::invalid(
          "", "Service", name,
          {FieldError::invalid("spec.clusterIPs[0]", ip,
                               "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")}));
    if (!old || json::getString(*old, {"spec", "clusterIP"}) != ip) {
      if (!cidr.contains(*parsed))
        return Unexpected(ApiError::invalid(
            "", "Service", name,
            {FieldError::invalid("spec.clusterIPs", Json::array({ip}),
                                 "failed to allocate IP " + ip + ": the provided IP (" + ip +
                                     ") is not in the valid range. The range of valid IPs is " +
                                     options_.serviceCidr)}));
      if (usedIps.count(*parsed))
        return Unexpected(ApiError::invalid(
            "", "Service", name,
            {FieldError::invalid(
                "spec.clusterIPs", Json::array({ip}),
                "failed to allocate IP " + ip + ": provided IP is already allocated")}));
    }
  }
  spec["clusterIP"] = ip;
  spec["clusterIPs"] = Json::array({ip});
  if (ip == "None") {
    spec.erase("ipFamilies");
    spec["ipFamilies"] = Json::array({"IPv4"});
  }
  if ((type == "NodePort" || type == "LoadBalancer") && spec.contains("ports") &&
      spec["ports"].is_array()) {
    const Json* oldPorts = old ? json::find(*old, {"spec", "ports"}) : nullptr;
    for (auto& p : spec["ports"]) {
      if (json::integer(p, "nodePort", 0) != 0) continue;
      if (oldPorts && oldPorts->is_array())
        for (const auto& op : *oldPorts)
          if (json::integer(op, "port", 0) == json::integer(p, "port", 0) &&
              json::integer(op, "nodePort", 0) != 0)
            p["nodePort"] = op["nodePort"];
      if (json::integer(p, "nodePort", 0) != 0) continue;
      for (int64_t port = options_.nodePortMin; port <= options_.nodePortMax; ++port)
        if (!usedPorts.count(port)) {
          p["nodePort"] = port;
          usedPorts.insert(port);
          break;
        }
    }
  } else if (spec.contains("ports") && spec["ports"].is_array()) {
    for (auto& p : spec["ports"]) p.erase("nodePort");
  }
  return {};
}

namespace {

void prepareCrdStatus(Json& crd) {
  Json& status = crd["status"];
  if (!status.is_object()) status = Json::object();
  std::string now;
  Json conds = Json::array();
  Json prev = status.contains("conditions") ? status["conditions"] : Json::array();
  auto keepTime = [&](const std::string& type) -> std::string {
    if (prev.is_array())
      for (const auto& c : prev)
        if (json::str(c, "type", "") == type && json::str(c, "status", "") == "True")
          return json::str(c, "lastTransitionTime", "");
    return "";
  };
  std::string t = timefmt::rfc3339(std::chrono::system_clock::now());
  std::string t1 = keepTime("NamesAccepted");
  std::string t2 = keepTime("Established");
  conds.push_back({{"type", "NamesAccepted"},
                   {"status", "True"},
                   {"reason", "NoConflicts"},
                   {"message", "no conflicts found"},
                   {"lastTransitionTime", t1.empty() ? t : t1}});
  conds.push_back({{"type", "Established"},
                   {"status", "True"},
                   {"reason", "InitialNamesAccepted"},
                   {"message", "the initial names have been accepted"},
                   {"lastTransitionTime", t2.empty() ? t : t2}});
  status["conditions"] = conds;
  if (crd.contains("spec") && crd["spec"].contains("names"))
    status["acceptedNames"] = crd["spec"]["names"];
  Json stored = status.contains("storedVersions") && status["storedVersions"].is_array()
                    ? status["storedVersions"]
                    : Json::array();
  const Json* versions = json::find(crd, {"spec", "versions"});
  if (versions && versions->is_array())
    for (const auto& v : *versions)
      if (json::boolean(v, "storage", false) &&
          std::find(stored.begin(), stored.end(), json::str(v, "name", "")) == stored.end())
        stored.push_back(json::str(v, "name", ""));
  status["storedVersions"] = stored;
  (void)now;
}

Expected<void, ApiError> checkCrd(const ResourceInfo& r, const Json& obj) {
  auto rs = resourcesFromCrd(obj);
  if (!rs) {
    std::string err = rs.error();
    auto colon = err.find(": ");
    FieldError fe =
        FieldError::invalid(colon == std::string::npos ? "spec" : err.substr(0, colon), nullptr,
                            colon == std::string::npos ? err : err.substr(colon + 2));
    return Unexpected(ApiError::invalid(r.group, r.qualifiedKind(), metaString(obj, "name"), {fe}));
  }
  return {};
}

void prepareJob(Json& job) {
  std::string uid = metaString(job, "uid");
  std::string name = metaString(job, "name");
  Json& spec = job["spec"];
  if (!spec.is_object()) return;
  if (json::boolean(spec, "manualSelector", false)) return;
  Json labels = {{"batch.kubernetes.io/controller-uid", uid},
                 {"batch.kubernetes.io/job-name", name},
                 {"controller-uid", uid},
                 {"job-name", name}};
  if (!spec.contains("selector"))
    spec["selector"] = {{"matchLabels", {{"batch.kubernetes.io/controller-uid", uid}}}};
  Json& tl = spec["template"]["metadata"]["labels"];
  if (!tl.is_object()) tl = Json::object();
  for (const auto& item : labels.items()) tl[item.key()] = item.value();
}

}  // namespace

Expected<Json, ApiError> Storage::prepareCreate(const ResourceInfo& r, const std::string& ns,
                                                Json obj, const WriteOptions& o,
                                                std::vector<std::string>* warnings,
                                                bool managedFieldsDone) {
  if (auto s = checkSchema(r, obj, o, warnings); !s) return Unexpected(s.error());
  Json& m = meta(obj);
  std::string name = json::str(m, "name", "");
  std::string generateName = json::str(m, "generateName", "");
  if (name.empty() && !generateName.empty()) {
    if (generateName.size() > 58) generateName = generateName.substr(0, 58);
    name = generateName + strings::randomSuffix(5);
    m["name"] = name;
  }
  if (!json::str(m, "resourceVersion", "").empty())
    return Unexpected(
        ApiError::badRequest("resourceVersion should not be set on objects to be created"));
  if (r.namespaced)
    m["namespace"] = ns;
  else
    m.erase("namespace");
  m["uid"] = strings::uuid4();
  m["creationTimestamp"] = now();
  m.erase("deletionTimestamp");
  m.erase("deletionGracePeriodSeconds");
  m.erase("selfLink");
  if (r.tracksGeneration)
    m["generation"] = 1;
  else
    m.erase("generation");
  if (m.contains("managedFields") && !managedFieldsDone) m.erase("managedFields");
  applyDefaults(r, obj);
  if (resetsStatusOnCreate(r)) {
    if (r.custom)
      obj.erase("status");
    else
      obj["status"] = Json::object();
  }
  if (r.group == "batch" && r.plural == "jobs") prepareJob(obj);
  if (r.group == "apiextensions.k8s.io") {
    if (auto c = checkCrd(r, obj); !c) return Unexpected(c.error());
    prepareCrdStatus(obj);
  }
  if (isCore(r, "services"))
    if (auto a = allocateServiceAddresses(obj, nullptr); !a) return Unexpected(a.error());
  FieldErrors errs = validateObject(r, obj, nullptr);
  if (!errs.empty()) return Unexpected(ApiError::invalid(r.group, r.qualifiedKind(), name, errs));
  if (!managedFieldsDone) {
    ssa::Scope scope{r.schema, r.hasStatus, o.subresource};
    ssa::recordUpdate(nullptr, obj, o.fieldManager, r.apiVersion(), now(), scope);
  }
  return obj;
}

Expected<Json, ApiError> Storage::prepareUpdate(const ResourceInfo& r, const Json& old, Json obj,
                                                const WriteOptions& o,
                                                std::vector<std::string>* warnings,
                                                bool managedFieldsDone) {
  if (auto s = checkSchema(r, obj, o, warnings); !s) return Unexpected(s.error());
  if (o.subresource == "finalize") {
    // namespaces/finalize changes spec.finalizers and nothing else.
    Json next = old;
    next["spec"]["finalizers"] =
        json::find(obj, {"spec", "finalizers"}) ? obj["spec"]["finalizers"] : Json::array();
    obj = std::move(next);
  } else if (o.subresource == "binding") {
    // pods/binding writes spec.nodeName and the PodScheduled condition together.
  } else if (o.subresource == "status") {
    // Only status changes through /status; metadata other than managedFields stays as it was.
    Json next = old;
    if (obj.contains("status"))
      next["status"] = obj["status"];
    else
      next.erase("status");
    if (obj.contains("metadata") && obj["metadata"].contains("managedFields"))
      next["metadata"]["managedFields"] = obj["metadata"]["managedFields"];
    obj = std::move(next);
  } else if (r.hasStatus) {
    if (old.contains("status"))
      obj["status"] = old["status"];
    else
      obj.erase("status");
  }
  Json& m = meta(obj);
  const Json& om = old.contains("metadata") ? old["metadata"] : Json::object();
  for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp",
                        "deletionGracePeriodSeconds", "namespace", "name"}) {
    if (om.contains(f))
      m[f] = om[f];
    else
      m.erase(f);
  }
  m.erase("selfLink");
  if (m.contains("generateName") && !om.contains("generateName")) m.erase("generateName");
  applyDefaults(r, obj);
  if (isCore(r, "services"))
    if (auto a = allocateServiceAddresses(obj, &old); !a) return Unexpected(a.error());
  if (r.group == "apiextensions.k8s.io") {
    if (auto c = checkCrd(r, obj); !c) return Unexpected(c.error());
    prepareCrdStatus(obj);
  }
  if (r.tracksGeneration) {
    int64_t gen = json::integer(om, "generation", 1);
    if (specPart(obj) != specPart(old)) ++gen;
    m["generation"] = gen;
  } else {
    m.erase("generation");
  }
  FieldErrors errs = validateObject(r, obj, &old);
  if (!errs.empty())
    return Unexpected(
        ApiError::invalid(r.group, r.qualifiedKind(), json::str(m, "name", ""), errs));
  if (!managedFieldsDone) {
    ssa::Scope scope{r.schema, r.hasStatus, o.subresource == "scale" ? "scale" : o.subresource};
    ssa::recordUpdate(&old, obj, o.fieldManager, r.apiVersion(), now(), scope);
  }
  return obj;
}

Expected<WriteResult, ApiError> Storage::commit(const ResourceInfo& r, const std::string& key,
                                                const Json* old, int64_t oldRevision, Json obj,
                                                const WriteOptions& o) {
  WriteResult out;
  std::string name = metaString(obj, "name");
  if (old) {
    if (deletionComplete(r, obj)) {
      // The last finalizer is gone: the object goes away now.
      if (!o.dryRun) {
        auto rv = store_.remove(key, oldRevision);
        if (!rv) return Unexpected(storeError(r, name, rv.error()));
        obj["metadata"]["resourceVersion"] = std::to_string(*rv);
      }
      out.object = std::move(obj);
      return out;
    }
    if (withoutVolatile(obj) == withoutVolatile(*old)) {
      out.object = *old;  // nothing changed: no write, same resourceVersion
      return out;
    }
    if (o.dryRun) {
      obj["metadata"]["resourceVersion"] = std::to_string(oldRevision);
      out.object = std::move(obj);
      return out;
    }
    auto rv = store_.update(key, serialize(r, obj), oldRevision);
    if (!rv) return Unexpected(storeError(r, name, rv.error()));
    obj["metadata"]["resourceVersion"] = std::to_string(*rv);
    out.object = std::move(obj);
    return out;
  }
  out.created = true;
  if (o.dryRun) {
    out.object = std::move(obj);
    return out;
  }
  auto rv = store_.create(key, serialize(r, obj));
  if (!rv) return Unexpected(storeError(r, name, rv.error()));
  obj["metadata"]["resourceVersion"] = std::to_string(*rv);
  out.object = std::move(obj);
  return out;
}

namespace {
Expected<void, ApiError> checkTypeMeta(const ResourceInfo& r, Json& obj) {
  if (!obj.is_object())
    return Unexpected(ApiError::badRequest("the request body must be a JSON object"));
  std::string apiVersion = json::str(obj, "apiVersion", "");
  std::string kind = json::str(obj, "kind", "");
  if (apiVersion.empty())
    obj["apiVersion"] = r.apiVersion();
  else if (apiVersion != r.apiVersion())
    return Unexpected(ApiError::badRequest("the API version in the data (" + apiVersion +
                                           ") does not match the expected API version (" +
                                           r.apiVersion() + ")"));
  if (kind.empty())
    obj["kind"] = r.kind;
  else if (kind != r.kind)
    return Unexpected(ApiError::badRequest("the kind in the data (" + kind +
                                           ") does not match the expected kind (" + r.kind + ")"));
  if (obj.contains("metadata") && !obj["metadata"].is_object() && !obj["metadata"].is_null())
    return Unexpected(ApiError::badRequest(
        r.kind + " in version \"" + r.version + "\" cannot be handled as a " + r.kind +
        ": json: cannot unmarshal " + (obj["metadata"].is_string() ? "string" : "value") +
        " into Go struct field " + r.kind + ".metadata of type v1.ObjectMeta"));
  return {};
}
}  // namespace

Expected<WriteResult, ApiError> Storage::create(const ResourceInfo& r, const std::string& ns,
                                                Json obj, const WriteOptions& o) {
  if (auto t = checkTypeMeta(r, obj); !t) return Unexpected(t.error());
  std::string bodyNs = json::getString(obj, {"metadata", "namespace"});
  if (r.namespaced && !bodyNs.empty() && bodyNs != ns)
    return Unexpected(ApiError::badRequest(
        "the namespace of the provided object does not match the namespace sent on the request"));
  if (auto a = admitNamespace(r, ns); !a) return Unexpected(a.error());
  std::unique_lock<std::mutex> allocLock(allocMu_, std::defer_lock);
  if (isCore(r, "services")) allocLock.lock();
  WriteResult result;
  auto prepared = prepareCreate(r, ns, std::move(obj), o, &result.warnings, false);
  if (!prepared) return Unexpected(prepared.error());
  std::string name = metaString(*prepared, "name");
  auto committed = commit(r, r.key(ns, name), nullptr, 0, std::move(*prepared), o);
  if (!committed) return committed;
  committed->warnings = std::move(result.warnings);
  if (isCore(r, "namespaces") && !o.dryRun) {
    // Every namespace gets its "default" ServiceAccount (the serviceaccounts controller's job
    // upstream).
    auto sa = registry_.snapshot()->find("", "v1", "serviceaccounts");
    if (sa && !cacher_.get(sa->key(name, "default"))) {
      WriteOptions so;
      so.fieldManager = "podium-serviceaccounts";
      Json account = {{"apiVersion", "v1"},
                      {"kind", "ServiceAccount"},
                      {"metadata", {{"name", "default"}, {"namespace", name}}}};
      auto made = create(*sa, name, account, so);
      if (!made && made.error().code() != 409)
        PODIUM_LOG(Warn) << "default service account for namespace " << name << ": "
                         << made.error().message();
    }
  }
  return committed;
}

Expected<WriteResult, ApiError> Storage::guaranteedUpdate(const ResourceInfo& r,
                                                          const std::string& ns,
                                                          const std::string& name,
                                                          const WriteOptions& o, bool allowCreate,
                                                          const Mutator& mutate) {
  std::string key = r.key(ns, name);
  std::unique_lock<std::mutex> allocLock(allocMu_, std::defer_lock);
  if (isCore(r, "services")) allocLock.lock();
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto cur = cacher_.get(key);
    if (!cur && !allowCreate)
      return Unexpected(ApiError::notFound(r.group, r.qualifiedResource(), name));
    ObjectPtr current = cur ? toVersion(r, cur->object) : nullptr;
    auto next = mutate(current.get());
    if (!next) return Unexpected(next.error());
    auto result = commit(r, key, current.get(), cur ? cur->revision : 0, std::move(*next), o);
    if (!result && result.error().code() == 409 && result.error().reason() == "Conflict") continue;
    if (!result && result.error().code() == 409 && !cur &&
        result.error().reason() == "AlreadyExists")
      continue;
    return result;
  }
  return Unexpected(ApiError::conflictModified(r.group, r.qualifiedResource(), name));
}

Expected<WriteResult, ApiError> Storage::update(const ResourceInfo& r, const std::string& ns,
                                                const std::string& name, Json obj,
                                                const WriteOptions& o) {
  if (auto t = checkTypeMeta(r, obj); !t) return Unexpected(t.error());
  std::string bodyName = json::getString(obj, {"metadata", "name"});
  if (!bodyName.empty() && bodyName != name)
    return Unexpected(ApiError::badRequest("the name of the object (" + bodyName +
                                           ") does not match the name on the URL (" + name + ")"));
  std::string bodyNs = json::getString(obj, {"metadata", "namespace"});
  if (r.namespaced && !bodyNs.empty() && bodyNs != ns)
    return Unexpected(ApiError::badRequest(
        "the namespace of the provided object does not match the namespace sent on the request"));
  std::string wantRv = json::getString(obj, {"metadata", "resourceVersion"});
  if (!wantRv.empty() && !strings::parseInt(wantRv))
    return Unexpected(ApiError::badRequest("invalid resource version: " + wantRv));
  std::vector<std::string> warnings;
  auto result =
      guaranteedUpdate(r, ns, name, o, false, [&](const Json* cur) -> Expected<Json, ApiError> {
        if (!wantRv.empty() && metaString(*cur, "resourceVersion") != wantRv)
          return Unexpected(ApiError::conflictModified(r.group, r.qualifiedResource(), name));
        warnings.clear();
        return prepareUpdate(r, *cur, obj, o, &warnings, false);
      });
  if (result) result->warnings = std::move(warnings);
  return result;
}

Expected<WriteResult, ApiError> Storage::patch(const ResourceInfo& r, const std::string& ns,
                                               const std::string& name, PatchType type,
                                               const std::string& body, const WriteOptions& o) {
  std::vector<std::string> warnings;
  if (type == PatchType::Apply) {
    auto parsed = json::parseYaml(body);
    if (!parsed) return Unexpected(ApiError::badRequest("error decoding YAML: " + parsed.error()));
    Json config = std::move(parsed->value);
    if (!config.is_object())
      return Unexpected(ApiError::badRequest("apply configuration must be an object"));
    if (o.fieldManager.empty())
      return Unexpected(
          ApiError::badRequest("PATCH apply requires a fieldManager query parameter"));
    if (json::str(config, "apiVersion", "") != r.apiVersion() ||
        json::str(config, "kind", "") != r.kind)
      return Unexpected(ApiError::badRequest(
          "the apply configuration's apiVersion and kind (" + json::str(config, "apiVersion", "") +
          ", " + json::str(config, "kind", "") + ") must match the endpoint (" + r.apiVersion() +
          ", " + r.kind + ")"));
    std::string cfgName = json::getString(config, {"metadata", "name"});
    if (!cfgName.empty() && cfgName != name)
      return Unexpected(ApiError::badRequest("the name of the object (" + cfgName +
                                             ") does not match the name on the URL (" + name +
                                             ")"));
    {
      // Unknown fields in the configuration are refused or reported like any other write.
      SchemaIssues issues;
      Json probe = config;
      api::checkSchema(probe, r.schema, r.custom, issues);
      if (!issues.decodeErrors.empty())
        return Unexpected(ApiError::badRequest(r.kind + " in version \"" + r.version +
                                               "\" cannot be handled as a " + r.kind + ": " +
                                               strings::join(issues.decodeErrors, ", ")));
      if (!issues.invalid.empty())
        return Unexpected(ApiError::invalid(r.group, r.qualifiedKind(), name, issues.invalid));
      if (!issues.unknownFields.empty() && o.fieldValidation == FieldValidation::Strict) {
        std::vector<std::string> parts;
        for (const auto& u : issues.unknownFields) parts.push_back("unknown field \"" + u + "\"");
        return Unexpected(ApiError::badRequest(".: " + strings::join(parts, ", ")));
      }
      config = probe;
    }
    ssa::Scope scope{r.schema, r.hasStatus, o.subresource};
    auto result = guaranteedUpdate(
        r, ns, name, o, o.subresource.empty(), [&](const Json* cur) -> Expected<Json, ApiError> {
          warnings.clear();
          auto applied = ssa::apply(cur, config, o.fieldManager, o.force, now(), scope,
                                    r.qualifiedResource(), name);
          if (!applied) return Unexpected(applied.error());
          if (!cur) {
            if (auto a = admitNamespace(r, ns); !a) return Unexpected(a.error());
            (*applied)["metadata"]["name"] = name;
            return prepareCreate(r, ns, std::move(*applied), o, &warnings, true);
          }
          return prepareUpdate(r, *cur, std::move(*applied), o, &warnings, true);
        });
    if (result) result->warnings = std::move(warnings);
    return result;
  }
  if (type == PatchType::StrategicMerge && r.custom)
    return Unexpected(ApiError::unsupportedMediaType(
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, "
        "application/merge-patch+json, application/apply-patch+yaml"));
  auto result =
      guaranteedUpdate(r, ns, name, o, false, [&](const Json* cur) -> Expected<Json, ApiError> {
        Expected<Json, ApiError> patched = Unexpected(ApiError::internal("unreachable"));
        if (type == PatchType::JsonPatch)
          patched = applyJsonPatch(*cur, body);
        else if (type == PatchType::MergePatch)
          patched = applyMergePatch(*cur, body);
        else
          patched = applyStrategicMergePatch(*cur, body, r.schema);
        if (!patched) return patched;
        if (!patched->is_object())
          return Unexpected(
              ApiError(422, "Invalid", "the patch produced a value that is not an object"));
        std::string rv = json::getString(*patched, {"metadata", "resourceVersion"});
        if (!rv.empty() && rv != metaString(*cur, "resourceVersion"))
          return Unexpected(ApiError::conflictModified(r.group, r.qualifiedResource(), name));
        if (json::str(*patched, "apiVersion", "") != r.apiVersion() ||
            json::str(*patched, "kind", "") != r.kind)
          return Unexpected(
              ApiError::badRequest("the patch may not change the object's apiVersion or kind"));
        warnings.clear();
        return prepareUpdate(r, *cur, std::move(*patched), o, &warnings, false);
      });
  if (result) result->warnings = std::move(warnings);
  return result;
}

// ----------------------------------------------------------------------------- delete

Expected<WriteResult, ApiError> Storage::remove(const ResourceInfo& r, const std::string& ns,
                                                const std::string& name, const DeleteOptions& o) {
  std::string key = r.key(ns, name);
  std::string policy = o.propagationPolicy;
  if (policy.empty() && o.orphanDependents.has_value())
    policy = *o.orphanDependents ? "Orphan" : "Background";
  if (!policy.empty() && policy != "Orphan" && policy != "Background" && policy != "Foreground")
    return Unexpected(
        ApiError::invalid(r.group, r.qualifiedKind(), name,
                          {FieldError::notSupported("propagationPolicy", policy,
                                                    {"Foreground", "Background", "Orphan"})}));
  if (isCore(r, "namespaces") &&
      (name == "default" || name == "kube-system" || name == "kube-public"))
    return Unexpected(ApiError::forbidden("namespaces \"" + name +
                                          "\" is forbidden: this namespace may not be deleted"));
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto cur = cacher_.get(key);
    if (!cur) return Unexpected(ApiError::notFound(r.group, r.qualifiedResource(), name));
    const Json& obj = *cur->object;
    if (!o.preconditionUid.empty() && o.preconditionUid != metaString(obj, "uid"))
      return Unexpected(
          ApiError::conflict(r.group, r.qualifiedResource(), name,
                             "Precondition failed: UID in precondition: " + o.preconditionUid +
                                 ", UID in object meta: " + metaString(obj, "uid")));
    if (!o.preconditionResourceVersion.empty() &&
        o.preconditionResourceVersion != metaString(obj, "resourceVersion"))
      return Unexpected(ApiError::conflict(
          r.group, r.qualifiedResource(), name,
          "Precondition failed: ResourceVersion in precondition: " + o.preconditionResourceVersion +
              ", ResourceVersion in object meta: " + metaString(obj, "resourceVersion")));
    Json next = obj;
    Json& m = meta(next);
    Json fin =
        m.contains("finalizers") && m["finalizers"].is_array() ? m["finalizers"] : Json::array();
    auto addFinalizer = [&](const char* f) {
      if (std::find(fin.begin(), fin.end(), f) == fin.end()) fin.push_back(f);
    };
    if (policy == "Foreground") addFinalizer("foregroundDeletion");
    if (policy == "Orphan") addFinalizer("orphan");
    bool namespaceFinalizers =
        isCore(r, "namespaces") && nonEmptyList(json::find(next, {"spec", "finalizers"}));
    // Pods running on a node get their grace period: the node stops them, then deletes with 0.
    int64_t grace = 0;
    if (isCore(r, "pods") && !json::getString(obj, {"spec", "nodeName"}).empty()) {
      std::string phase = json::getString(obj, {"status", "phase"});
      if (phase != "Succeeded" && phase != "Failed")
        grace = o.gracePeriodSeconds.value_or(
            json::integer(*json::find(obj, {"spec"}), "terminationGracePeriodSeconds", 30));
      if (grace < 0) grace = 0;
    }
    if (fin.empty() && !namespaceFinalizers && grace == 0) {
      if (o.dryRun) {
        WriteResult res;
        res.object = obj;
        return res;
      }
      if (r.group == "apiextensions.k8s.io") {
        // Custom resources go with their definition.
        std::string group = json::getString(obj, {"spec", "group"});
        std::string plural = json::getString(obj, {"spec", "names", "plural"});
        int64_t rev;
        for (const auto& c : cacher_.list("/registry/" + group + "/" + plural + "/", &rev)) {
          std::string k = "/registry/" + group + "/" + plural + "/";
          std::string cns = metaString(*c.object, "namespace");
          k += (cns.empty() ? "" : cns + "/") + metaString(*c.object, "name");
          auto removed = store_.remove(k, 0);
          (void)removed;
        }
      }
      auto rv = store_.remove(key, cur->revision);
      if (!rv) {
        if (rv.error().code == store::Errc::Conflict) continue;
        return Unexpected(storeError(r, name, rv.error()));
      }
      WriteResult res;
      res.object = obj;
      res.object["metadata"]["resourceVersion"] = std::to_string(*rv);
      return res;
    }
    // Deletion waits for finalizers, a node's graceful shutdown of a pod, or (namespaces) the
    // namespace controller: mark it.
    if (!m.contains("deletionTimestamp")) {
      m["deletionTimestamp"] = now();
      m["deletionGracePeriodSeconds"] = 0;
    }
    if (grace > 0) {
      int64_t current = json::integer(m, "deletionGracePeriodSeconds", 0);
      if (current == 0 || grace < current) {
        m["deletionTimestamp"] = timefmt::rfc3339(clock_.now() + std::chrono::seconds(grace));
        m["deletionGracePeriodSeconds"] = grace;
      }
    }
    m["finalizers"] = fin;
    if (fin.empty()) m.erase("finalizers");
    if (isCore(r, "namespaces")) next["status"]["phase"] = "Terminating";
    if (o.dryRun || next == obj) {
      WriteResult res;
      res.object = next;
      return res;
    }
    auto rv = store_.update(key, serialize(r, next), cur->revision);
    if (!rv) {
      if (rv.error().code == store::Errc::Conflict) continue;
      return Unexpected(storeError(r, name, rv.error()));
    }
    next["metadata"]["resourceVersion"] = std::to_string(*rv);
    WriteResult res;
    res.object = std::move(next);
    return res;
  }
  return Unexpected(ApiError::conflictModified(r.group, r.qualifiedResource(), name));
}

Expected<std::vector<ObjectPtr>, ApiError> Storage::removeCollection(const ResourceInfo& r,
                                                                     const std::string& ns,
                                                                     const ListOptions& list,
                                                                     const DeleteOptions& o) {
  auto items = this->list(r, ns, list);
  if (!items) return Unexpected(items.error());
  std::vector<ObjectPtr> out;
  for (const auto& item : items->items) {
    auto res = remove(r, metaString(*item, "namespace"), metaString(*item, "name"), o);
    if (res)
      out.push_back(std::make_shared<Json>(res->object));
    else if (res.error().code() != 404)
      return Unexpected(res.error());
  }
  return out;
}

// ----------------------------------------------------------------------------- binding

Expected<Json, ApiError> Storage::issueCertificate(const std::string& ns, const std::string& sa,
                                                   const Json& request,
                                                   const std::string& callerNode) {
  if (!issuer_)
    return Unexpected(ApiError(404, "NotFound", "this server runs no mesh certificate authority"));
  return issuer_(ns, sa, request, callerNode);
}

Expected<WriteResult, ApiError> Storage::bind(const std::string& ns, const std::string& pod,
                                              const std::string& uid, const std::string& node,
                                              const WriteOptions& o) {
  auto r = registry_.snapshot()->find("", "v1", "pods");
  if (node.empty())
    return Unexpected(ApiError::invalid("", "Binding", pod, {FieldError::required("target.name")}));
  WriteOptions bo = o;
  bo.subresource = "binding";
  return guaranteedUpdate(*r, ns, pod, bo, false, [&](const Json* cur) -> Expected<Json, ApiError> {
    if (!uid.empty() && metaString(*cur, "uid") != uid)
      return Unexpected(ApiError::conflict("", "pods/binding", pod,
                                           "Precondition failed: UID in precondition: " + uid +
                                               ", UID in object meta: " + metaString(*cur, "uid")));
    std::string bound = json::getString(*cur, {"spec", "nodeName"});
    if (!bound.empty())
      return Unexpected(
          ApiError::conflict("", "pods/binding", pod,
                             "pod " + pod + " is already assigned to node \"" + bound + "\""));
    if (json::find(*cur, {"metadata", "deletionTimestamp"}))
      return Unexpected(ApiError::conflict("", "pods/binding", pod, "pod is being deleted"));
    Json next = *cur;
    next["spec"]["nodeName"] = node;
    Json& conds = next["status"]["conditions"];
    if (!conds.is_array()) conds = Json::array();
    Json scheduled = {{"type", "PodScheduled"},
                      {"status", "True"},
                      {"lastProbeTime", nullptr},
                      {"lastTransitionTime", now()}};
    bool replaced = false;
    for (auto& c : conds)
      if (json::str(c, "type") == "PodScheduled") {
        c = scheduled;
        replaced = true;
      }
    if (!replaced) conds.push_back(scheduled);
    return prepareUpdate(*r, *cur, std::move(next), bo, nullptr, false);
  });
}

// ----------------------------------------------------------------------------- scale

namespace {
Json* pathRef(Json& obj, const std::string& dotted, bool create) {
  Json* cur = &obj;
  for (const auto& part :
       strings::split(dotted.size() && dotted[0] == '.' ? dotted.substr(1) : dotted, '.')) {
    if (!cur->is_object()) return nullptr;
    if (!cur->contains(part)) {
      if (!create) return nullptr;
      (*cur)[part] = Json::object();
    }
    cur = &(*cur)[part];
  }
  return cur;
}
}  // namespace

Expected<Json, ApiError> Storage::getScale(const ResourceInfo& r, const std::string& ns,
                                           const std::string& name) {
  if (!r.hasScale)
    return Unexpected(ApiError::notFound(r.group, r.qualifiedResource() + "/scale", name));
  auto obj = get(r, ns, name);
  if (!obj) return Unexpected(obj.error());
  Json o = **obj;
  Json* spec = pathRef(o, r.specReplicasPath, false);
  Json* status = pathRef(o, r.statusReplicasPath, false);
  std::string selector;
  if (r.custom) {
    if (!r.labelSelectorPath.empty())
      if (Json* s = pathRef(o, r.labelSelectorPath, false); s && s->is_string())
        selector = s->get<std::string>();
  } else if (const Json* sel = json::find(o, {"spec", "selector"})) {
    auto ls = LabelSelector::fromObject(*sel, false);
    if (ls) selector = ls->str();
  }
  Json m = {{"name", name},
            {"uid", metaString(o, "uid")},
            {"resourceVersion", metaString(o, "resourceVersion")},
            {"creationTimestamp", metaString(o, "creationTimestamp")}};
  if (r.namespaced) m["namespace"] = ns;
  Json scale = {
      {"kind", "Scale"},
      {"apiVersion", "autoscaling/v1"},
      {"metadata", m},
      {"spec", {{"replicas", spec && spec->is_number_integer() ? spec->get<int64_t>() : 0}}},
      {"status",
       {{"replicas", status && status->is_number_integer() ? status->get<int64_t>() : 0}}}};
  if (!selector.empty()) scale["status"]["selector"] = selector;
  return scale;
}

Expected<WriteResult, ApiError> Storage::updateScale(const ResourceInfo& r, const std::string& ns,
                                                     const std::string& name, const Json& scale,
                                                     const WriteOptions& o) {
  if (!r.hasScale)
    return Unexpected(ApiError::notFound(r.group, r.qualifiedResource() + "/scale", name));
  const Json* replicas = json::find(scale, {"spec", "replicas"});
  if (!replicas || !replicas->is_number_integer() || replicas->get<int64_t>() < 0)
    return Unexpected(
        ApiError::invalid("autoscaling", "Scale.autoscaling", name,
                          {FieldError::invalid("spec.replicas", replicas ? *replicas : Json(),
                                               "must be greater than or equal to 0")}));
  std::string wantRv = json::getString(scale, {"metadata", "resourceVersion"});
  WriteOptions so = o;
  so.subresource = "scale";
  auto result =
      guaranteedUpdate(r, ns, name, so, false, [&](const Json* cur) -> Expected<Json, ApiError> {
        if (!wantRv.empty() && wantRv != metaString(*cur, "resourceVersion"))
          return Unexpected(ApiError::conflictModified(r.group, r.qualifiedResource(), name));
        Json next = *cur;
        Json* spec = pathRef(next, r.specReplicasPath, true);
        if (!spec) return Unexpected(ApiError::internal("cannot set " + r.specReplicasPath));
        *spec = *replicas;
        return prepareUpdate(r, *cur, std::move(next), so, nullptr, false);
      });
  if (!result) return result;
  auto s = getScale(r, ns, name);
  if (!s) return Unexpected(s.error());
  if (o.dryRun) (*s)["spec"]["replicas"] = *replicas;
  result->object = *s;
  return result;
}

Expected<WriteResult, ApiError> Storage::patchScale(const ResourceInfo& r, const std::string& ns,
                                                    const std::string& name, PatchType type,
                                                    const std::string& body,
                                                    const WriteOptions& o) {
  auto current = getScale(r, ns, name);
  if (!current) return Unexpected(current.error());
  Expected<Json, ApiError> patched = Unexpected(ApiError::internal("unreachable"));
  if (type == PatchType::JsonPatch)
    patched = applyJsonPatch(*current, body);
  else if (type == PatchType::MergePatch)
    patched = applyMergePatch(*current, body);
  else if (type == PatchType::StrategicMerge)
    patched =
        applyStrategicMergePatch(*current, body, schema::builtin().find("autoscaling.v1.Scale"));
  else {
    auto cfg = json::parseYaml(body);
    if (!cfg) return Unexpected(ApiError::badRequest(cfg.error()));
    Json merged = *current;
    merged.merge_patch(cfg->value);
    patched = merged;
  }
  if (!patched) return Unexpected(patched.error());
  return updateScale(r, ns, name, *patched, o);
}

}  // namespace podium::api
