#pragma once

// How the application controller tells a live object from the one git describes, without false
// OutOfSync: only the fields git sets are compared, so what the API server adds (defaults,
// status, server-managed metadata) is never a difference, while a changed or removed field that
// git sets (`kubectl scale`, `kubectl edit`) is.

#include "podium/common/json.h"

namespace podium::gitops {

// Whether `live` has every field `want` sets, with the same value (arrays element by element).
bool contains(const Json& live, const Json& want);
// What of a desired object is compared: everything but status and the metadata the server owns
// (labels and annotations stay); a Secret's stringData as the data the server stores.
Json comparable(const Json& desired);

}  // namespace podium::gitops
