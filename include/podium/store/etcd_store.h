#pragma once

// The store on an etcd v3 cluster (the way up from one machine's SQLite): keys and values as
// the API writes them, the API's resourceVersion is etcd's revision, writes are transactions
// with mod-revision preconditions, watches resume from a revision, and compaction is etcd's.
// Several API servers can share one etcd. Requests that find the cluster unavailable (a lost
// leader, a member down) are retried until `retryFor` has passed.

#include <chrono>
#include <string>
#include <vector>

#include "podium/store/store.h"

namespace podium::store {

struct EtcdOptions {
  std::vector<std::string> endpoints;     // "host:port" of the members
  std::string caFile, certFile, keyFile;  // TLS to the members when caFile is set
  // A request that a member lost with its leader is tried again after this (etcd itself would
  // answer "request timed out" only after 5 s).
  std::chrono::milliseconds requestTimeout{1000};
  std::chrono::milliseconds retryFor{15000};  // how long an unavailable cluster is retried
};

// "etcd://10.0.0.1:2379,10.0.0.2:2379" (or "etcds://..." for TLS, with the files given apart).
Expected<EtcdOptions, std::string> parseEtcdUrl(const std::string& url);

// Connects (and checks the cluster answers within retryFor).
Result<StorePtr> openEtcdStore(const EtcdOptions& options);

}  // namespace podium::store
