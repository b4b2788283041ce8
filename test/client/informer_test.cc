#include "podium/client/informer.h"

#include <gtest/gtest.h>

#include "support/fake_client.h"

namespace podium::client {
namespace {

using std::chrono::milliseconds;
using testing::eventually;
using testing::FakeClient;
using testing::FakeClock;
namespace res = resources;

Json configMap(const std::string& name) {
  return {{"metadata", {{"name", name}, {"namespace", "default"}}}, {"data", {{"k", "v"}}}};
}

class InformerTest : public ::testing::Test {
 protected:
  InformerTest() : fake_(clock_), random_(seededRandom(7)) {}

  InformerOptions options() {
    InformerOptions o;
    o.backoff = BackoffPolicy{milliseconds(4), 2.0, 1.0, milliseconds(64)};
    o.random = random_.get();
    o.onError = [this](const api::ApiError& e, milliseconds delay) {
      std::lock_guard<std::mutex> lock(mu_);
      errors_.push_back(e.code());
      delays_.push_back(delay.count());
    };
    return o;
  }
  std::vector<int64_t> delays() {
    std::lock_guard<std::mutex> lock(mu_);
    return delays_;
  }
  std::vector<int> errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }

  FakeClock clock_;
  FakeClient fake_;
  std::unique_ptr<Random> random_;
  std::mutex mu_;
  std::vector<int> errors_;
  std::vector<int64_t> delays_;
};

TEST_F(InformerTest, FailedListsAreRetriedWithGrowingJitteredBackOff) {
  fake_.add(res::kConfigMaps, configMap("a"));
  api::ApiError unavailable(503, "ServiceUnavailable", "etcd is down");
  fake_.failNext("list", "configmaps", unavailable, 5);
  Informer inf(fake_, res::kConfigMaps, options());
  inf.start();
  ASSERT_TRUE(inf.waitForSync(std::chrono::seconds(5)));
  EXPECT_NE(inf.get("default", "a"), nullptr);
  EXPECT_EQ(fake_.actions("list", "configmaps").size(), 6u);
  auto d = delays();
  ASSERT_EQ(d.size(), 5u);
  // Each delay is its step's base (4, 8, 16, 32, 64 ms: doubling, capped) plus up to 100% jitter.
  int64_t base = 4;
  bool jittered = false;
  for (int64_t delay : d) {
    EXPECT_GE(delay, base);
    EXPECT_LT(delay, 2 * base);
    jittered = jittered || delay != base;
    base = std::min<int64_t>(base * 2, 64);
  }
  EXPECT_TRUE(jittered) << "the delays carry no jitter";
  EXPECT_EQ(errors(), std::vector<int>(5, 503));
}

TEST_F(InformerTest, AWatchThatFailsBacksOffAndRelistsInsteadOfSpinning) {
  fake_.failNext("watch", "configmaps", api::ApiError(500, "InternalError", "boom"), 3);
  Informer inf(fake_, res::kConfigMaps, options());
  inf.start();
  ASSERT_TRUE(eventually([&] { return fake_.actions("watch", "configmaps").size() >= 4; }));
  // Each failed watch cost a back-off and a new list.
  EXPECT_EQ(delays().size(), 3u);
  EXPECT_GE(fake_.actions("list", "configmaps").size(), 4u);
  auto d = delays();
  EXPECT_GE(d[1], 8);
  EXPECT_GE(d[2], 16);
}

TEST_F(InformerTest, AnExpiredVersionRelistsAtOnce) {
  fake_.failNext("watch", "configmaps", api::ApiError(410, "Expired", "too old resource version"));
  Informer inf(fake_, res::kConfigMaps, options());
  inf.start();
  ASSERT_TRUE(eventually([&] { return fake_.actions("watch", "configmaps").size() >= 2; }));
  EXPECT_EQ(fake_.actions("list", "configmaps").size(), 2u);
  EXPECT_TRUE(delays().empty());
}

TEST_F(InformerTest, EventsReachHandlersAndARelistDeliversWhatTheWatchMissed) {
  fake_.add(res::kConfigMaps, configMap("a"));
  Informer inf(fake_, res::kConfigMaps, options());
  std::mutex mu;
  std::vector<std::string> seen;
  auto note = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(what);
  };
  inf.addHandlers({[&](const ObjectPtr& o) {
                     note("add " + json::getString(*o, {"metadata", "name"}));
                   },
                   [&](const ObjectPtr&, const ObjectPtr& n) {
                     note("update " + json::getString(*n, {"metadata", "name"}));
                   },
                   [&](const ObjectPtr& o) {
                     note("delete " + json::getString(*o, {"metadata", "name"}));
                   }});
  inf.start();
  ASSERT_TRUE(inf.waitForSync(std::chrono::seconds(5)));
  Json b = fake_.add(res::kConfigMaps, configMap("b"));
  ASSERT_TRUE(eventually(
      [&] { return inf.lastResourceVersion() == fake_.latestResourceVersion(res::kConfigMaps); }));
  EXPECT_NE(inf.get("default", "b"), nullptr);
  // The server drops the watch; meanwhile "a" goes. The relist finds it gone.
  fake_.closeWatches();
  ASSERT_TRUE(fake_.remove(res::kConfigMaps, "default", "a", {}));
  ASSERT_TRUE(eventually([&] { return inf.get("default", "a") == nullptr; }));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen.front(), "add a");
  EXPECT_NE(std::find(seen.begin(), seen.end(), "add b"), seen.end());
  EXPECT_EQ(seen.back(), "delete a");
}

}  // namespace
}  // namespace podium::client
