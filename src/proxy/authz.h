#pragma once

// Istio's AuthorizationPolicy (security.istio.io v1beta1/v1), evaluated by the node proxy for
// the destination workload of each request (or TCP connection), as Istio's RBAC filter does:
// CUSTOM is not supported; any matching DENY policy denies; then, if any ALLOW policy applies to
// the workload, the request must match one of them; AUDIT policies never change the decision.
// A policy applies to workloads in its namespace whose labels its selector matches (all of them
// without a selector); policies in the root namespace (istio-system) apply to every namespace.
//
// Identities: a request's source principal is "<trust domain>/ns/<ns>/sa/<service account>" of
// the pod it comes from (the node proxy knows its local pods by address); traffic from outside
// the mesh (the ingress listeners) has none.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "http1.h"
#include "podium/common/json.h"

namespace podium::proxy {

// What a policy can look at.
struct AuthzRequest {
  std::string sourcePrincipal;  // "" when unknown
  std::string sourceNamespace;
  uint32_t sourceIp = 0;
  uint16_t destinationPort = 0;
  bool http = true;  // false: a TCP connection (only L4 fields can match)
  std::string host, method, path;
  const http1::Head* head = nullptr;  // for request.headers[...] conditions
};

class AuthzPolicies {
 public:
  void build(const Json& snapshot, const std::string& rootNamespace = "istio-system");
  // Whether the workload (namespace, labels) may take the request; `policy` names the policy
  // that decided ("ns/name"), empty when no policy applied.
  bool allowed(const std::string& ns, const std::map<std::string, std::string>& labels,
               const AuthzRequest& r, std::string* policy = nullptr) const;
  bool empty() const { return policies_.empty(); }

 private:
  struct Values {
    std::vector<std::string> in, notIn;
    bool present = false;  // the field was written (an empty list is never written by users)
  };
  struct Source {
    Values principals, namespaces, ipBlocks;
  };
  struct Operation {
    Values hosts, ports, methods, paths;
  };
  struct Condition {
    std::string key;
    Values values;
  };
  struct Rule {
    std::vector<Source> from;
    std::vector<Operation> to;
    std::vector<Condition> when;
  };
  struct Policy {
    std::string ns, name;
    std::optional<std::map<std::string, std::string>> selector;
    enum class Action { Allow, Deny, Audit, Custom } action = Action::Allow;
    std::vector<Rule> rules;
  };
  static bool matches(const Rule& rule, const AuthzRequest& r);
  bool applies(const Policy& p, const std::string& ns,
               const std::map<std::string, std::string>& labels) const;
  std::vector<Policy> policies_;
  std::string root_;
};

}  // namespace podium::proxy
