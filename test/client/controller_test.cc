#include "podium/client/controller.h"

#include <gtest/gtest.h>

#include "podium/client/objects.h"
#include "support/fake_client.h"

namespace podium::client {
namespace {

using std::chrono::milliseconds;
using testing::FakeClient;
using testing::FakeClock;
namespace res = resources;

// A controller whose sync answers what the test tells it to.
class Scripted : public Controller {
 public:
  Scripted(Client& client, Clock& clock) : Controller("scripted", client, clock) {}
  ~Scripted() override { stop(); }
  SyncResult next = SyncResult::ok();
  std::vector<std::string> synced;

 protected:
  SyncResult sync(const std::string& key) override {
    synced.push_back(key);
    return next;
  }
};

TEST(ControllerTest, AFailedSyncIsRetriedWithBackOffAndASuccessForgetsIt) {
  FakeClock clock;
  FakeClient fake(clock);
  Scripted c(fake, clock);
  c.next = SyncResult::retry("write failed");
  EXPECT_TRUE(c.process("ns/a").failed());
  EXPECT_EQ(c.queue().retries("ns/a"), 1);
  EXPECT_EQ(c.queue().delayOf("ns/a"), milliseconds(5));
  EXPECT_TRUE(c.process("ns/a").failed());
  EXPECT_EQ(c.queue().retries("ns/a"), 2);
  c.next = SyncResult::ok();
  EXPECT_FALSE(c.process("ns/a").failed());
  EXPECT_EQ(c.queue().retries("ns/a"), 0);
}

TEST(ControllerTest, ASyncCanAskToBeLookedAtAgainLater) {
  FakeClock clock;
  FakeClient fake(clock);
  Scripted c(fake, clock);
  c.next = SyncResult::after(std::chrono::seconds(30));
  (void)c.process("ns/a");
  EXPECT_EQ(c.queue().delayOf("ns/a"), std::chrono::seconds(30));
  EXPECT_EQ(c.queue().retries("ns/a"), 0);
}

TEST(ControllerTest, MergeKeepsTheFirstFailureAndTheEarliestRequeue) {
  SyncResult r = SyncResult::after(milliseconds(500));
  r.merge(SyncResult::ok()).merge(SyncResult::retry("first")).merge(SyncResult::retry("second"));
  r.merge(SyncResult::after(milliseconds(100))).merge(SyncResult::after(milliseconds(900)));
  EXPECT_TRUE(r.failed());
  EXPECT_EQ(r.reason(), "first");
  EXPECT_EQ(r.requeueAfter(), milliseconds(100));
}

class RefManagerTest : public ::testing::Test {
 protected:
  RefManagerTest() : fake_(clock_) {
    owner_ = fake_.add(res::kReplicaSets,
                       {{"metadata", {{"name", "web"}, {"namespace", "default"}}},
                        {"spec", {{"selector", {{"matchLabels", {{"app", "web"}}}}}}}});
    selector_ = *api::LabelSelector::fromObject(owner_["spec"]["selector"]);
  }
  ObjectPtr pod(const std::string& name, const std::string& app, bool owned) {
    Json p = {{"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"app", app}}}}}};
    if (owned) p["metadata"]["ownerReferences"] = Json::array({controllerRef(owner_)});
    return std::make_shared<const Json>(fake_.add(res::kPods, p));
  }
  ControllerRefManager manager() {
    return ControllerRefManager(fake_, res::kReplicaSets, owner_, res::kPods, selector_);
  }

  FakeClock clock_;
  FakeClient fake_;
  Json owner_;
  api::LabelSelector selector_;
};

TEST_F(RefManagerTest, AdoptsMatchingOrphansWithAResourceVersionPrecondition) {
  auto orphan = pod("orphan", "web", false);
  auto other = pod("other", "db", false);
  auto claim = manager().claim({orphan, other});
  ASSERT_FALSE(claim.result.failed());
  ASSERT_EQ(claim.owned.size(), 1u);
  EXPECT_EQ(json::str(*controllerOf(*claim.owned[0]), "uid"), uidOf(owner_));
  auto patches = fake_.actions("patch", "pods");
  ASSERT_EQ(patches.size(), 1u);
  EXPECT_EQ(patches[0].name, "orphan");
  EXPECT_EQ(json::getString(patches[0].object, {"metadata", "resourceVersion"}),
            resourceVersionOf(*orphan));
}

TEST_F(RefManagerTest, ReleasesOwnedChildrenThatNoLongerMatch) {
  auto kept = pod("kept", "web", true);
  auto relabelled = pod("relabelled", "db", true);
  auto claim = manager().claim({kept, relabelled});
  ASSERT_FALSE(claim.result.failed());
  ASSERT_EQ(claim.owned.size(), 1u);
  EXPECT_EQ(nameOf(*claim.owned[0]), "kept");
  auto patches = fake_.actions("patch", "pods");
  ASSERT_EQ(patches.size(), 1u);
  EXPECT_EQ(patches[0].name, "relabelled");
  EXPECT_EQ(patches[0].object["metadata"]["ownerReferences"], Json::array());
  EXPECT_EQ(json::getString(patches[0].object, {"metadata", "resourceVersion"}),
            resourceVersionOf(*relabelled));
}

TEST_F(RefManagerTest, AFailedReleaseFailsTheClaimSoTheOwnerIsRetried) {
  auto relabelled = pod("relabelled", "db", true);
  fake_.failNext("patch", "pods", api::ApiError(409, "Conflict", "the object has been modified"));
  auto claim = manager().claim({relabelled});
  EXPECT_TRUE(claim.result.failed());
  EXPECT_NE(claim.result.reason().find("release pods relabelled"), std::string::npos);
}

TEST_F(RefManagerTest, AStaleChildIsNotOverwritten) {
  auto orphan = pod("orphan", "web", false);
  // Someone changes the pod after the cache saw it: the adoption's precondition fails.
  ASSERT_TRUE(fake_.patch(res::kPods, "default", "orphan",
                          {{"metadata", {{"annotations", {{"x", "y"}}}}}}, ""));
  auto claim = manager().claim({orphan});
  EXPECT_TRUE(claim.result.failed());
  EXPECT_TRUE(claim.owned.empty());
  EXPECT_EQ(json::getString(*fake_.object(res::kPods, "default", "orphan"),
                            {"metadata", "annotations", "x"}),
            "y");
}

TEST_F(RefManagerTest, AnOwnerBeingDeletedAdoptsNothing) {
  ASSERT_TRUE(fake_.patch(res::kReplicaSets, "default", "web",
                          {{"metadata", {{"finalizers", {"keep"}}}}}, ""));
  ASSERT_TRUE(fake_.remove(res::kReplicaSets, "default", "web", {}));
  auto orphan = pod("orphan", "web", false);
  // The cached owner does not know yet; the manager asks the API once.
  auto claim = manager().claim({orphan});
  EXPECT_FALSE(claim.result.failed());
  EXPECT_TRUE(claim.owned.empty());
  EXPECT_TRUE(fake_.actions("patch", "pods").empty());
}

}  // namespace
}  // namespace podium::client
