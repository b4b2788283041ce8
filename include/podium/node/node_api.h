#pragma once

// The node's own endpoints, as the kubelet serves them on its port for the API server:
// /containerLogs/{ns}/{pod}/{container}, /exec/{ns}/{pod}/{container}, /attach/...,
// /portForward/{ns}/{pod}, /stats/summary, /metrics, /healthz, and Podium's /stats/mesh (the
// node proxy's per-pod request counters) and /stats/traces. Requests must carry one of the
// accepted bearer tokens.
// Used by `podium agent` on machines other than the server's.

#include <memory>
#include <string>
#include <vector>

#include "podium/api/http.h"
#include "podium/client/client.h"
#include "podium/node/agent.h"

namespace podium::node {

// The node's read-only endpoints (/metrics, /stats/summary, /stats/mesh, /stats/traces,
// /healthz) for a GET of `path`; 404 for any other. Shared by the handler below and the
// in-process agent's nodes/proxy.
Expected<api::HttpResponse, api::ApiError> nodeEndpoint(const Agent& agent, const std::string& path,
                                                        const std::string& traceId = "");

std::unique_ptr<api::HttpHandler> newNodeApi(Agent& agent, client::Client& client,
                                             std::vector<std::string> tokens);

}  // namespace podium::node
