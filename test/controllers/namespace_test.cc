#include "controllers/namespace.h"

#include "controllers/harness.h"

namespace podium::controllers {
namespace {

class NamespaceTest : public ControllerTest {
 protected:
  NamespaceController controller{informers};
};

TEST_F(NamespaceTest, EmptiesADeletedNamespaceThenFinalizesIt) {
  fake.add(res::kNamespaces,
           {{"metadata", {{"name", "team"}}}, {"spec", {{"finalizers", {"kubernetes"}}}}});
  fake.add(res::kConfigMaps, {{"metadata", {{"name", "a"}, {"namespace", "team"}}}});
  fake.add(res::kSecrets, {{"metadata", {{"name", "b"}, {"namespace", "team"}}}});
  fake.add(res::kConfigMaps, {{"metadata", {{"name", "elsewhere"}, {"namespace", "default"}}}});
  ASSERT_TRUE(fake.remove(res::kNamespaces, "", "team", {}));
  start();
  EXPECT_TRUE(controller.queue().queued("team"));
  auto r = controller.process("team");
  EXPECT_FALSE(r.failed());
  EXPECT_EQ(fake.object(res::kConfigMaps, "team", "a"), nullptr);
  EXPECT_EQ(fake.object(res::kSecrets, "team", "b"), nullptr);
  EXPECT_NE(fake.object(res::kConfigMaps, "default", "elsewhere"), nullptr);
  // Everything went at once, so the namespace is finalized in the same pass.
  EXPECT_EQ(fake.object(res::kNamespaces, "", "team"), nullptr);
  EXPECT_EQ(fake.actions("update", "namespaces").back().subresource, "finalize");
}

TEST_F(NamespaceTest, WaitsForObjectsThatTakeTimeToGo) {
  fake.add(res::kNamespaces,
           {{"metadata", {{"name", "team"}}}, {"spec", {{"finalizers", {"kubernetes"}}}}});
  fake.add(res::kConfigMaps,
           {{"metadata",
             {{"name", "held"}, {"namespace", "team"}, {"finalizers", {"example.com/hold"}}}}});
  ASSERT_TRUE(fake.remove(res::kNamespaces, "", "team", {}));
  start();
  auto r = controller.process("team");
  EXPECT_FALSE(r.failed());
  EXPECT_EQ(r.requeueAfter(), std::chrono::milliseconds(250));
  EXPECT_TRUE(fake.actions("update", "namespaces").empty());
  // A failed delete is retried, not ignored.
  fake.add(res::kSecrets, {{"metadata", {{"name", "stuck"}, {"namespace", "team"}}}});
  fake.failNext("delete", "secrets", api::ApiError(500, "InternalError", "disk full"));
  EXPECT_TRUE(controller.process("team").failed());
}

}  // namespace
}  // namespace podium::controllers
