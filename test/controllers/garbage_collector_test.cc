#include "controllers/garbage_collector.h"

#include "controllers/harness.h"

namespace podium::controllers {
namespace {

const client::Resource kWidgets{"example.com", "v1", "widgets"};

class GarbageCollectorTest : public ControllerTest {
 protected:
  Json orphanOf(const client::Resource& r, const std::string& name, const Json& owner) {
    return fake.add(r, {{"metadata",
                         {{"name", name},
                          {"namespace", "default"},
                          {"ownerReferences", Json::array({client::controllerRef(owner)})}}}});
  }
  // Processes keys until the queue has nothing ready (the collector queues its own follow-ups).
  void drain() {
    for (int i = 0; i < 50 && gc.queue().length() > 0; ++i) {
      std::string key;
      ASSERT_TRUE(gc.queue().get(&key));
      (void)gc.process(key);
      gc.queue().done(key);
    }
  }
  GarbageCollector gc{informers};
};

TEST_F(GarbageCollectorTest, DeletesDependentsWhoseOwnerIsGone) {
  Json owner =
      fake.add(res::kConfigMaps, {{"metadata", {{"name", "owner"}, {"namespace", "default"}}}});
  Json dep = orphanOf(res::kSecrets, "dep", owner);
  ASSERT_TRUE(fake.remove(res::kConfigMaps, "default", "owner", {}));
  start();
  settle();
  drain();
  auto deletes = fake.actions("delete", "secrets");
  ASSERT_EQ(deletes.size(), 1u);
  EXPECT_EQ(deletes[0].object["preconditionUid"], client::uidOf(dep));
  EXPECT_EQ(fake.object(res::kSecrets, "default", "dep"), nullptr);
}

TEST_F(GarbageCollectorTest, CollectsCustomResourcesDefinedAfterItStarted) {
  start();
  // A definition appears, then an object of it whose owner never existed.
  fake.serve(kWidgets, "Widget");
  fake.add({"apiextensions.k8s.io", "v1", "customresourcedefinitions"},
           {{"metadata", {{"name", "widgets.example.com"}}}});
  Json ghost = {{"apiVersion", "v1"},
                {"kind", "ConfigMap"},
                {"metadata", {{"name", "ghost"}, {"uid", "ghost-uid"}}}};
  orphanOf(kWidgets, "w", ghost);
  ASSERT_TRUE(testing::eventually([&] { return gc.queue().queued(GarbageCollector::kResyncKey); }));
  drain();  // the resync starts watching widgets
  settle();
  drain();
  EXPECT_EQ(fake.object(kWidgets, "default", "w"), nullptr);
}

TEST_F(GarbageCollectorTest, KeepsADependentWhenTheOwnerCannotBeLookedUp) {
  Json owner = {{"apiVersion", "v1"},
                {"kind", "ConfigMap"},
                {"metadata", {{"name", "maybe"}, {"uid", "maybe-uid"}}}};
  orphanOf(res::kSecrets, "dep", owner);
  start();
  settle();
  fake.failNext("get", "configmaps", api::ApiError(503, "ServiceUnavailable", "try later"));
  std::string key = "d:" + client::uidOf(*fake.object(res::kSecrets, "default", "dep"));
  EXPECT_TRUE(gc.process(key).failed());
  EXPECT_NE(fake.object(res::kSecrets, "default", "dep"), nullptr);
  EXPECT_FALSE(gc.process(key).failed());  // 404 now: the dependent goes
  EXPECT_EQ(fake.object(res::kSecrets, "default", "dep"), nullptr);
}

TEST_F(GarbageCollectorTest, OrphanDeletionReleasesDependentsThenTheOwner) {
  Json owner =
      fake.add(res::kConfigMaps, {{"metadata", {{"name", "owner"}, {"namespace", "default"}}}});
  orphanOf(res::kSecrets, "dep", owner);
  start();
  client::DeleteOptions orphan;
  orphan.propagationPolicy = "Orphan";
  ASSERT_TRUE(fake.remove(res::kConfigMaps, "default", "owner", orphan));
  settle();
  drain();
  auto dep = fake.object(res::kSecrets, "default", "dep");
  ASSERT_NE(dep, nullptr);
  EXPECT_EQ(client::at(*dep, {"metadata", "ownerReferences"}), Json::array());
  EXPECT_EQ(fake.object(res::kConfigMaps, "default", "owner"), nullptr);
}

}  // namespace
}  // namespace podium::controllers
