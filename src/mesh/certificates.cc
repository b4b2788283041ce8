#include "podium/mesh/certificates.h"

#include "podium/api/resources.h"
#include "podium/common/time.h"

namespace podium::mesh {

namespace {

using api::ApiError;

// Whether a pod of service account `sa` in `ns` is bound to `node` and still running there.
Expected<bool, ApiError> podOnNode(api::Storage& storage, const std::string& ns,
                                   const std::string& sa, const std::string& node) {
  auto pods = storage.registry().snapshot()->find("", "v1", "pods");
  if (!pods) return Unexpected(ApiError::internal("pods are not served"));
  auto list = storage.list(*pods, ns, api::ListOptions{});
  if (!list) return Unexpected(list.error());
  for (const auto& p : list->items) {
    const Json& spec = json::at(*p, {"spec"});
    std::string account = json::str(spec, "serviceAccountName", "");
    if (account.empty()) account = "default";
    std::string phase = json::getString(*p, {"status", "phase"});
    if (account == sa && json::str(spec, "nodeName", "") == node && phase != "Succeeded" &&
        phase != "Failed")
      return true;
  }
  return false;
}

}  // namespace

api::CertificateIssuer certificateIssuer(std::shared_ptr<const MeshCa> ca, api::Storage& storage,
                                         std::chrono::seconds maxTtl) {
  return [ca, &storage, maxTtl](const std::string& ns, const std::string& sa, const Json& body,
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
      auto bound = podOnNode(storage, ns, sa, node);
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
