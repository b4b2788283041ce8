#pragma once

// Discovery documents: aggregated (apidiscovery.k8s.io/v2 and v2beta1) and legacy
// (APIVersions, APIGroupList, APIGroup, APIResourceList), and the OpenAPI v3 documents that let
// kubectl validate through the server and `kubectl explain` describe fields.

#include <string>

#include "podium/api/resources.h"

namespace podium::api {

// "/api" (core=true) or "/apis" as an APIGroupDiscoveryList of the given apiVersion
// ("apidiscovery.k8s.io/v2" or ".../v2beta1").
Json aggregatedDiscovery(const ResourceSet& set, bool core, const std::string& apiVersion);
Json legacyApiVersions(const std::string& serverAddress);
Json legacyGroupList(const ResourceSet& set);
// nullptr-like (null Json) if the group is unknown.
Json legacyGroup(const ResourceSet& set, const std::string& group);
Json legacyResourceList(const ResourceSet& set, const std::string& group,
                        const std::string& version);

// The OpenAPI v3 index ({"paths": {"apis/apps/v1": {"serverRelativeURL": …}}}).
Json openApiIndex(const ResourceSet& set);
// The OpenAPI v3 document of one group version ("api/v1", "apis/apps/v1"); null if unknown.
Json openApiDocument(const ResourceSet& set, const std::string& groupVersionPath);
// Stable hash of a group version's document, used in serverRelativeURL.
std::string openApiHash(const ResourceSet& set, const std::string& groupVersionPath);

}  // namespace podium::api
