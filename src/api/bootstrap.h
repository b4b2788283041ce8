#pragma once

// The cluster's credentials kept in the datastore for servers that join it (what k3s does with
// its server token): the first server on an etcd seals the files of DATA/tls that every server
// must share — the cluster CA, the admin certificate and token, the mesh CA — with AES-256-GCM
// under a key derived from a bootstrap secret (PBKDF2-HMAC-SHA256), and stores them under one
// key. A server that starts with that secret and an empty tls/ writes them out before it makes
// anything, so it serves with the same CA and one kubeconfig works against either. Each
// server's own serving certificate is not shared (its names differ).

#include <map>
#include <string>

#include "podium/common/expected.h"
#include "podium/store/store.h"

namespace podium::api::bootstrap {

// The store key of the sealed credentials (outside /registry/, so no API lists it).
inline constexpr const char* kKey = "/podium/bootstrap/credentials";

// The bootstrap secret's file in tls/ (made by the first server when none is given).
inline constexpr const char* kSecretFile = "bootstrap.secret";

// tls/ files by relative path ("ca.crt", "mesh/ca-key.pem") -> contents.
using Files = std::map<std::string, std::string>;

// The shared files under `tlsDir` (all but this server's serving certificate and key).
Expected<Files, std::string> readShared(const std::string& tlsDir);

// Seals `files` with `secret`: a JSON document with a random salt and nonce.
Expected<std::string, std::string> seal(const Files& files, const std::string& secret);
// Opens what `seal` made; a wrong secret or altered data is an error saying so.
Expected<Files, std::string> open(const std::string& sealed, const std::string& secret);

// Before the server makes any credentials: writes the sealed files found in `store` into
// `tlsDir` (files already there must be the same: a server given another cluster's tls/ is
// refused). Nothing in the store: nothing to do.
Expected<void, std::string> restore(store::Store& store, const std::string& tlsDir,
                                    const std::string& secret);
// Once every shared credential exists: seals them into `store` unless some already are
// (another server of the cluster was first).
Expected<void, std::string> publish(store::Store& store, const std::string& tlsDir,
                                    const std::string& secret);

}  // namespace podium::api::bootstrap
