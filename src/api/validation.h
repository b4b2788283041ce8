#pragma once

// Semantic validation of built-in kinds and object metadata, with Kubernetes' field paths and
// messages (pkg/apis/*/validation). Schema-level checks (types, unknown fields) are in
// schema_check.h.

#include <string>
#include <vector>

#include "podium/api/names.h"
#include "podium/api/resources.h"
#include "podium/api/status.h"

namespace podium::api {

// What the validation files share.
namespace validation {
// obj[key], or null when obj is not an object or has no such key.
const Json& at(const Json& obj, const char* key);
// A NotSupported error at `path` unless the string `v` is one of `allowed` (absent: no error).
void validateEnum(const Json& v, const std::string& path, const std::vector<std::string>& allowed,
                  FieldErrors& errs);
}  // namespace validation

// `old` is null on create.
FieldErrors validateObject(const ResourceInfo& resource, const Json& obj, const Json* old);
// PersistentVolumes, PersistentVolumeClaims and StorageClasses (validation_storage.cc).
// Validating and mutating webhook configurations (validation_admission.cc).
void validateWebhookConfiguration(const ResourceInfo& resource, const Json& obj, FieldErrors& errs);
// A write of pods/ephemeralcontainers: only additions, each a valid ephemeral container
// (validation_admission.cc).
void validateEphemeralContainers(const Json& pod, const Json& old, FieldErrors& errs);
// APIServices (validation_admission.cc).
void validateApiService(const Json& obj, FieldErrors& errs);
void validateStorageKinds(const ResourceInfo& resource, const Json& obj, const Json* old,
                          FieldErrors& errs);

}  // namespace podium::api
