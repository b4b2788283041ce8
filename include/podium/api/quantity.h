#pragma once

// Kubernetes resource quantities ("500m", "2", "128Mi", "1G", "1.5", "1e3") as numbers.

#include <cstdint>
#include <optional>
#include <string>

#include "podium/common/json.h"

namespace podium::api {

// The value in base units (cores, bytes); nullopt if malformed.
std::optional<double> parseQuantity(const std::string& text);
// A JSON quantity (string or number) in milli-units (CPU) — 0 if absent or malformed.
int64_t milliValue(const Json& quantity);
// A JSON quantity in whole units (bytes, counts) — 0 if absent or malformed.
int64_t value(const Json& quantity);

}  // namespace podium::api
