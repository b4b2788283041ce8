#pragma once

// Semantic validation of built-in kinds and object metadata, with Kubernetes' field paths and
// messages (pkg/apis/*/validation). Schema-level checks (types, unknown fields) are in
// schema_check.h.

#include <string>

#include "podium/api/resources.h"
#include "podium/api/status.h"

namespace podium::api {

// `old` is null on create.
FieldErrors validateObject(const ResourceInfo& resource, const Json& obj, const Json* old);

namespace validation {
// Each returns "" when valid, else Kubernetes' explanation.
std::string dns1123Subdomain(const std::string& s);
std::string dns1123Label(const std::string& s);
std::string dns1035Label(const std::string& s);
std::string qualifiedName(const std::string& s);
std::string labelValue(const std::string& s);
std::string pathSegmentName(const std::string& s);
}  // namespace validation

}  // namespace podium::api
