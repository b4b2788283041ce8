#pragma once

// Helpers shared by the API unit tests.

#include <string>

#include "api/protobuf.h"
#include "podium/api/resources.h"

namespace podium::api::testing {

inline std::string unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// The built-in resources (one registry for the test binary).
inline const ResourceSet& builtinResources() {
  static ResourceRegistry registry;
  static ResourceSetPtr set = registry.snapshot();
  return *set;
}

// Resolves protobuf type metadata ("apps/v1", "Deployment") to a built-in schema.
inline ProtoTypeLookup builtinProtoTypes() {
  return [](const std::string& apiVersion, const std::string& kind) -> const schema::Type* {
    std::string group, version = apiVersion;
    if (auto slash = apiVersion.find('/'); slash != std::string::npos) {
      group = apiVersion.substr(0, slash);
      version = apiVersion.substr(slash + 1);
    }
    auto r = builtinResources().findKind(group, version, kind);
    return r ? r->schema : nullptr;
  };
}

}  // namespace podium::api::testing
