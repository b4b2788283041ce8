#pragma once

// PATCH bodies: RFC 6902 JSON patch, RFC 7386 JSON merge patch, and Kubernetes' strategic merge
// patch (merge keys and $patch/$retainKeys/$setElementOrder/$deleteFromPrimitiveList
// directives, driven by the type's schema). Server-side apply is in apply.h.

#include <string>

#include "podium/api/patch_type.h"
#include "podium/api/schema.h"
#include "podium/api/status.h"
#include "podium/common/expected.h"
#include "podium/common/json.h"

namespace podium::api {

// Maps a PATCH Content-Type to its patch type; nullopt for anything else.
std::optional<PatchType> patchTypeFor(const std::string& contentType);

Expected<Json, ApiError> applyJsonPatch(const Json& original, const std::string& body);
Expected<Json, ApiError> applyMergePatch(const Json& original, const std::string& body);
// `type` is the object's root schema type.
Expected<Json, ApiError> applyStrategicMergePatch(const Json& original, const std::string& body,
                                                  const schema::Type* type);
// The merge itself, for callers that already hold the patch as JSON.
Expected<Json, std::string> strategicMerge(const Json& original, const Json& patch,
                                           const schema::Type* type);

}  // namespace podium::api
