#include "podium/api/schema.h"

#include <functional>
#include <mutex>

#include "podium/common/strings.h"

extern const char kPodiumBuiltinSchema[];  // generated from schema/builtin.schema + extra.schema

namespace podium::api::schema {

const Field* Type::field(std::string_view json) const {
  auto it = byJson_.find(json);
  return it == byJson_.end() ? nullptr : it->second;
}

std::vector<const Field*> Type::jsonFields() const {
  std::vector<const Field*> out;
  for (const auto& f : fields) {
    if (f.inlined) {
      auto inner = f.type->jsonFields();
      out.insert(out.end(), inner.begin(), inner.end());
    } else {
      out.push_back(&f);
    }
  }
  return out;
}

namespace {
struct ScalarName {
  Kind kind;
  const char* name;
};
constexpr ScalarName kScalars[] = {
    {Kind::String, "string"},     {Kind::Int32, "int32"},
    {Kind::Int64, "int64"},       {Kind::Bool, "bool"},
    {Kind::Float64, "float64"},   {Kind::Bytes, "bytes"},
    {Kind::Quantity, "quantity"}, {Kind::IntOrString, "intorstring"},
    {Kind::Time, "time"},         {Kind::MicroTime, "microtime"},
    {Kind::Duration, "duration"}, {Kind::Raw, "raw"},
    {Kind::FieldsV1, "fieldsv1"},
};
}  // namespace

const char* kindName(Kind kind) {
  for (const auto& s : kScalars)
    if (s.kind == kind) return s.name;
  switch (kind) {
    case Kind::Object:
      return "object";
    case Kind::List:
      return "list";
    case Kind::Map:
      return "map";
    default:
      return "?";
  }
}

Registry::Registry() {
  for (const auto& s : kScalars) {
    Type& t = types_.emplace_back();
    t.kind = s.kind;
    t.name = s.name;
    byName_[t.name] = &t;
  }
}

const Type* Registry::find(std::string_view name) const {
  auto it = byName_.find(name);
  return it == byName_.end() ? nullptr : it->second;
}

const Type* Registry::scalar(Kind kind) const { return find(kindName(kind)); }

const Type* Registry::listOf(const Type* elem) {
  std::string name = "list<" + elem->name + ">";
  if (auto* t = find(name)) return t;
  Type& t = types_.emplace_back();
  t.kind = Kind::List;
  t.name = name;
  t.elem = elem;
  byName_[name] = &t;
  return &t;
}

const Type* Registry::mapOf(const Type* elem) {
  std::string name = "map<" + elem->name + ">";
  if (auto* t = find(name)) return t;
  Type& t = types_.emplace_back();
  t.kind = Kind::Map;
  t.name = name;
  t.elem = elem;
  byName_[name] = &t;
  return &t;
}

Type* Registry::addObject(const std::string& name) {
  Type& t = types_.emplace_back();
  t.kind = Kind::Object;
  t.name = name;
  byName_[name] = &t;
  return &t;
}

void Registry::finish(Type* type) {
  type->byJson_.clear();
  for (const Field* f : type->jsonFields()) type->byJson_[f->json] = f;
}

std::vector<const Type*> Registry::objects() const {
  std::vector<const Type*> out;
  for (const auto& t : types_)
    if (t.kind == Kind::Object) out.push_back(&t);
  return out;
}

Expected<void, std::string> Registry::load(std::string_view text) {
  // Two passes: declare every type, then resolve field types (types refer forward).
  struct PendingField {
    Type* owner;
    size_t index;
    std::string typeText;
  };
  std::vector<PendingField> pending;
  std::vector<Type*> declared;
  Type* current = nullptr;
  int lineNo = 0;
  for (const auto& rawLine : strings::split(text, '\n')) {
    ++lineNo;
    std::string_view line = strings::trim(rawLine);
    if (line.empty() || line.front() == '#') continue;
    auto tokens = strings::split(line, ' ');
    auto fail = [&](const std::string& why) {
      return Unexpected("schema line " + std::to_string(lineNo) + ": " + why);
    };
    bool indented = !rawLine.empty() && (rawLine[0] == ' ' || rawLine[0] == '\t');
    if (!indented && tokens[0] == "type") {
      if (tokens.size() != 2) return fail("type needs a name");
      if (find(tokens[1])) return fail("duplicate type " + tokens[1]);
      current = addObject(tokens[1]);
      declared.push_back(current);
      continue;
    }
    if (!current) return fail("field outside a type");
    if (tokens.size() < 3) return fail("field needs name, number and type");
    Field f;
    bool inlined = tokens[0] == "-";
    f.json = inlined ? "" : tokens[0];
    f.inlined = inlined;
    if (tokens[1] != "-") {
      auto n = strings::parseInt(std::string_view(tokens[1]).substr(1));
      if (tokens[1][0] != 'p' || !n) return fail("bad protobuf number " + tokens[1]);
      f.proto = static_cast<int>(*n);
    }
    for (size_t i = 3; i < tokens.size(); ++i) {
      const std::string& flag = tokens[i];
      if (flag == "ptr")
        f.pointer = true;
      else if (flag == "always")
        f.always = true;
      else if (flag == "inline")
        f.inlined = true;
      else if (flag == "mergeset")
        f.mergeSet = true;
      else if (flag == "retainKeys")
        f.retainKeys = true;
      else if (flag == "replace")
        f.replace = true;
      else if (flag.rfind("merge=", 0) == 0)
        f.mergeKey = flag.substr(6);
      else
        return fail("unknown flag " + flag);
    }
    current->fields.push_back(std::move(f));
    pending.push_back({current, current->fields.size() - 1, tokens[2]});
  }
  // Resolves "list<…>", "map<…>", scalars and object names.
  std::function<const Type*(std::string_view)> resolve = [&](std::string_view t) -> const Type* {
    if (t.rfind("list<", 0) == 0 && t.back() == '>') {
      const Type* e = resolve(t.substr(5, t.size() - 6));
      return e ? listOf(e) : nullptr;
    }
    if (t.rfind("map<", 0) == 0 && t.back() == '>') {
      const Type* e = resolve(t.substr(4, t.size() - 5));
      return e ? mapOf(e) : nullptr;
    }
    return find(t);
  };
  for (auto& p : pending) {
    const Type* t = resolve(p.typeText);
    if (!t) return Unexpected("schema: unknown type " + p.typeText + " in " + p.owner->name);
    Field& f = p.owner->fields[p.index];
    f.type = t;
    if (t->kind == Kind::List) {
      if (!f.mergeKey.empty()) {
        f.listType = ListType::Map;
        f.listKeys = {f.mergeKey};
      } else if (f.mergeSet) {
        f.listType = ListType::Set;
      }
    }
  }
  for (Type* t : declared) finish(t);
  return {};
}

namespace {

// Facts the Go struct tags do not carry: list-map keys that include more than the merge key, and
// structs that apply treats as one value (+structType=atomic / +listType markers upstream).
void applyApplyMarkers(Registry& r) {
  struct ListKeys {
    const char* type;
    const char* field;
    std::vector<std::string> keys;
  };
  const ListKeys listKeys[] = {
      {"core.v1.Container", "ports", {"containerPort", "protocol"}},
      {"core.v1.EphemeralContainerCommon", "ports", {"containerPort", "protocol"}},
      {"core.v1.ServiceSpec", "ports", {"port", "protocol"}},
  };
  for (const auto& lk : listKeys) {
    auto* t = const_cast<Type*>(r.find(lk.type));
    if (!t) continue;
    for (auto& f : t->fields)
      if (f.json == lk.field) {
        f.listType = ListType::Map;
        f.listKeys = lk.keys;
      }
  }
  for (const char* name :
       {"meta.v1.LabelSelector", "core.v1.LocalObjectReference", "core.v1.ObjectReference",
        "core.v1.ObjectFieldSelector", "core.v1.ResourceFieldSelector",
        "core.v1.ConfigMapKeySelector", "core.v1.SecretKeySelector", "core.v1.NodeSelector",
        "core.v1.TypedLocalObjectReference", "core.v1.TopologySelectorTerm"}) {
    if (auto* t = const_cast<Type*>(r.find(name))) t->atomic = true;
  }
}

}  // namespace

const Registry& builtin() {
  static Registry* registry = [] {
    auto* r = new Registry();
    auto loaded = r->load(kPodiumBuiltinSchema);
    if (!loaded) {
      fprintf(stderr, "fatal: built-in schema: %s\n", loaded.error().c_str());
      abort();
    }
    applyApplyMarkers(*r);
    return r;
  }();
  return *registry;
}

// ----------------------------------------------------------------------------- CRD schemas

namespace {

class CrdBuilder {
 public:
  explicit CrdBuilder(Registry& r) : r_(r) {}

  Expected<const Type*, std::string> build(const Json& s, const std::string& name,
                                           const std::string& path, int depth) {
    if (depth > 64) return Unexpected("schema nested too deeply at " + path);
    if (!s.is_object()) return Unexpected(path + ": schema must be an object");
    bool preserve = json::boolean(s, "x-kubernetes-preserve-unknown-fields", false);
    bool intOrString = json::boolean(s, "x-kubernetes-int-or-string", false);
    bool embedded = json::boolean(s, "x-kubernetes-embedded-resource", false);
    std::string type =
        s.contains("type") && s["type"].is_string() ? s["type"].get<std::string>() : "";
    const Type* out = nullptr;
    if (intOrString) {
      out = r_.scalar(Kind::IntOrString);
    } else if (type == "object" || (type.empty() && (s.contains("properties") || embedded))) {
      auto props = s.find("properties");
      auto addl = s.find("additionalProperties");
      bool hasProps = props != s.end() && props->is_object();
      if (!hasProps && addl != s.end() && (addl->is_object() || addl->is_boolean())) {
        const Type* elem = r_.scalar(Kind::Raw);
        if (addl->is_object()) {
          auto e = build(*addl, name + ".additionalProperties", path + "[*]", depth + 1);
          if (!e) return e;
          elem = *e;
        }
        Type* m = const_cast<Type*>(r_.mapOf(elem));
        out = m;
        if (json::str(s, "x-kubernetes-map-type", "") == "atomic") {
          // Interned map types are shared; atomic ones get their own node.
          Type* own = r_.addObject(name);
          own->kind = Kind::Map;
          own->elem = elem;
          own->atomic = true;
          out = own;
        }
      } else if (!hasProps && (preserve || embedded)) {
        out = r_.scalar(Kind::Raw);
      } else {
        Type* t = r_.addObject(uniqueName(name));
        t->preserveUnknown = preserve;
        t->atomic = json::str(s, "x-kubernetes-map-type", "") == "atomic";
        if (hasProps) {
          for (auto it = props->begin(); it != props->end(); ++it) {
            auto ft = build(it.value(), t->name + "." + it.key(), path + "." + it.key(), depth + 1);
            if (!ft) return ft;
            Field f;
            f.json = it.key();
            f.type = *ft;
            if ((*ft)->kind == Kind::List) setListType(f, it.value());
            t->fields.push_back(std::move(f));
          }
        }
        if (embedded) addEmbeddedResourceFields(t);
        if (auto req = s.find("required"); req != s.end() && req->is_array())
          for (const auto& v : *req)
            if (v.is_string()) t->required.push_back(v.get<std::string>());
        r_.finish(t);
        out = t;
      }
    } else if (type == "array") {
      const Type* elem = r_.scalar(Kind::Raw);
      if (auto items = s.find("items"); items != s.end() && items->is_object()) {
        auto e = build(*items, name + ".items", path + "[*]", depth + 1);
        if (!e) return e;
        elem = *e;
      }
      out = r_.listOf(elem);
    } else if (type == "string") {
      out = r_.scalar(Kind::String);
    } else if (type == "integer") {
      out = r_.scalar(Kind::Int64);
    } else if (type == "number") {
      out = r_.scalar(Kind::Float64);
    } else if (type == "boolean") {
      out = r_.scalar(Kind::Bool);
    } else if (type.empty()) {
      out = r_.scalar(Kind::Raw);
    } else {
      return Unexpected(path + ".type: Unsupported value: \"" + type + "\"");
    }
    bool hasEnum = s.contains("enum") && s["enum"].is_array() && !s["enum"].empty();
    bool nullable = json::boolean(s, "nullable", false);
    if ((hasEnum || nullable) && out->kind != Kind::Object) {
      // Scalars are shared; constrained ones get a private copy carrying the constraint.
      Type* own = r_.addObject(uniqueName(name));
      own->kind = out->kind;
      own->elem = out->elem;
      own->atomic = out->atomic;
      out = own;
    }
    Type* mut = const_cast<Type*>(out);
    if (hasEnum && out->kind != Kind::Object) mut->enumValues = s["enum"].get<std::vector<Json>>();
    if (nullable && out->kind != Kind::Object) mut->nullable = true;
    if (nullable && out->kind == Kind::Object) mut->nullable = true;
    return out;
  }

 private:
  std::string uniqueName(const std::string& name) {
    if (!r_.find(name)) return name;
    for (int i = 2;; ++i) {
      std::string n = name + "#" + std::to_string(i);
      if (!r_.find(n)) return n;
    }
  }

  void setListType(Field& f, const Json& s) {
    std::string lt = json::str(s, "x-kubernetes-list-type", "atomic");
    if (lt == "set") {
      f.listType = ListType::Set;
    } else if (lt == "map") {
      f.listType = ListType::Map;
      if (auto keys = s.find("x-kubernetes-list-map-keys"); keys != s.end() && keys->is_array())
        for (const auto& k : *keys)
          if (k.is_string()) f.listKeys.push_back(k.get<std::string>());
    }
  }

  void addEmbeddedResourceFields(Type* t) {
    for (const char* n : {"apiVersion", "kind"}) {
      if (t->field(n)) continue;
      Field f;
      f.json = n;
      f.type = r_.scalar(Kind::String);
      t->fields.push_back(f);
    }
    if (!t->field("metadata")) {
      Field f;
      f.json = "metadata";
      f.type = builtin().find("meta.v1.ObjectMeta");
      t->fields.push_back(f);
    }
    r_.finish(t);
  }

  Registry& r_;
};

}  // namespace

Expected<CrdSchema, std::string> crdSchema(const std::string& name, const Json& openAPIV3Schema) {
  CrdSchema out;
  out.registry = std::make_shared<Registry>();
  CrdBuilder b(*out.registry);
  Json root = openAPIV3Schema.is_object() ? openAPIV3Schema : Json::object();
  if (!root.contains("type")) root["type"] = "object";
  if (root["type"] != "object")
    return Unexpected(std::string("openAPIV3Schema.type must be object"));
  auto t = b.build(root, name, "openAPIV3Schema", 0);
  if (!t) return Unexpected(t.error());
  Type* rootType = const_cast<Type*>(*t);
  if (rootType->kind != Kind::Object || !rootType->fields.size()) {
    // A root that keeps everything (no properties) still gets the standard object fields.
    if (rootType->kind != Kind::Object) {
      rootType = out.registry->addObject(name + "#root");
      rootType->preserveUnknown = true;
    }
  }
  // Every custom resource has apiVersion, kind and standard metadata, whatever its schema says.
  std::vector<Field> fixed;
  for (const char* n : {"apiVersion", "kind"}) {
    Field f;
    f.json = n;
    f.type = out.registry->scalar(Kind::String);
    fixed.push_back(f);
  }
  Field meta;
  meta.json = "metadata";
  meta.type = builtin().find("meta.v1.ObjectMeta");
  fixed.push_back(meta);
  std::vector<Field> rest;
  for (auto& f : rootType->fields)
    if (f.json != "apiVersion" && f.json != "kind" && f.json != "metadata")
      rest.push_back(std::move(f));
  rootType->fields = std::move(fixed);
  for (auto& f : rest) rootType->fields.push_back(std::move(f));
  out.registry->finish(rootType);
  out.root = rootType;
  return out;
}

}  // namespace podium::api::schema
