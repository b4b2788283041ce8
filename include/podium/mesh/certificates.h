#pragma once

// The CA's front door for node agents: a WorkloadCertificateRequest posted to a service
// account's `certificate` subresource is signed only while a pod of that service account is
// bound to the node asking (so a node never obtains another node's workload identities), and
// only from a CSR: the private key stays on the node that made it.
//
//   POST /api/v1/namespaces/NS/serviceaccounts/SA/certificate
//   {"apiVersion": "mesh.podium.io/v1", "kind": "WorkloadCertificateRequest",
//    "spec": {"nodeName": "node-1", "request": "<PEM CSR>", "expirationSeconds": 86400}}
//
// The answer is the request with `status.certificateChain`, `status.rootCertificate`,
// `status.trustDomain` and `status.expirationTimestamp`. Nodes may also get the ingress gateway's
// identity (istio-system/istio-ingressgateway-service-account): each node's proxy is its ingress.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "podium/api/status.h"
#include "podium/client/client.h"
#include "podium/mesh/ca.h"

namespace podium::mesh {

inline constexpr const char* kIngressNamespace = "istio-system";
inline constexpr const char* kIngressServiceAccount = "istio-ingressgateway-service-account";

// Signs a WorkloadCertificateRequest for service account `sa` of `ns`, asked by `callerNode`
// ("" when the caller may act for any node). The API server's serviceaccounts/certificate
// subresource calls it.
using CertificateIssuer = std::function<Expected<Json, api::ApiError>(
    const std::string& ns, const std::string& sa, const Json& request,
    const std::string& callerNode)>;

// Signs requests with `ca`, checking pods through `client` (which must outlive the issuer);
// lifetimes are capped at `maxTtl`.
CertificateIssuer certificateIssuer(std::shared_ptr<const MeshCa> ca, client::Client& client,
                                    std::chrono::seconds maxTtl);

}  // namespace podium::mesh
