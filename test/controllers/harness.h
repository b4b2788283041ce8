#pragma once

// What every controller test stands on: a fake API and clock, shared informers over them, and
// an event recorder; settle() waits until the informers have seen every write so far.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "podium/client/events.h"
#include "podium/client/informer_factory.h"
#include "podium/client/objects.h"
#include "support/fake_client.h"

namespace podium::controllers {

namespace res = client::resources;

struct Harness {
  // Informers call into the controller under test: stop them before it goes (TearDown).
  void stopInformers() { informers.stop(); }

  testing::FakeClock clock;
  testing::FakeClient fake{clock};
  client::InformerFactory informers{fake, std::chrono::milliseconds(0), clock};
  client::EventRecorder events{fake, "test-controller", "", clock};

  void start() {
    informers.start();
    ASSERT_TRUE(informers.waitForSync(std::chrono::seconds(5)));
  }
  void settle() { ASSERT_TRUE(testing::settle(informers, fake)); }
  std::string now() const { return timefmt::rfc3339(clock.now()); }

  // A pod as a ReplicaSet or Job made it, in `phase`, Ready when `ready`.
  Json pod(const std::string& name, const Json& owner, const std::string& phase, bool ready,
           const Json& labels = Json::object()) {
    Json p = {{"metadata", {{"name", name}, {"namespace", "default"}, {"labels", labels}}},
              {"spec", {{"containers", {{{"name", "c"}, {"image", "x"}}}}}},
              {"status", {{"phase", phase}}}};
    if (!owner.is_null())
      p["metadata"]["ownerReferences"] = Json::array({client::controllerRef(owner)});
    if (ready)
      p["status"]["conditions"] = {
          {{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", now()}}};
    return fake.add(res::kPods, p);
  }
  // Writes made since the last clear, as "verb plural name" (reads and events left out).
  std::vector<std::string> writes() {
    std::vector<std::string> out;
    for (const auto& a : fake.writes())
      if (a.resource != "events")
        out.push_back(a.verb + " " + a.resource +
                      (a.subresource.empty() ? "" : "/" + a.subresource) +
                      (a.name.empty() ? "" : " " + a.name));
    return out;
  }
};

// The fixture every controller test derives from.
class ControllerTest : public ::testing::Test, public Harness {
 protected:
  void TearDown() override { stopInformers(); }
};

}  // namespace podium::controllers
