#pragma once

// How the application controller tells a live object from the one git describes, without false
// OutOfSync: only the fields git sets are compared, so what the API server adds (defaults,
// status, server-managed metadata) is never a difference, while a changed or removed field that
// git sets (`kubectl scale`, `kubectl edit`) is.

#include <string>
#include <vector>

#include "podium/common/expected.h"
#include "podium/common/json.h"

namespace podium::gitops {

// Whether `live` has every field `want` sets, with the same value (arrays element by element).
bool contains(const Json& live, const Json& want);
// What of a desired object is compared: everything but status and the metadata the server owns
// (labels and annotations stay); a Secret's stringData as the data the server stores.
Json comparable(const Json& desired);

// The fields of `desired` that `stored` (what the server made of it) has: the ones it knows.
Json knownFields(const Json& desired, const Json& stored);
// The live object seen through `want`: only the fields `want` sets, with the live values (what
// a diff against git shows).
Json projectOnto(const Json& live, const Json& want);

// One step of a path into an object: a field, an array index, every element, or the elements
// whose `key` equals `value` (jq's select(.key == "value"), a managedFields "k:{...}" entry).
struct PathStep {
  enum Kind { Field, Index, Each, Select } kind = Field;
  std::string name;  // Field
  size_t index = 0;  // Index
  Json match;        // Select: the fields an element must have
};
using FieldPath = std::vector<PathStep>;

// An entry of an Application's spec.ignoreDifferences: the fields of the objects it selects that
// are not compared (jsonPointers and jqPathExpressions), and the managers whose fields are not
// (managedFieldsManagers).
struct IgnoreRule {
  std::string group, kind, name, ns;  // "" matches any
  std::vector<FieldPath> paths;
  std::vector<std::string> managers;
  bool matches(const std::string& group, const std::string& kind, const std::string& ns,
               const std::string& name) const;
};

// The rules of spec.ignoreDifferences, or what is wrong with them ("ignoreDifferences[1]
// .jqPathExpressions[0]: ..."). jq: paths of .field, ["field"], [n], [] and
// `| select(.field == "value")`.
Expected<std::vector<IgnoreRule>, std::string> parseIgnoreRules(const Json& list);
Expected<FieldPath, std::string> parseJsonPointer(const std::string& pointer);
Expected<FieldPath, std::string> parseJqPath(const std::string& expression);
// Removes what `path` selects from `obj` (nothing when it selects nothing).
void removePath(Json& obj, const FieldPath& path);
// Sets in `desired` what `path` selects in `live` (the live value wins; where live has none,
// desired has none either): RespectIgnoreDifferences.
void keepLive(Json& desired, const Json& live, const FieldPath& path);
// The paths of the fields a manager owns in `live` (metadata.managedFields, fieldsV1).
std::vector<FieldPath> managedPaths(const Json& live, const std::string& manager);

}  // namespace podium::gitops
