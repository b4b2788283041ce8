#pragma once

// Structural schemas of API types: one model behind strict validation, protobuf decoding,
// strategic merge patch, server-side apply and the OpenAPI documents.
//
// Built-in types come from src/api/schema/builtin.schema (generated from kubectl's own type
// metadata by tools/gen_schema.py); custom resources get theirs from their CRD's
// openAPIV3Schema (see crdSchema()).

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "podium/common/expected.h"
#include "podium/common/json.h"

namespace podium::api::schema {

enum class Kind {
  String,
  Int32,
  Int64,
  Bool,
  Float64,
  Bytes,
  Quantity,
  IntOrString,
  Time,
  MicroTime,
  Duration,
  Raw,       // any JSON value (RawExtension, x-kubernetes-preserve-unknown-fields)
  FieldsV1,  // managedFields' field set: any JSON object
  Object,
  List,
  Map,
};

enum class ListType { Atomic, Set, Map };

struct Type;

struct Field {
  std::string json;  // JSON name ("" for an inlined struct)
  int proto = 0;     // protobuf field number, 0 = not on the wire
  const Type* type = nullptr;
  bool pointer = false;  // optional (a Go pointer): omitted when unset
  bool always = false;   // serialised even when empty (no omitempty)
  bool inlined = false;  // struct whose JSON fields are flattened into the parent
  // Strategic merge patch.
  std::string mergeKey;   // lists merged by this key
  bool mergeSet = false;  // primitive list merged as a set
  bool retainKeys = false;
  bool replace = false;
  // Server-side apply.
  ListType listType = ListType::Atomic;
  std::vector<std::string> listKeys;
};

struct Type {
  Kind kind = Kind::Raw;
  std::string name;            // "core.v1.PodSpec"; "list<…>"/"map<…>"/scalar names otherwise
  const Type* elem = nullptr;  // List and Map
  std::vector<Field> fields;   // Object: declaration order, inlined structs kept as one field
  bool atomic = false;         // Object/Map replaced as a whole by apply (structType=atomic)
  // Custom-resource constraints (empty for built-ins).
  std::vector<std::string> required;
  std::vector<Json> enumValues;
  bool preserveUnknown = false;  // Object that keeps fields it does not declare
  bool nullable = false;

  // Field by JSON name, looking through inlined structs; nullptr if unknown.
  const Field* field(std::string_view json) const;
  // All JSON-visible fields (inlined ones flattened), in declaration order.
  std::vector<const Field*> jsonFields() const;

  std::map<std::string, const Field*, std::less<>> byJson_;  // filled by the registry
};

// A set of named types. Types never move once added; pointers stay valid for the registry's life.
class Registry {
 public:
  Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Parses the schema text format (see builtin.schema's header) into this registry.
  Expected<void, std::string> load(std::string_view text);

  const Type* find(std::string_view name) const;
  const Type* scalar(Kind kind) const;
  const Type* listOf(const Type* elem);
  const Type* mapOf(const Type* elem);
  // Adds an object type; `name` must be unique. Call finish() after filling its fields.
  Type* addObject(const std::string& name);
  void finish(Type* type);
  std::vector<const Type*> objects() const;

 private:
  std::deque<Type> types_;
  std::map<std::string, Type*, std::less<>> byName_;
};

// The built-in Kubernetes types. Built once, immutable, thread-safe.
const Registry& builtin();

// Builds the schema of a custom resource from a CRD version's openAPIV3Schema. The root type is
// named `name`. Returns an error message for schemas that are not structural.
struct CrdSchema {
  std::shared_ptr<Registry> registry;
  const Type* root = nullptr;
};
Expected<CrdSchema, std::string> crdSchema(const std::string& name, const Json& openAPIV3Schema);

const char* kindName(Kind kind);

}  // namespace podium::api::schema
