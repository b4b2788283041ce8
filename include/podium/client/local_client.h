#pragma once

// The in-process client: every call goes straight to the API's storage (no serialisation, no
// network), through all of the API's rules. What the server's own controllers use.

#include <string>

#include "podium/client/client.h"

namespace podium::api {
class Storage;
}

namespace podium::client {

// A client calling `storage` (which must outlive it), writing as `fieldManager`.
ClientPtr newLocalClient(api::Storage& storage, std::string fieldManager);

}  // namespace podium::client
