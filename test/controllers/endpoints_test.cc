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
  void backend(const std::string& name, const std::string& ip, bool ready) {
    Json p = pod(name, Json(), "Running", ready, {{"app", "web"}});
    p["spec"]["nodeName"] = "n1";
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
