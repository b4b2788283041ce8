#pragma once

// A client of a remote API server over HTTPS with a bearer token (`podium agent` on another
// machine). Same semantics as the in-process client.

#include <chrono>
#include <string>

#include "podium/client/client.h"

namespace podium::client {

struct RemoteOptions {
  // "https://10.0.0.1:6443", or several servers of one cluster separated by commas: requests
  // go to the one last reached and move on to the next when it cannot be connected to.
  std::string server;
  std::string token;     // bearer token, or:
  std::string certFile;  // a client certificate (PEM; system:node:NAME for a node's own)
  std::string keyFile;   // and its key
  std::string caFile;    // the cluster CA; empty skips verification (with a warning)
  bool insecureSkipTlsVerify = false;  // no CA on purpose: no warning either
  // > 0: bounds connecting and each request (otherwise 10 s to connect, 60 s per request).
  std::chrono::milliseconds timeout{0};
  std::string fieldManager;  // the field manager writes are made as
};

Expected<ClientPtr, std::string> newRemoteClient(const RemoteOptions& options);

// A GET of a path the server serves beside the Kubernetes API (Argo CD's
// /api/v1/applications/...), as JSON.
Expected<Json, api::ApiError> getJson(const RemoteOptions& options, const std::string& path);

}  // namespace podium::client
