#include "apply.h"

#include <algorithm>
#include <functional>
#include <set>

#include "podium/common/strings.h"

namespace podium::api::ssa {

using schema::Field;
using schema::Kind;
using schema::ListType;
using schema::Type;
using Path = std::vector<std::string>;

// ----------------------------------------------------------------------------- FieldSet

namespace {
void fromJson(const Json& j, FieldSet::Node& node) {
  if (!j.is_object()) return;
  for (const auto& item : j.items()) {
    if (item.key() == ".") {
      node.member = true;
      continue;
    }
    FieldSet::Node& child = node.children[item.key()];
    if (item.value().is_object() && item.value().empty())
      child.member = true;
    else
      fromJson(item.value(), child);
  }
}

Json toJson(const FieldSet::Node& node) {
  Json out = Json::object();
  for (const auto& [k, child] : node.children) {
    if (child.children.empty()) {
      if (child.member) out[k] = Json::object();
      continue;
    }
    Json c = toJson(child);
    if (child.member) c["."] = Json::object();
    if (!c.empty()) out[k] = std::move(c);
  }
  return out;
}

void unionNodes(FieldSet::Node& a, const FieldSet::Node& b) {
  a.member = a.member || b.member;
  for (const auto& [k, child] : b.children) unionNodes(a.children[k], child);
}

void subtractNodes(FieldSet::Node& a, const FieldSet::Node& b) {
  if (b.member) a.member = false;
  for (auto it = a.children.begin(); it != a.children.end();) {
    auto bit = b.children.find(it->first);
    if (bit != b.children.end()) subtractNodes(it->second, bit->second);
    if (!it->second.member && it->second.children.empty())
      it = a.children.erase(it);
    else
      ++it;
  }
}

void intersectNodes(const FieldSet::Node& a, const FieldSet::Node& b, FieldSet::Node& out) {
  out.member = a.member && b.member;
  for (const auto& [k, child] : a.children) {
    auto bit = b.children.find(k);
    if (bit == b.children.end()) continue;
    FieldSet::Node n;
    intersectNodes(child, bit->second, n);
    if (n.member || !n.children.empty()) out.children[k] = std::move(n);
  }
}

void collect(const FieldSet::Node& node, Path& path, std::vector<Path>& out) {
  if (node.member && !path.empty()) out.push_back(path);
  for (const auto& [k, child] : node.children) {
    path.push_back(k);
    collect(child, path, out);
    path.pop_back();
  }
}
}  // namespace

FieldSet FieldSet::fromFieldsV1(const Json& fieldsV1) {
  FieldSet s;
  fromJson(fieldsV1, s.root_);
  return s;
}

Json FieldSet::toFieldsV1() const { return toJson(root_); }

void FieldSet::insert(const Path& path) {
  Node* n = &root_;
  for (const auto& p : path) n = &n->children[p];
  n->member = true;
}

bool FieldSet::has(const Path& path) const {
  const Node* n = &root_;
  for (const auto& p : path) {
    auto it = n->children.find(p);
    if (it == n->children.end()) return false;
    n = &it->second;
  }
  return n->member;
}

bool FieldSet::hasAtOrBelow(const Path& path) const {
  const Node* n = &root_;
  for (const auto& p : path) {
    auto it = n->children.find(p);
    if (it == n->children.end()) return false;
    n = &it->second;
  }
  return hasMembers(*n);
}

bool FieldSet::hasMembers(const Node& n) {
  if (n.member) return true;
  for (const auto& [k, c] : n.children)
    if (hasMembers(c)) return true;
  return false;
}

void FieldSet::unionWith(const FieldSet& other) { unionNodes(root_, other.root_); }
void FieldSet::subtract(const FieldSet& other) { subtractNodes(root_, other.root_); }

void FieldSet::removeSubtree(const Path& path) {
  if (path.empty()) {
    root_ = Node();
    return;
  }
  std::vector<Node*> chain{&root_};
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    auto it = chain.back()->children.find(path[i]);
    if (it == chain.back()->children.end()) return;
    chain.push_back(&it->second);
  }
  chain.back()->children.erase(path.back());
  for (size_t i = chain.size() - 1; i > 0; --i) {
    if (chain[i]->member || !chain[i]->children.empty()) break;
    chain[i - 1]->children.erase(path[i - 1]);
  }
}

std::vector<Path> FieldSet::members() const {
  std::vector<Path> out;
  Path p;
  collect(root_, p, out);
  return out;
}

FieldSet FieldSet::intersect(const FieldSet& other) const {
  FieldSet out;
  intersectNodes(root_, other.root_, out.root_);
  return out;
}

std::string pathString(const Path& path) {
  std::string out;
  for (const auto& e : path) {
    if (e.rfind("f:", 0) == 0) {
      out += "." + e.substr(2);
    } else if (e.rfind("k:", 0) == 0) {
      auto keys = json::parse(e.substr(2));
      std::vector<std::string> parts;
      if (keys && keys->value.is_object())
        for (const auto& item : keys->value.items())
          parts.push_back(item.key() + "=" + json::dump(item.value()));
      out += "[" + strings::join(parts, ",") + "]";
    } else if (e.rfind("v:", 0) == 0) {
      out += "[=" + e.substr(2) + "]";
    } else if (e.rfind("i:", 0) == 0) {
      out += "[" + e.substr(2) + "]";
    }
  }
  return out;
}

// ----------------------------------------------------------------------------- managed fields

std::vector<ManagedEntry> parseManagedFields(const Json& mf) {
  std::vector<ManagedEntry> out;
  if (!mf.is_array()) return out;
  for (const auto& e : mf) {
    if (!e.is_object()) continue;
    ManagedEntry m;
    m.manager = json::str(e, "manager", "");
    m.operation = json::str(e, "operation", "");
    m.apiVersion = json::str(e, "apiVersion", "");
    m.time = json::str(e, "time", "");
    m.subresource = json::str(e, "subresource", "");
    if (e.contains("fieldsV1")) m.fields = FieldSet::fromFieldsV1(e["fieldsV1"]);
    out.push_back(std::move(m));
  }
  return out;
}

Json renderManagedFields(const std::vector<ManagedEntry>& entries) {
  Json out = Json::array();
  for (const auto& e : entries) {
    if (e.fields.empty()) continue;
    Json j = {{"manager", e.manager},
              {"operation", e.operation},
              {"apiVersion", e.apiVersion},
              {"fieldsType", "FieldsV1"},
              {"fieldsV1", e.fields.toFieldsV1()}};
    if (!e.time.empty()) j["time"] = e.time;
    if (!e.subresource.empty()) j["subresource"] = e.subresource;
    out.push_back(std::move(j));
  }
  return out;
}

namespace {

// ----------------------------------------------------------------------------- walking values

const Type* childType(const Type* t, const std::string& key, const Field** field) {
  *field = nullptr;
  if (!t) return nullptr;
  if (t->kind == Kind::Object) {
    *field = t->field(key);
    return *field ? (*field)->type : nullptr;
  }
  if (t->kind == Kind::Map) return t->elem;
  return nullptr;  // Raw: deduced (granular maps, atomic lists)
}

bool isGranularMap(const Type* t, const Json& v) {
  if (!v.is_object()) return false;
  if (!t) return true;  // deduced
  if (t->atomic) return false;
  return t->kind == Kind::Object || t->kind == Kind::Map || t->kind == Kind::Raw;
}

ListType listTypeOf(const Field* f) { return f ? f->listType : ListType::Atomic; }

// Key element for an associative-list item; empty if a key is missing.
std::string itemKey(const Json& item, const std::vector<std::string>& keys) {
  if (!item.is_object()) return "";
  Json k = Json::object();
  for (const auto& name : keys) {
    if (item.contains(name) && !item[name].is_null())
      k[name] = item[name];
    else if (name == "protocol")
      k[name] = "TCP";  // the schema default upstream relies on
    else
      return "";
  }
  return "k:" + json::dump(k);
}

std::string valueElement(const Json& v) { return "v:" + json::dump(v); }

// The paths a value occupies. `applyRules` follows structured-merge-diff's ToFieldSet (used
// for Apply); otherwise newly present optional nodes are members too (as Update diffs record).
struct SetBuilder {
  bool applyRules;
  FieldSet out;
  bool ok = true;
  std::string error;

  void walk(const Json& v, const Type* t, const Field* f, Path& path, bool alwaysPresent) {
    if (v.is_null()) {
      out.insert(path);
      return;
    }
    if (isGranularMap(t, v)) {
      // Empty maps are leaves; Update diffs also record optional nodes that came into being.
      if (v.empty() || (!applyRules && !alwaysPresent)) out.insert(path);
      for (const auto& item : v.items()) {
        const Field* cf = nullptr;
        const Type* ct = childType(t, item.key(), &cf);
        path.push_back("f:" + item.key());
        bool declared = cf != nullptr;
        bool childAlways = declared && cf->type && cf->type->kind == Kind::Object && !cf->pointer;
        walk(item.value(), ct, cf, path, childAlways);
        if (applyRules && !declared && !item.value().is_object()) out.insert(path);
        path.pop_back();
      }
      return;
    }
    if (v.is_array() && t && t->kind == Kind::List) {
      ListType lt = listTypeOf(f);
      if (lt == ListType::Map) {
        for (size_t i = 0; i < v.size(); ++i) {
          std::string k = itemKey(v[i], f->listKeys);
          if (k.empty()) {
            ok = false;
            error = pathString(path) + ": element " + std::to_string(i) +
                    ": associative list with keys has an element that omits key field \"" +
                    f->listKeys[0] + "\"";
            out.insert(path);
            return;
          }
          path.push_back(k);
          walk(v[i], t->elem, nullptr, path, false);
          out.insert(path);
          path.pop_back();
        }
        return;
      }
      if (lt == ListType::Set) {
        for (const auto& item : v) {
          path.push_back(valueElement(item));
          out.insert(path);
          path.pop_back();
        }
        return;
      }
    }
    out.insert(path);  // scalars and atomic values
  }
};

bool isStripped(const Path& p, const Scope& scope) {
  if (p.empty()) return false;
  if (p[0] == "f:apiVersion" || p[0] == "f:kind") return true;
  if (p[0] == "f:metadata") {
    if (p.size() == 1) return true;
    static const char* kServerOwned[] = {"f:name",
                                         "f:namespace",
                                         "f:uid",
                                         "f:resourceVersion",
                                         "f:generation",
                                         "f:creationTimestamp",
                                         "f:selfLink",
                                         "f:managedFields",
                                         "f:deletionTimestamp",
                                         "f:deletionGracePeriodSeconds",
                                         "f:generateName"};
    for (const char* s : kServerOwned)
      if (p[1] == s) return true;
  }
  if (scope.hasStatusSubresource) {
    bool isStatus = p[0] == "f:status";
    if (scope.subresource == "status") return !isStatus && p[0] != "f:metadata";
    return isStatus;
  }
  return false;
}

FieldSet filterScope(const FieldSet& s, const Scope& scope) {
  FieldSet out;
  for (const auto& p : s.members())
    if (!isStripped(p, scope)) out.insert(p);
  return out;
}

FieldSet fieldsOf(const Json& obj, const Scope& scope, bool applyRules,
                  std::string* error = nullptr) {
  SetBuilder b{applyRules, {}, true, {}};
  Path path;
  Json copy = obj;
  if (copy.is_object() && copy.contains("metadata") && copy["metadata"].is_object()) {
    copy["metadata"].erase("managedFields");
  }
  if (copy.is_object())
    for (const auto& item : copy.items()) {
      const Field* f = nullptr;
      const Type* t = childType(scope.type, item.key(), &f);
      path.push_back("f:" + item.key());
      bool always = f && f->type && f->type->kind == Kind::Object && !f->pointer;
      b.walk(item.value(), t, f, path, always);
      path.pop_back();
    }
  if (!b.ok && error) *error = b.error;
  return filterScope(b.out, scope);
}

// Value at a path, if present.
const Json* valueAt(const Json& obj, const Path& path) {
  const Json* cur = &obj;
  for (const auto& e : path) {
    if (e.rfind("f:", 0) == 0) {
      if (!cur->is_object()) return nullptr;
      auto it = cur->find(e.substr(2));
      if (it == cur->end()) return nullptr;
      cur = &*it;
    } else if (e.rfind("k:", 0) == 0) {
      if (!cur->is_array()) return nullptr;
      auto keys = json::parse(e.substr(2));
      if (!keys || !keys->value.is_object()) return nullptr;
      const Json* found = nullptr;
      for (const auto& item : *cur) {
        bool match = item.is_object();
        for (const auto& k : keys->value.items()) {
          if (!match) break;
          Json have = item.contains(k.key()) ? item[k.key()]
                                             : (k.key() == "protocol" ? Json("TCP") : Json());
          match = have == k.value();
        }
        if (match) {
          found = &item;
          break;
        }
      }
      if (!found) return nullptr;
      cur = found;
    } else if (e.rfind("v:", 0) == 0) {
      if (!cur->is_array()) return nullptr;
      auto v = json::parse(e.substr(2));
      if (!v) return nullptr;
      const Json* found = nullptr;
      for (const auto& item : *cur)
        if (item == v->value) found = &item;
      if (!found) return nullptr;
      cur = found;
    } else {
      return nullptr;
    }
  }
  return cur;
}

// Removes the node at `path` from obj (map key, list item by key or value).
void removeAt(Json& obj, const Path& path) {
  if (path.empty()) return;
  Path parent(path.begin(), path.end() - 1);
  Json* p = const_cast<Json*>(valueAt(obj, parent));
  if (!p) return;
  const std::string& last = path.back();
  if (last.rfind("f:", 0) == 0 && p->is_object()) {
    p->erase(last.substr(2));
  } else if (p->is_array()) {
    for (auto it = p->begin(); it != p->end(); ++it) {
      Path itemPath = parent;
      itemPath.push_back(last);
      if (valueAt(obj, itemPath) == &*it) {
        p->erase(it);
        break;
      }
    }
  }
}

// Merges an apply configuration into the live object: granular maps field by field,
// associative lists by key, sets by value, everything else replaced.
Json mergeApplied(const Json& live, const Json& config, const Type* t, const Field* f) {
  if (config.is_null()) return live;
  if (isGranularMap(t, config) && live.is_object()) {
    Json out = live;
    for (const auto& item : config.items()) {
      const Field* cf = nullptr;
      const Type* ct = childType(t, item.key(), &cf);
      if (out.contains(item.key()))
        out[item.key()] = mergeApplied(out[item.key()], item.value(), ct, cf);
      else
        out[item.key()] = item.value();
    }
    return out;
  }
  if (config.is_array() && live.is_array() && t && t->kind == Kind::List) {
    ListType lt = listTypeOf(f);
    if (lt == ListType::Map) {
      Json out = live;
      for (const auto& item : config) {
        std::string k = itemKey(item, f->listKeys);
        bool merged = false;
        for (auto& have : out)
          if (!k.empty() && itemKey(have, f->listKeys) == k) {
            have = mergeApplied(have, item, t->elem, nullptr);
            merged = true;
            break;
          }
        if (!merged) out.push_back(item);
      }
      return out;
    }
    if (lt == ListType::Set) {
      Json out = live;
      for (const auto& item : config)
        if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
      return out;
    }
  }
  return config;
}

// Paths whose values differ between old and new (added or changed), and paths removed.
struct Diff {
  FieldSet changed, removed;
};

void diffWalk(const Json* oldV, const Json& newV, const Type* t, const Field* f, Path& path,
              bool alwaysPresent, Diff& d) {
  if (oldV && !oldV->is_null() && *oldV == newV) return;  // the same: nothing changed below
  if (!oldV || oldV->is_null()) {
    SetBuilder b{false, {}, true, {}};
    b.walk(newV, t, f, path, alwaysPresent);
    d.changed.unionWith(b.out);
    return;
  }
  if (isGranularMap(t, newV) && oldV->is_object()) {
    for (const auto& item : newV.items()) {
      const Field* cf = nullptr;
      const Type* ct = childType(t, item.key(), &cf);
      path.push_back("f:" + item.key());
      auto it = oldV->find(item.key());
      bool childAlways = cf && cf->type && cf->type->kind == Kind::Object && !cf->pointer;
      diffWalk(it == oldV->end() ? nullptr : &*it, item.value(), ct, cf, path, childAlways, d);
      path.pop_back();
    }
    for (const auto& item : oldV->items())
      if (!newV.contains(item.key())) {
        path.push_back("f:" + item.key());
        d.removed.insert(path);
        path.pop_back();
      }
    return;
  }
  if (newV.is_array() && oldV->is_array() && t && t->kind == Kind::List) {
    ListType lt = listTypeOf(f);
    if (lt == ListType::Map) {
      std::map<std::string, const Json*> oldItems;
      for (const auto& item : *oldV) oldItems[itemKey(item, f->listKeys)] = &item;
      std::set<std::string> seen;
      for (const auto& item : newV) {
        std::string k = itemKey(item, f->listKeys);
        if (k.empty()) {
          if (*oldV != newV) d.changed.insert(path);
          return;
        }
        seen.insert(k);
        path.push_back(k);
        auto it = oldItems.find(k);
        if (it == oldItems.end()) {
          SetBuilder b{false, {}, true, {}};
          b.walk(item, t->elem, nullptr, path, false);
          d.changed.unionWith(b.out);
          d.changed.insert(path);
        } else {
          diffWalk(it->second, item, t->elem, nullptr, path, true, d);
        }
        path.pop_back();
      }
      for (const auto& [k, item] : oldItems)
        if (!k.empty() && !seen.count(k)) {
          path.push_back(k);
          d.removed.insert(path);
          path.pop_back();
        }
      return;
    }
    if (lt == ListType::Set) {
      for (const auto& item : newV)
        if (std::find(oldV->begin(), oldV->end(), item) == oldV->end()) {
          path.push_back(valueElement(item));
          d.changed.insert(path);
          path.pop_back();
        }
      for (const auto& item : *oldV)
        if (std::find(newV.begin(), newV.end(), item) == newV.end()) {
          path.push_back(valueElement(item));
          d.removed.insert(path);
          path.pop_back();
        }
      return;
    }
  }
  if (*oldV != newV) d.changed.insert(path);
}

Diff diffObjects(const Json& oldObj, const Json& newObj, const Scope& scope) {
  Diff d;
  Path path;
  static const Json none = Json::object();
  const Json& a = oldObj.is_object() ? oldObj : none;
  const Json& b = newObj.is_object() ? newObj : none;
  // managedFields is not a field managers own: left out (of a copy of metadata alone — the rest
  // is compared in place, objects can be large).
  auto withoutManaged = [](const Json& meta) {
    Json m = meta;
    if (m.is_object()) m.erase("managedFields");
    return m;
  };
  for (const auto& item : b.items()) {
    const Field* f = nullptr;
    const Type* t = childType(scope.type, item.key(), &f);
    path.push_back("f:" + item.key());
    auto it = a.find(item.key());
    bool always = f && f->type && f->type->kind == Kind::Object && !f->pointer;
    if (item.key() == "metadata") {
      Json oldMeta = it == a.end() ? Json() : withoutManaged(*it);
      diffWalk(it == a.end() ? nullptr : &oldMeta, withoutManaged(item.value()), t, f, path, always,
               d);
    } else {
      diffWalk(it == a.end() ? nullptr : &*it, item.value(), t, f, path, always, d);
    }
    path.pop_back();
  }
  for (const auto& item : a.items())
    if (!b.contains(item.key())) d.removed.insert({"f:" + item.key()});
  d.changed = filterScope(d.changed, scope);
  d.removed = filterScope(d.removed, scope);
  return d;
}

ManagedEntry* findEntry(std::vector<ManagedEntry>& entries, const std::string& manager,
                        const std::string& op, const std::string& sub) {
  for (auto& e : entries)
    if (e.manager == manager && e.operation == op && e.subresource == sub) return &e;
  return nullptr;
}

void dropEmpty(std::vector<ManagedEntry>& entries) {
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [](const ManagedEntry& e) { return e.fields.empty(); }),
                entries.end());
}

const Json& managedFieldsOf(const Json* obj) {
  static const Json null;
  if (!obj || !obj->is_object()) return null;
  auto m = obj->find("metadata");
  if (m == obj->end() || !m->is_object()) return null;
  auto mf = m->find("managedFields");
  return mf == m->end() ? null : *mf;
}

}  // namespace

void recordUpdate(const Json* oldObj, Json& newObj, const std::string& manager,
                  const std::string& apiVersion, const std::string& now, const Scope& scope) {
  const Json& oldMf = managedFieldsOf(oldObj);
  const Json& newMf = managedFieldsOf(&newObj);
  // A client that rewrites managedFields (kubectl's client-side to server-side apply migration,
  // or clearing them with []) gets what it sent.
  if (oldObj && !newMf.is_null() && newMf != oldMf) {
    newObj["metadata"]["managedFields"] = renderManagedFields(parseManagedFields(newMf));
    if (newObj["metadata"]["managedFields"].empty()) newObj["metadata"].erase("managedFields");
    return;
  }
  std::vector<ManagedEntry> entries = parseManagedFields(oldMf);
  static const Json kEmpty = Json::object();
  Diff d = diffObjects(oldObj ? *oldObj : kEmpty, newObj, scope);  // (no copy of the old object)
  if (!d.changed.empty() || !d.removed.empty()) {
    for (auto& e : entries) {
      e.fields.subtract(d.changed);
      for (const auto& p : d.removed.members()) e.fields.removeSubtree(p);
    }
    ManagedEntry* mine = findEntry(entries, manager, "Update", scope.subresource);
    if (!mine) {
      entries.push_back(ManagedEntry{manager, "Update", apiVersion, now, scope.subresource, {}});
      mine = &entries.back();
    }
    mine->fields.unionWith(d.changed);
    mine->apiVersion = apiVersion;
    mine->time = now;
    dropEmpty(entries);
  }
  Json rendered = renderManagedFields(entries);
  if (rendered.empty()) {
    if (newObj.contains("metadata") && newObj["metadata"].is_object())
      newObj["metadata"].erase("managedFields");
  } else {
    newObj["metadata"]["managedFields"] = std::move(rendered);
  }
}

Expected<Json, ApiError> apply(const Json* live, const Json& config, const std::string& manager,
                               bool force, const std::string& now, const Scope& scope,
                               const std::string& qualifiedResource, const std::string& name) {
  std::string keyError;
  FieldSet applied = fieldsOf(config, scope, true, &keyError);
  if (!keyError.empty()) return Unexpected(ApiError(422, "Invalid", keyError));
  Json base = live ? *live : Json::object();
  std::vector<ManagedEntry> entries = parseManagedFields(managedFieldsOf(live));
  if (base.contains("metadata") && base["metadata"].is_object())
    base["metadata"].erase("managedFields");

  // Only the part of the configuration this endpoint manages is applied.
  Json scoped = config;
  if (scoped.contains("metadata") && scoped["metadata"].is_object())
    scoped["metadata"].erase("managedFields");
  if (scope.hasStatusSubresource) {
    if (scope.subresource == "status") {
      for (auto it = scoped.begin(); it != scoped.end();)
        if (it.key() != "status" && it.key() != "metadata" && it.key() != "apiVersion" &&
            it.key() != "kind")
          it = scoped.erase(it);
        else
          ++it;
    } else {
      scoped.erase("status");
    }
  }
  Json merged = mergeApplied(base, scoped, scope.type, nullptr);

  // Conflicts: fields another manager owns that this configuration sets to a different value.
  std::vector<Conflict> conflicts;
  for (auto& e : entries) {
    if (e.manager == manager && e.operation == "Apply" && e.subresource == scope.subresource)
      continue;
    FieldSet shared = e.fields.intersect(applied);
    for (const auto& p : shared.members()) {
      const Json* before = valueAt(base, p);
      const Json* after = valueAt(merged, p);
      // A list item or map present on both sides is not itself a conflict; its leaves are.
      if (before && after && before->is_object() && after->is_object()) continue;
      bool differs =
          (before == nullptr) != (after == nullptr) || (before && after && *before != *after);
      if (differs) conflicts.push_back(Conflict{e.manager, e.subresource, e.apiVersion, p});
    }
  }
  if (!conflicts.empty() && !force) {
    std::vector<std::string> lines;
    Json causes = Json::array();
    for (const auto& c : conflicts) {
      std::string who = "conflict with \"" + c.manager + "\"";
      if (!c.subresource.empty()) who += " with subresource \"" + c.subresource + "\"";
      if (!c.apiVersion.empty()) who += " using " + c.apiVersion;
      lines.push_back(who + ": " + pathString(c.path));
      causes.push_back(
          {{"reason", "FieldManagerConflict"}, {"message", who}, {"field", pathString(c.path)}});
    }
    std::string msg = "Apply failed with " + std::to_string(conflicts.size()) + " conflict" +
                      (conflicts.size() == 1 ? "" : "s") + ": " + strings::join(lines, "\n");
    Json details = {{"name", name},
                    {"kind", qualifiedResource.substr(0, qualifiedResource.find('.'))},
                    {"causes", causes}};
    auto dot = qualifiedResource.find('.');
    if (dot != std::string::npos) details["group"] = qualifiedResource.substr(dot + 1);
    return Unexpected(ApiError(409, "Conflict", msg, details));
  }
  for (const auto& c : conflicts)
    for (auto& e : entries)
      if (e.manager == c.manager && e.subresource == c.subresource) e.fields.removeSubtree(c.path);

  // Fields this manager applied before but no longer does are removed unless someone else owns
  // them.
  ManagedEntry* mine = findEntry(entries, manager, "Apply", scope.subresource);
  if (mine) {
    FieldSet dropped = mine->fields;
    dropped.subtract(applied);
    auto paths = dropped.members();
    std::sort(paths.begin(), paths.end(),
              [](const Path& a, const Path& b) { return a.size() > b.size(); });
    for (const auto& p : paths) {
      bool ownedElsewhere = false;
      for (const auto& e : entries)
        if (&e != mine && e.fields.hasAtOrBelow(p)) ownedElsewhere = true;
      if (applied.hasAtOrBelow(p)) ownedElsewhere = true;
      if (!ownedElsewhere) removeAt(merged, p);
    }
  }
  // Fields the applier changed are now its alone; Update managers lose them.
  Diff d = diffObjects(base, merged, scope);
  for (auto& e : entries) {
    if (&e == mine) continue;
    if (e.operation == "Update") e.fields.subtract(d.changed);
    for (const auto& p : d.removed.members()) e.fields.removeSubtree(p);
  }
  if (!mine) {
    entries.push_back(ManagedEntry{manager, "Apply", "", now, scope.subresource, {}});
    mine = &entries.back();
  }
  mine->fields = applied;
  mine->apiVersion = json::str(config, "apiVersion", "");
  mine->time = now;
  dropEmpty(entries);
  Json rendered = renderManagedFields(entries);
  if (!rendered.empty()) merged["metadata"]["managedFields"] = std::move(rendered);
  return merged;
}

}  // namespace podium::api::ssa
