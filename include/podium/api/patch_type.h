#pragma once

namespace podium::api {

// The PATCH formats the API takes: RFC 6902 JSON patch, RFC 7386 JSON merge patch, Kubernetes'
// strategic merge patch, and server-side apply.
enum class PatchType { JsonPatch, MergePatch, StrategicMerge, Apply };

}  // namespace podium::api
