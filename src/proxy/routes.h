#pragma once

// The mesh's compiled routing rules (podium/mesh/routes.h), by their names in the proxy.

#include "podium/mesh/routes.h"

namespace podium::proxy {

using mesh::DestinationRule;
using mesh::Gateway;
using mesh::GatewayServer;
using mesh::HeaderOps;
using mesh::hostMatches;
using mesh::hostSpecificity;
using mesh::HttpMatch;
using mesh::HttpRoute;
using mesh::IngressPath;
using mesh::MeshRoutes;
using mesh::parseDuration;
using mesh::RetryPolicy;
using mesh::RouteDestination;
using mesh::StringMatch;
using mesh::Subset;
using mesh::TrafficPolicy;
using mesh::VirtualService;

}  // namespace podium::proxy
