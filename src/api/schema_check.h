#pragma once

// Decoding-time checks of an object against its structural schema, the JSON counterpart of
// Kubernetes' strict decoder: unknown fields are dropped (and reported), null fields dropped,
// values of the wrong type reported, quantities and byte fields checked. Custom resources also
// get their schema's required and enum constraints.

#include <string>
#include <vector>

#include "podium/api/schema.h"
#include "podium/api/status.h"

namespace podium::api {

struct SchemaIssues {
  std::vector<std::string> unknownFields;  // "spec.foo"
  // Built-in kinds: values Go's decoder would refuse ("cannot unmarshal string into ...").
  std::vector<std::string> decodeErrors;
  // Custom resources: schema violations reported as 422 Invalid.
  FieldErrors invalid;
};

// Walks `obj` (an object of root type `root`) in place. `custom` selects custom-resource
// wording and constraints.
void checkSchema(Json& obj, const schema::Type* root, bool custom, SchemaIssues& issues);

// Canonical form of a resource quantity ("500m", "1Gi", "2"); nullopt if malformed.
std::optional<std::string> canonicalQuantity(const Json& v);

}  // namespace podium::api
