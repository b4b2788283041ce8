#pragma once

// Server-side apply and field ownership (metadata.managedFields), following the semantics of
// sigs.k8s.io/structured-merge-diff: field sets in the FieldsV1 format, Apply with conflict
// detection and pruning of fields a manager stops applying, and Update operations that take
// ownership of the fields they change.

#include <map>
#include <string>
#include <vector>

#include "podium/api/schema.h"
#include "podium/api/status.h"
#include "podium/common/expected.h"
#include "podium/common/json.h"

namespace podium::api::ssa {

// A set of field paths, stored as a tree keyed by FieldsV1 path elements ("f:spec",
// "k:{\"name\":\"web\"}", "v:\"x\"", "i:0").
class FieldSet {
 public:
  struct Node {
    bool member = false;
    std::map<std::string, Node> children;
  };

  static FieldSet fromFieldsV1(const Json& fieldsV1);
  Json toFieldsV1() const;

  void insert(const std::vector<std::string>& path);
  bool empty() const { return !hasMembers(root_); }
  bool has(const std::vector<std::string>& path) const;
  // True if the path or anything below it is a member.
  bool hasAtOrBelow(const std::vector<std::string>& path) const;
  void unionWith(const FieldSet& other);
  void subtract(const FieldSet& other);
  // Removes the path and everything below it.
  void removeSubtree(const std::vector<std::string>& path);
  // Every member path, parents before children.
  std::vector<std::vector<std::string>> members() const;
  FieldSet intersect(const FieldSet& other) const;

 private:
  static bool hasMembers(const Node& n);
  Node root_;
};

// Human form of a path for messages: ".spec.containers[name=\"web\"].image".
std::string pathString(const std::vector<std::string>& path);

struct ManagedEntry {
  std::string manager;
  std::string operation;  // "Apply" or "Update"
  std::string apiVersion;
  std::string time;
  std::string subresource;
  FieldSet fields;
};

std::vector<ManagedEntry> parseManagedFields(const Json& managedFields);
Json renderManagedFields(const std::vector<ManagedEntry>& entries);

struct Scope {
  const schema::Type* type = nullptr;  // root type of the object
  bool hasStatusSubresource = false;
  std::string subresource;  // "" or "status"
};

// Records an Update by `manager` that turned `oldObj` into `newObj` (oldObj null on create):
// the manager takes the fields it added or changed. Updates newObj.metadata.managedFields.
// If the client sent managedFields that differ from the old ones, they are kept as sent.
void recordUpdate(const Json* oldObj, Json& newObj, const std::string& manager,
                  const std::string& apiVersion, const std::string& now, const Scope& scope);

struct Conflict {
  std::string manager;
  std::string subresource;
  std::string apiVersion;
  std::vector<std::string> path;
};

// Applies `config` (the user's partial object) by `manager` onto `live` (null to create).
// Returns the merged object with managedFields updated, or the conflicts as an ApiError (409)
// when another manager owns a field the config changes and `force` is false.
Expected<Json, ApiError> apply(const Json* live, const Json& config, const std::string& manager,
                               bool force, const std::string& now, const Scope& scope,
                               const std::string& qualifiedResource, const std::string& name);

}  // namespace podium::api::ssa
