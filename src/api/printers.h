#pragma once

// Server-side printing for `kubectl get`: the Table columns kube-apiserver's printers use for
// each built-in kind, and custom resources' additionalPrinterColumns.

#include <chrono>
#include <vector>

#include "podium/api/cacher.h"
#include "podium/api/resources.h"

namespace podium::api {

struct TableOptions {
  // "Metadata" (PartialObjectMetadata rows, the default), "Object" or "None".
  std::string includeObject = "Metadata";
  bool noHeaders = false;  // omit columnDefinitions (watch events after the first)
};

// A meta.k8s.io/v1 Table for `objects`.
Json toTable(const ResourceInfo& resource, const std::vector<ObjectPtr>& objects,
             const TableOptions& options, std::chrono::system_clock::time_point now);

// Evaluates the subset of JSONPath used by printer columns (".spec.x", "[0]", "[*]",
// "[?(@.type==\"Ready\")]") and returns the matches.
std::vector<Json> evalJsonPath(const Json& obj, const std::string& path);

}  // namespace podium::api
