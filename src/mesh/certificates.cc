#include "podium/mesh/certificates.h"

#include "podium/common/time.h"
#include "podium/mesh/workload.h"

namespace podium::mesh {

namespace {

using api::ApiError;

// Whether a pod of service account `sa` in `ns` is bound to `node` and still running there.
Expected<bool, ApiError> podOnNode(client::Client& client, const std::string& ns,
                                   const std::string& sa, const std::string& node) {
  client::ListOptions o;
  o.fieldSelector = "spec.nodeName=" + node;
  auto list = client.list(client::resources::kPods, ns, o);
  if (!list) return Unexpected(list.error());
  for (const auto& p : list->items) {
    std::string phase = json::getString(*p, {"status", "phase"});
    if (serviceAccountOf(*p) == sa && phase != "Succeeded" && phase != "Failed") return true;
  }
  return false;
}

}  // namespace

CertificateIssuer certificateIssuer(std::shared_ptr<const MeshCa> ca, client::Client& client,
                                    std::chrono::seconds maxTtl) {
  return [ca, &client, maxTtl](const std::string& ns, const std::string& sa, const Json& body,
                               const std::string& callerNode) -> Expected<Json, ApiError> {
    if (!body.is_object() || json::str(body, "kind", "") != "WorkloadCertificateRequest")
      return Unexpected(ApiError::badRequest(
          "the body must be a WorkloadCertificateRequest (mesh.podium.io/v1)"));
    const Json& spec = json::at(body, {"spec"});
    std::string node = json::str(spec, "nodeName", "");
    std::string csr = json::str(spec, "request", "");
    auto invalid = [&](api::FieldError e) {
      return Unexpected(ApiError::invalid(
          "mesh.podium.io", "WorkloadCertificateRequest.mesh.podium.io", sa, {std::move(e)}));
    };
    if (node.empty()) return invalid(api::FieldError::required("spec.nodeName"));
    if (csr.empty()) return invalid(api::FieldError::required("spec.request", "a PEM CSR"));
    int64_t ttl = maxTtl.count();
    if (spec.contains("expirationSeconds")) {
      const Json& e = spec["expirationSeconds"];
      if (!e.is_number_integer() || e.get<int64_t>() < 10)
        return invalid(api::FieldError::invalid("spec.expirationSeconds", e,
                                                "must be an integer of at least 10"));
      ttl = std::min<int64_t>(ttl, e.get<int64_t>());
    }
    if (!callerNode.empty() && callerNode != node)
      return Unexpected(ApiError::forbidden(
          "node \"" + callerNode + "\" cannot request certificates for node \"" + node + "\""));
    bool ingress = ns == kIngressNamespace && sa == kIngressServiceAccount;
    if (!ingress) {
      auto bound = podOnNode(client, ns, sa, node);
      if (!bound) return Unexpected(bound.error());
      if (!*bound)
        return Unexpected(ApiError::forbidden("serviceaccounts \"" + sa +
                                              "\" is forbidden: no pod of service account " + ns +
                                              "/" + sa + " runs on node \"" + node + "\""));
    }
    auto cert = ca->sign(csr, ns, sa, std::chrono::seconds(ttl));
    if (!cert) return invalid(api::FieldError::invalid("spec.request", "<CSR>", cert.error()));
    Json out = body;
    out["apiVersion"] = "mesh.podium.io/v1";
    out["status"] = {{"certificateChain", cert->certChainPem},
                     {"rootCertificate", cert->rootCertPem},
                     {"trustDomain", ca->trustDomain()},
                     {"expirationTimestamp", timefmt::rfc3339(cert->notAfter)}};
    return out;
  };
}

}  // namespace podium::mesh
