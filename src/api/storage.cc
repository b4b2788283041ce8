// The API's generic storage: reads, watches, creates, updates and patches of every resource
// (deletes are in storage_delete.cc, subresources in storage_subresources.cc, what a kind adds
// in strategies.cc).
#include <algorithm>
#include <map>

#include "apply.h"
#include "defaults.h"
#include "patch.h"
#include "podium/api/selectors.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"
#include "schema_check.h"
#include "storage_impl.h"
#include "validation.h"

namespace podium::api {

Json& metaOf(Json& obj) {
  Json& m = obj["metadata"];
  if (!m.is_object()) m = Json::object();
  return m;
}

std::string metaString(const Json& obj, const char* field) {
  return json::getString(obj, {"metadata", field});
}

bool nonEmptyList(const Json* v) { return v && v->is_array() && !v->empty(); }

namespace {

// Whether two objects have the same members, `skip` aside (compared in place: objects written
// here can be large, an Application's status with a thousand resources).
bool sameExcept(const Json& a, const Json& b, std::initializer_list<std::string_view> skip) {
  if (!a.is_object() || !b.is_object()) return a == b;
  auto skipped = [&](const std::string& k) {
    return std::find(skip.begin(), skip.end(), k) != skip.end();
  };
  size_t na = 0, nb = 0;
  for (auto it = a.begin(); it != a.end(); ++it) {
    if (skipped(it.key())) continue;
    ++na;
    auto other = b.find(it.key());
    if (other == b.end() || *other != it.value()) return false;
  }
  for (auto it = b.begin(); it != b.end(); ++it)
    if (!skipped(it.key())) ++nb;
  return na == nb;
}

}  // namespace

bool sameSpecPart(const Json& a, const Json& b) {
  return sameExcept(a, b, {"metadata", "status", "apiVersion", "kind"});
}

namespace {

// Equal but for resourceVersion and selfLink (a write that changes nothing else is no write).
bool sameButVolatile(const Json& a, const Json& b) {
  if (!sameExcept(a, b, {"metadata"})) return false;
  static const Json none = Json::object();
  const Json* ma = json::find(a, {"metadata"});
  const Json* mb = json::find(b, {"metadata"});
  return sameExcept(ma ? *ma : none, mb ? *mb : none, {"resourceVersion", "selfLink"});
}

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

StoragePtr newStorage(store::Store& store, Cacher& cacher, ResourceRegistry& registry, Clock& clock,
                      StorageOptions options) {
  return std::make_unique<StorageImpl>(store, cacher, registry, clock, std::move(options));
}

StorageImpl::StorageImpl(store::Store& store, Cacher& cacher, ResourceRegistry& registry,
                         Clock& clock, StorageOptions options)
    : store_(store),
      cacher_(cacher),
      registry_(registry),
      clock_(clock),
      options_(std::move(options)),
      admission_(cacher, httpsWebhookCaller()) {}

std::string StorageImpl::now() const { return timefmt::rfc3339(clock_.now()); }

Expected<void, ApiError> StorageImpl::mutateByWebhooks(const Admission::Request& req, Json& obj,
                                                       std::vector<std::string>* warnings) {
  // What a webhook may not change: the object's identity.
  Json keep = Json::object();
  for (const char* f : {"name", "namespace", "uid", "creationTimestamp", "resourceVersion"})
    if (const Json* v = json::find(obj, {"metadata", f})) keep[f] = *v;
  auto changed = admission_.mutate(req, obj, warnings);
  if (!changed) return Unexpected(changed.error());
  if (!*changed) return {};
  if (!obj.is_object() || !obj["metadata"].is_object())
    return Unexpected(ApiError::internal("a mutating webhook removed the object's metadata"));
  for (const auto& [f, v] : keep.items()) obj["metadata"][f] = v;
  applyDefaults(req.resource, obj);  // as Kubernetes decodes (and defaults) the patched object
  return {};
}

namespace {
// How long a request waits for the watch cache to catch up with the store (it follows within
// milliseconds; a store that keeps it waiting longer is answered from the cache as it is).
constexpr std::chrono::milliseconds kCatchUp{2000};
}  // namespace

store::Result<int64_t> StorageImpl::written(store::Result<int64_t> r) {
  if (r && !cacher_.waitForRevision(*r, kCatchUp))
    PODIUM_LOG(Warn) << "watch cache is behind revision " << *r;
  return r;
}

void StorageImpl::consistentRead() {
  int64_t current = store_.currentRevision();
  if (current > cacher_.revision()) (void)cacher_.waitForRevision(current, kCatchUp);
}

ObjectPtr StorageImpl::toVersion(const ResourceInfo& r, const ObjectPtr& obj) const {
  if (!r.custom || !obj) return obj;
  std::string want = r.apiVersion();
  if (obj->is_object() && json::str(*obj, "apiVersion", "") == want) return obj;
  auto copy = std::make_shared<Json>(*obj);
  (*copy)["apiVersion"] = want;
  return copy;
}

std::string StorageImpl::serialize(const ResourceInfo& r, const Json& obj) const {
  // Written member by member, without a copy of the object.
  std::string out = "{";
  bool first = true;
  auto member = [&](const std::string& key, const std::string& value) {
    out += first ? "" : ",";
    first = false;
    out += json::dump(Json(key)) + ":" + value;
  };
  if (!obj.is_object()) return json::dump(obj);
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (it.key() == "apiVersion" && r.custom && !r.storageVersion.empty()) {
      member(it.key(), Json(r.group + "/" + r.storageVersion).dump());
    } else if (it.key() == "metadata" && it.value().is_object()) {
      std::string meta = "{";
      bool firstMeta = true;
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (m.key() == "resourceVersion" || m.key() == "selfLink") continue;
        meta += (firstMeta ? "" : ",") + json::dump(Json(m.key())) + ":" + json::dump(m.value());
        firstMeta = false;
      }
      member(it.key(), meta + "}");
    } else {
      member(it.key(), json::dump(it.value()));
    }
  }
  return out + "}";
}

store::Result<int64_t> StorageImpl::write(const ResourceInfo& r, const std::string& key,
                                          const Json& obj, int64_t oldRevision, bool create) {
  auto bytes = std::make_shared<const std::string>(serialize(r, obj));
  // What the cache would decode from the bytes: the object in its stored apiVersion, without
  // the fields serialize() leaves out.
  auto stored = std::make_shared<Json>(obj);
  if (stored->is_object()) {
    if (r.custom && !r.storageVersion.empty())
      (*stored)["apiVersion"] = r.group + "/" + r.storageVersion;
    if (stored->contains("metadata") && (*stored)["metadata"].is_object())
      for (const char* k : {"resourceVersion", "selfLink"}) (*stored)["metadata"].erase(k);
  }
  cacher_.expect(key, bytes, std::move(stored));
  auto rv = create ? store_.create(key, *bytes) : store_.update(key, *bytes, oldRevision);
  if (!rv) cacher_.forget(key, bytes);
  return rv;
}

ApiError StorageImpl::storeError(const ResourceInfo& r, const std::string& name,
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

Expected<ObjectPtr, ApiError> StorageImpl::get(const ResourceInfo& r, const std::string& ns,
                                               const std::string& name) {
  consistentRead();
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
    static const Json kNone;
    if (!f.labels.matches(labels ? *labels : kNone)) return false;
  }
  return f.fields.empty() || f.fields.matches(obj);
}
}  // namespace

Expected<ListResult, ApiError> StorageImpl::list(const ResourceInfo& r, const std::string& ns,
                                                 const ListOptions& o) {
  auto filters = parseFilters(r, o);
  if (!filters) return Unexpected(filters.error());
  // resourceVersion "" asks for the most recent state; "0" (what informers send) for any.
  if (o.resourceVersion.empty() && o.continueToken.empty()) consistentRead();
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

Expected<WatchHandle, ApiError> StorageImpl::watch(const ResourceInfo& r, const std::string& ns,
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

void StorageImpl::stopWatch(const WatchHandle& handle) {
  if (handle.watcher) cacher_.stopWatch(handle.watcher);
}

// ----------------------------------------------------------------------------- writes

Expected<void, ApiError> StorageImpl::checkSchema(const ResourceInfo& r, Json& obj,
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

Expected<void, ApiError> StorageImpl::admitNamespace(const ResourceInfo& r, const std::string& ns) {
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

namespace {
// Kinds this server stores and serves but does not act on yet: said on create, in a Warning
// header (kubectl prints it), rather than accepted in silence.
std::string storedOnlyWarning(const ResourceInfo& r) {
  static const std::map<std::string, std::string> kStoredOnly = {
      {"networking.k8s.io/networkpolicies", "its rules are not enforced"},
  };
  auto it = kStoredOnly.find(r.group + "/" + r.plural);
  if (it == kStoredOnly.end()) return "";
  return r.apiVersion() + " " + r.kind +
         " is stored but not acted on by this server: " + it->second +
         " (docs/api-compatibility.md)";
}
}  // namespace

Expected<Json, ApiError> StorageImpl::prepareCreate(const ResourceInfo& r, const std::string& ns,
                                                    Json obj, const WriteOptions& o,
                                                    std::vector<std::string>* warnings,
                                                    bool managedFieldsDone) {
  if (auto s = checkSchema(r, obj, o, warnings); !s) return Unexpected(s.error());
  if (std::string w = storedOnlyWarning(r); !w.empty() && warnings) warnings->push_back(w);
  Json& m = metaOf(obj);
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
  const Strategy& strategy = strategyFor(r);
  if (strategy.resetsStatusOnCreate(r)) {
    if (r.custom)
      obj.erase("status");
    else
      obj["status"] = Json::object();
  }
  applyDefaults(r, obj);  // after the reset: a status' required fields are defaults too
  auto ctx = context();
  if (auto p = strategy.prepare(r, obj, nullptr, ctx); !p) return Unexpected(p.error());
  Admission::Request admit{r, o.subresource, "CREATE", ns, name, nullptr, o.dryRun};
  if (auto a = mutateByWebhooks(admit, obj, warnings); !a) return Unexpected(a.error());
  FieldErrors errs = validateObject(r, obj, nullptr);
  if (!errs.empty()) return Unexpected(ApiError::invalid(r.group, r.qualifiedKind(), name, errs));
  if (auto a = admission_.validate(admit, obj, warnings); !a) return Unexpected(a.error());
  if (!managedFieldsDone) {
    ssa::Scope scope{r.schema, r.hasStatus, o.subresource};
    ssa::recordUpdate(nullptr, obj, o.fieldManager, r.apiVersion(), now(), scope);
  }
  return obj;
}

Expected<Json, ApiError> StorageImpl::prepareUpdate(const ResourceInfo& r, const Json& old,
                                                    Json obj, const WriteOptions& o,
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
  } else if (o.subresource == "ephemeralcontainers") {
    // Only spec.ephemeralContainers changes through /ephemeralcontainers, and only by additions.
    Json next = old;
    const Json* list = json::find(obj, {"spec", "ephemeralContainers"});
    if (list)
      next["spec"]["ephemeralContainers"] = *list;
    else
      next["spec"].erase("ephemeralContainers");
    FieldErrors errs;
    validateEphemeralContainers(next, old, errs);
    if (!errs.empty())
      return Unexpected(
          ApiError::invalid(r.group, r.qualifiedKind(), metaString(old, "name"), errs));
    obj = std::move(next);
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
  Json& m = metaOf(obj);
  static const Json kNoMeta = Json::object();
  const Json& om = old.contains("metadata") ? old["metadata"] : kNoMeta;
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
  auto ctx = context();
  if (auto p = strategyFor(r).prepare(r, obj, &old, ctx); !p) return Unexpected(p.error());
  if (r.tracksGeneration) {
    int64_t gen = json::integer(om, "generation", 1);
    if (!sameSpecPart(obj, old)) ++gen;
    m["generation"] = gen;
  } else {
    m.erase("generation");
  }
  Admission::Request admit{
      r,    o.subresource, "UPDATE", metaString(old, "namespace"), metaString(old, "name"),
      &old, o.dryRun};
  if (auto a = mutateByWebhooks(admit, obj, warnings); !a) return Unexpected(a.error());
  // The pod-update rule allows no spec change; ephemeral containers were checked above.
  Json withEphemeral;
  const Json* basis = &old;
  if (o.subresource == "ephemeralcontainers") {
    withEphemeral = old;
    withEphemeral["spec"]["ephemeralContainers"] = json::at(obj, {"spec", "ephemeralContainers"});
    basis = &withEphemeral;
  }
  FieldErrors errs = validateObject(r, obj, basis);
  if (!errs.empty())
    return Unexpected(ApiError::invalid(r.group, r.qualifiedKind(), metaString(obj, "name"), errs));
  if (auto a = admission_.validate(admit, obj, warnings); !a) return Unexpected(a.error());
  if (!managedFieldsDone) {
    ssa::Scope scope{r.schema, r.hasStatus, o.subresource == "scale" ? "scale" : o.subresource};
    ssa::recordUpdate(&old, obj, o.fieldManager, r.apiVersion(), now(), scope);
  }
  return obj;
}

Expected<WriteResult, ApiError> StorageImpl::commit(const ResourceInfo& r, const std::string& key,
                                                    const Json* old, int64_t oldRevision, Json obj,
                                                    const WriteOptions& o) {
  WriteResult out;
  std::string name = metaString(obj, "name");
  if (old) {
    if (deletionComplete(r, obj)) {
      // The last finalizer is gone: the object goes away now.
      if (!o.dryRun) {
        auto rv = written(store_.remove(key, oldRevision));
        if (!rv) return Unexpected(storeError(r, name, rv.error()));
        obj["metadata"]["resourceVersion"] = std::to_string(*rv);
      }
      out.object = std::move(obj);
      return out;
    }
    if (sameButVolatile(obj, *old)) {
      out.object = *old;  // nothing changed: no write, same resourceVersion
      return out;
    }
    if (o.dryRun) {
      obj["metadata"]["resourceVersion"] = std::to_string(oldRevision);
      out.object = std::move(obj);
      return out;
    }
    auto rv = written(write(r, key, obj, oldRevision, false));
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
  auto rv = written(write(r, key, obj, 0, true));
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

Expected<WriteResult, ApiError> StorageImpl::create(const ResourceInfo& r, const std::string& ns,
                                                    Json obj, const WriteOptions& o) {
  if (auto t = checkTypeMeta(r, obj); !t) return Unexpected(t.error());
  std::string bodyNs = json::getString(obj, {"metadata", "namespace"});
  if (r.namespaced && !bodyNs.empty() && bodyNs != ns)
    return Unexpected(ApiError::badRequest(
        "the namespace of the provided object does not match the namespace sent on the request"));
  if (auto a = admitNamespace(r, ns); !a) return Unexpected(a.error());
  const Strategy& strategy = strategyFor(r);
  std::unique_lock<std::mutex> writeLock;
  if (std::mutex* m = strategy.writeLock()) writeLock = std::unique_lock<std::mutex>(*m);
  WriteResult result;
  auto prepared = prepareCreate(r, ns, std::move(obj), o, &result.warnings, false);
  if (!prepared) return Unexpected(prepared.error());
  std::string name = metaString(*prepared, "name");
  auto committed = commit(r, r.key(ns, name), nullptr, 0, std::move(*prepared), o);
  if (!committed) return committed;
  committed->warnings = std::move(result.warnings);
  if (!o.dryRun) {
    writeLock = {};
    auto ctx = context();
    strategy.afterCreate(r, committed->object, ctx);
  }
  return committed;
}

Expected<WriteResult, ApiError> StorageImpl::guaranteedUpdate(
    const ResourceInfo& r, const std::string& ns, const std::string& name, const WriteOptions& o,
    bool allowCreate, const Mutator& mutate) {
  std::string key = r.key(ns, name);
  std::unique_lock<std::mutex> writeLock;
  if (std::mutex* m = strategyFor(r).writeLock()) writeLock = std::unique_lock<std::mutex>(*m);
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto cur = cacher_.get(key);
    if (!cur && !allowCreate)
      return Unexpected(ApiError::notFound(r.group, r.qualifiedResource(), name));
    ObjectPtr current = cur ? toVersion(r, cur->object) : nullptr;
    auto next = mutate(current.get());
    if (!next) return Unexpected(next.error());
    auto result = commit(r, key, current.get(), cur ? cur->revision : 0, std::move(*next), o);
    bool raced = !result && result.error().code() == 409 &&
                 (result.error().reason() == "Conflict" ||
                  (!cur && result.error().reason() == "AlreadyExists"));
    if (raced) {
      consistentRead();  // another writer got there first: read its write, then try again
      continue;
    }
    return result;
  }
  return Unexpected(ApiError::conflictModified(r.group, r.qualifiedResource(), name));
}

namespace {
// A subresource the resource does not have is not found, in process as over HTTP.
Expected<void, ApiError> checkSubresource(const ResourceInfo& r, const std::string& sub) {
  if (sub == "status" && !r.hasStatus)
    return Unexpected(
        ApiError(404, "NotFound", "the server could not find the requested resource"));
  return {};
}
}  // namespace

Expected<WriteResult, ApiError> StorageImpl::update(const ResourceInfo& r, const std::string& ns,
                                                    const std::string& name, Json obj,
                                                    const WriteOptions& o) {
  if (auto s = checkSubresource(r, o.subresource); !s) return Unexpected(s.error());
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

Expected<WriteResult, ApiError> StorageImpl::patch(const ResourceInfo& r, const std::string& ns,
                                                   const std::string& name, PatchType type,
                                                   const std::string& body, const WriteOptions& o) {
  if (auto s = checkSubresource(r, o.subresource); !s) return Unexpected(s.error());
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

}  // namespace podium::api
