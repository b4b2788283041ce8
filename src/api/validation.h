#pragma once

// Semantic validation of built-in kinds and object metadata, with Kubernetes' field paths and
// messages (pkg/apis/*/validation). Schema-level checks (types, unknown fields) are in
// schema_check.h.

#include <string>

#include "podium/api/names.h"
#include "podium/api/resources.h"
#include "podium/api/status.h"

namespace podium::api {

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
