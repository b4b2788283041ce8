#include "controllers/endpoints.h"

#include "controllers/harness.h"

namespace podium::controllers {
namespace {

class EndpointsTest : public ControllerTest {
 protected:
  void service() {
    fake.add(
        res::kServices,
        {{"metadata", {{"name", "web"}, {"namespace", "default"}}},
         {"spec",
          {{"selector", {{"app", "web"}}},
           {"ports",
            {{{"name", "http"}, {"port", 80}, {"targetPort", "http"}, {"protocol", "TCP"}}}}}}});
  }
  void backend(const std::string& name, const std::string& ip, bool ready,
               const std::string& subdomain = "") {
    Json p = pod(name, Json(), "Running", ready, {{"app", "web"}});
    p["spec"]["nodeName"] = "n1";
    if (!subdomain.empty()) {
      p["spec"]["hostname"] = name;
      p["spec"]["subdomain"] = subdomain;
    }
    p["spec"]["containers"][0]["ports"] = {{{"name", "http"}, {"containerPort", 8080}}};
    p["status"]["podIP"] = ip;
    auto updated = fake.update(res::kPods, "default", p, "");
    ASSERT_TRUE(updated);
    (*updated)["status"] = p["status"];
    ASSERT_TRUE(fake.update(res::kPods, "default", *updated, "status"));
  }
  EndpointsController controller{informers};
};

TEST_F(EndpointsTest, PublishesReadyAndUnreadyPodsWithTheirNamedPorts) {
  service();
  backend("a", "10.42.0.5", true);
  backend("b", "10.42.0.6", false);
  start();
  EXPECT_FALSE(controller.process("default/web").failed());
  auto ep = fake.object(res::kEndpoints, "default", "web");
  ASSERT_NE(ep, nullptr);
  const Json& subset = client::at(*ep, {"subsets"})[0];
  EXPECT_EQ(subset["addresses"][0]["ip"], "10.42.0.5");
  EXPECT_EQ(subset["notReadyAddresses"][0]["ip"], "10.42.0.6");
  EXPECT_EQ(subset["ports"][0]["port"], 8080);
  auto slices = fake.objects(res::kEndpointSlices, "default");
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(client::at(*slices[0], {"endpoints"}).size(), 2u);
  EXPECT_EQ(json::getString(*slices[0], {"metadata", "labels", "kubernetes.io/service-name"}),
            "web");
  // Nothing changed: nothing is written.
  settle();
  fake.clearActions();
  EXPECT_FALSE(controller.process("default/web").failed());
  EXPECT_TRUE(writes().empty());
}

// A pod whose subdomain is the Service's name is published with its hostname (the name cluster
// DNS answers under the Service, as for a StatefulSet's pods).
TEST_F(EndpointsTest, PodsUnderTheServiceSubdomainCarryTheirHostname) {
  service();
  backend("web-0", "10.42.0.5", true, "web");
  backend("other", "10.42.0.6", true, "elsewhere");
  start();
  EXPECT_FALSE(controller.process("default/web").failed());
  ObjectPtr ep = fake.object(res::kEndpoints, "default", "web");
  const Json& addresses = client::at(*ep, {"subsets"})[0]["addresses"];
  ASSERT_EQ(addresses.size(), 2u) << json::dump(*ep);
  EXPECT_EQ(addresses[0]["hostname"], "web-0");
  EXPECT_FALSE(addresses[1].contains("hostname"));
  ObjectPtr slice = fake.objects(res::kEndpointSlices, "default")[0];
  const Json& eps = client::at(*slice, {"endpoints"});
  int named = 0;
  for (const auto& e : eps) named += json::str(e, "hostname") == "web-0";
  EXPECT_EQ(named, 1);
}

TEST_F(EndpointsTest, AFailedSliceWriteIsRetried) {
  service();
  backend("a", "10.42.0.5", true);
  start();
  fake.failNext("create", "endpointslices", api::ApiError(500, "InternalError", "disk full"));
  EXPECT_TRUE(controller.process("default/web").failed());
  settle();
  EXPECT_FALSE(controller.process("default/web").failed());
  EXPECT_EQ(fake.objects(res::kEndpointSlices, "default").size(), 1u);
}

}  // namespace
}  // namespace podium::controllers
