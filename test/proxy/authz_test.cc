#include "proxy/authz.h"

#include <gtest/gtest.h>

namespace podium::proxy {
namespace {

// Policies from YAML-shaped JSON, as the node agent sends them.
AuthzPolicies policies(const char* json) {
  AuthzPolicies p;
  p.build(Json{{"authorizationPolicies", Json::parse(json)}});
  return p;
}

AuthzRequest from(const std::string& principal, const std::string& method = "GET",
                  const std::string& path = "/") {
  AuthzRequest r;
  r.sourcePrincipal = principal;
  r.sourceNamespace = principal.empty()
                          ? ""
                          : principal.substr(principal.find("/ns/") + 4,
                                             principal.find("/sa/") - principal.find("/ns/") - 4);
  r.sourceIp = 0x0a2a0005;  // 10.42.0.5
  r.destinationPort = 8080;
  r.method = method;
  r.path = path;
  r.host = "golang-app-service.my-apps:80";
  return r;
}

const std::map<std::string, std::string> kApp = {{"app", "golang-app"}, {"version", "v1"}};
const char* kFrontend = "cluster.local/ns/my-apps/sa/frontend";
const char* kOther = "cluster.local/ns/my-apps/sa/default";

TEST(Authz, NoPolicyAllows) { EXPECT_TRUE(policies("[]").allowed("my-apps", kApp, from(kOther))); }

TEST(Authz, AllowOnlyThePrincipalItNames) {
  auto p = policies(R"([{"metadata": {"name": "only-frontend", "namespace": "my-apps"},
    "spec": {"selector": {"matchLabels": {"app": "golang-app"}}, "action": "ALLOW",
             "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/my-apps/sa/frontend"]}}]}]}}])");
  std::string by;
  EXPECT_TRUE(p.allowed("my-apps", kApp, from(kFrontend), &by));
  EXPECT_EQ(by, "my-apps/only-frontend");
  EXPECT_FALSE(p.allowed("my-apps", kApp, from(kOther)));
  EXPECT_FALSE(p.allowed("my-apps", kApp, from("")));  // from outside the mesh
  // Another workload, or another namespace, is not selected: no ALLOW applies, so allowed.
  EXPECT_TRUE(p.allowed("my-apps", {{"app", "other"}}, from(kOther)));
  EXPECT_TRUE(p.allowed("elsewhere", kApp, from(kOther)));
}

TEST(Authz, DenyWinsOverAllow) {
  auto p = policies(R"([
    {"metadata": {"name": "allow", "namespace": "my-apps"},
     "spec": {"rules": [{"from": [{"source": {"principals": ["*/sa/frontend"]}}]}]}},
    {"metadata": {"name": "no-admin-post", "namespace": "my-apps"},
     "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"methods": ["POST"], "paths": ["/admin*"]}}]}]}}])");
  EXPECT_TRUE(p.allowed("my-apps", kApp, from(kFrontend, "GET", "/admin")));
  EXPECT_TRUE(p.allowed("my-apps", kApp, from(kFrontend, "POST", "/orders")));
  std::string by;
  EXPECT_FALSE(p.allowed("my-apps", kApp, from(kFrontend, "POST", "/admin/x"), &by));
  EXPECT_EQ(by, "my-apps/no-admin-post");
}

TEST(Authz, EmptyAllowDeniesAllAndEmptyRuleAllowsAll) {
  EXPECT_FALSE(
      policies(R"([{"metadata": {"name": "deny-all", "namespace": "my-apps"}, "spec": {}}])")
          .allowed("my-apps", kApp, from(kFrontend)));
  EXPECT_TRUE(policies(R"([{"metadata": {"name": "allow-all", "namespace": "my-apps"},
                            "spec": {"rules": [{}]}}])")
                  .allowed("my-apps", kApp, from(kOther)));
}

TEST(Authz, RootNamespacePoliciesApplyEverywhere) {
  auto p = policies(R"([{"metadata": {"name": "mesh-deny", "namespace": "istio-system"},
    "spec": {"action": "DENY", "rules": [{"from": [{"source": {"notNamespaces": ["my-apps"]}}]}]}}])");
  EXPECT_TRUE(p.allowed("shop", kApp, from(kOther)));
  EXPECT_FALSE(p.allowed("shop", kApp, from("cluster.local/ns/intruder/sa/x")));
}

TEST(Authz, IpBlocksPortsHeadersAndConditions) {
  auto p = policies(R"([{"metadata": {"name": "a", "namespace": "my-apps"},
    "spec": {"rules": [{"from": [{"source": {"ipBlocks": ["10.42.0.0/24"]}}],
                        "to": [{"operation": {"ports": ["8080"]}}],
                        "when": [{"key": "request.headers[x-tenant]", "values": ["blue", "green*"]}]}]}}])");
  auto r = from(kOther);
  EXPECT_FALSE(p.allowed("my-apps", kApp, r));  // no x-tenant header
  http1::Head h;
  h.add("X-Tenant", "green-2");
  r.head = &h;
  EXPECT_TRUE(p.allowed("my-apps", kApp, r));
  r.sourceIp = 0x0a2a0105;  // 10.42.1.5
  EXPECT_FALSE(p.allowed("my-apps", kApp, r));
  r.sourceIp = 0x0a2a0005;
  r.destinationPort = 9090;
  EXPECT_FALSE(p.allowed("my-apps", kApp, r));
}

TEST(Authz, HttpFieldsNeverMatchTcp) {
  auto p = policies(R"([{"metadata": {"name": "a", "namespace": "my-apps"},
    "spec": {"rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}}])");
  auto r = from(kOther);
  EXPECT_TRUE(p.allowed("my-apps", kApp, r));
  r.http = false;
  EXPECT_FALSE(p.allowed("my-apps", kApp, r));
}

TEST(Authz, CustomFailsClosedAndAuditChangesNothing) {
  EXPECT_FALSE(policies(R"([{"metadata": {"name": "ext", "namespace": "my-apps"},
                             "spec": {"action": "CUSTOM", "provider": {"name": "opa"}, "rules": [{}]}}])")
                   .allowed("my-apps", kApp, from(kOther)));
  EXPECT_TRUE(policies(R"([{"metadata": {"name": "audit", "namespace": "my-apps"},
                            "spec": {"action": "AUDIT", "rules": [{}]}}])")
                  .allowed("my-apps", kApp, from(kOther)));
}

}  // namespace
}  // namespace podium::proxy
