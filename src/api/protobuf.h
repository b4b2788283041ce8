#pragma once

// Decoding of Kubernetes' protobuf encoding (application/vnd.kubernetes.protobuf): the "k8s\0"
// magic, the runtime.Unknown envelope, and the object's generated message, turned into the
// same JSON the object has on the JSON wire. Driven by the schema's protobuf field numbers.

#include <functional>
#include <string>
#include <string_view>

#include "podium/api/schema.h"
#include "podium/common/expected.h"
#include "podium/common/json.h"

namespace podium::api {

using ProtoTypeLookup =
    std::function<const schema::Type*(const std::string& apiVersion, const std::string& kind)>;

// Untrusted input: never crashes; errors read like Go's ("proto: unexpected EOF").
Expected<Json, std::string> decodeProtobufObject(std::string_view body,
                                                 const ProtoTypeLookup& lookup);

// Decodes one message of `type` (no envelope).
Expected<Json, std::string> decodeProtobufMessage(std::string_view bytes, const schema::Type* type);

}  // namespace podium::api
