#include "podium/client/leader_election.h"

#include <gtest/gtest.h>

#include "support/fake_client.h"

namespace podium::client {
namespace {

using std::chrono::milliseconds;

class LeaderElectionTest : public ::testing::Test {
 protected:
  LeaderElector candidate(const std::string& id) {
    LeaderElectionConfig c;
    c.name = "podium-controllers";
    c.identity = id;
    c.leaseDuration = milliseconds(3000);
    return LeaderElector(fake_, clock_, c, nullptr, nullptr);
  }
  Json lease() { return *fake_.object(resources::kLeases, "kube-system", "podium-controllers"); }
  testing::FakeClock clock_;
  testing::FakeClient fake_{clock_};
};

TEST_F(LeaderElectionTest, OneHoldsTheLeaseWhileItRenewsAndAnotherTakesItWhenItStops) {
  auto a = candidate("a"), b = candidate("b");
  EXPECT_TRUE(a.tryAcquireOrRenew());
  EXPECT_EQ(json::getString(lease(), {"spec", "holderIdentity"}), "a");
  EXPECT_FALSE(b.tryAcquireOrRenew());
  // a renews; b, watching the record change, keeps waiting.
  clock_.advance(milliseconds(2000));
  EXPECT_TRUE(a.tryAcquireOrRenew());
  EXPECT_FALSE(b.tryAcquireOrRenew());
  clock_.advance(milliseconds(2000));
  EXPECT_FALSE(b.tryAcquireOrRenew());  // 2 s since b saw the last renewal
  // a stops renewing: after a lease duration of silence, b takes over.
  clock_.advance(milliseconds(1100));
  EXPECT_TRUE(b.tryAcquireOrRenew());
  Json l = lease();
  EXPECT_EQ(json::getString(l, {"spec", "holderIdentity"}), "b");
  EXPECT_EQ(json::integer(l["spec"], "leaseTransitions"), 1);
  EXPECT_EQ(json::integer(l["spec"], "leaseDurationSeconds"), 3);
  EXPECT_FALSE(a.tryAcquireOrRenew());  // the old leader sees b hold it
}

TEST_F(LeaderElectionTest, TwoCandidatesNeverBothWinARace) {
  auto a = candidate("a"), b = candidate("b");
  EXPECT_TRUE(a.tryAcquireOrRenew());
  clock_.advance(milliseconds(10000));  // a is long silent
  // b reads the expired record; a renews before b writes: b's write is refused.
  fake_.failNext("update", "leases",
                 api::ApiError(409, "Conflict", "the object has been modified"));
  EXPECT_FALSE(b.tryAcquireOrRenew());
  EXPECT_EQ(json::getString(lease(), {"spec", "holderIdentity"}), "a");
}

TEST_F(LeaderElectionTest, ALeaderThatStopsReleasesTheLeaseForAnImmediateTakeover) {
  LeaderElectionConfig c;
  c.name = "podium-controllers";
  c.identity = "a";
  c.retryPeriod = milliseconds(5);
  std::atomic<int> started{0}, stopped{0};
  {
    LeaderElector a(
        fake_, clock_, c, [&] { ++started; }, [&] { ++stopped; });
    a.start();
    ASSERT_TRUE(testing::eventually([&] { return a.leading(); }));
    a.stop();
  }
  EXPECT_EQ(started, 1);
  EXPECT_EQ(stopped, 1);
  EXPECT_EQ(json::getString(lease(), {"spec", "holderIdentity"}), "");
  auto b = candidate("b");
  EXPECT_TRUE(b.tryAcquireOrRenew());  // no wait for the lease to expire
}

}  // namespace
}  // namespace podium::client
