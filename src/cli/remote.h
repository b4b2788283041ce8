#pragma once

// What the client subcommands (`podium app`, `podium rollout`) share: how they reach the API
// server, and how they print tables and objects.

#include <string>
#include <vector>

#include "flags.h"
#include "podium/client/remote_client.h"
#include "podium/common/expected.h"
#include "podium/common/json.h"

namespace podium::cli {

// The API server and credentials: --server with --token or a client certificate (and
// --ca-file), else the server's data directory (--data-dir, $PODIUM_DATA_DIR, /var/lib/podium).
Expected<client::RemoteOptions, std::string> connection(const Flags& flags,
                                                        const std::string& fieldManager);
// Rows as aligned columns (the first row is the header).
void table(const std::vector<std::vector<std::string>>& rows);
// An object as JSON (indented) or YAML (`output` "yaml").
void print(const Json& obj, const std::string& output);

}  // namespace podium::cli
