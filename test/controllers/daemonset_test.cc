#include "controllers/daemonset.h"

#include "controllers/harness.h"

namespace podium::controllers {
namespace {

class DaemonSetTest : public ControllerTest {
 protected:
  void node(const std::string& name, Json labels = Json::object(), Json taints = Json::array()) {
    fake.add(res::kNodes,
             {{"metadata", {{"name", name}, {"labels", labels}}}, {"spec", {{"taints", taints}}}});
  }
  Json daemonSet(Json podSpec = Json::object()) {
    podSpec["containers"] = {{{"name", "agent"}, {"image", "busybox"}}};
    return fake.add(
        res::kDaemonSets,
        {{"metadata", {{"name", "agent"}, {"namespace", "default"}, {"generation", 1}}},
         {"spec",
          {{"selector", {{"matchLabels", {{"app", "agent"}}}}},
           {"template", {{"metadata", {{"labels", {{"app", "agent"}}}}}, {"spec", podSpec}}}}}});
  }
  // A daemon pod on `node`, Running and Ready, with template hash `hash`.
  void daemonPod(const std::string& name, const Json& ds, const std::string& node,
                 const std::string& hash) {
    Json p = {{"metadata",
               {{"name", name},
                {"namespace", "default"},
                {"labels", {{"app", "agent"}, {"controller-revision-hash", hash}}},
                {"ownerReferences", Json::array({client::controllerRef(ds)})}}},
              {"spec", {{"nodeName", node}, {"containers", {{{"name", "agent"}, {"image", "x"}}}}}},
              {"status",
               {{"phase", "Running"},
                {"conditions",
                 {{{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", now()}}}}}}};
    fake.add(res::kPods, p);
    clock.advance(std::chrono::seconds(1));  // so pods made later are newer
  }
  std::string hashOf(const Json& ds) { return templateHash(ds["spec"]["template"], 0); }
  // Marks the live pods `which` picks Running and Ready now.
  void makeReady(const std::function<bool(const Json&)>& which) {
    for (const auto& p : fake.objects(res::kPods, "default")) {
      if (client::isDeleting(*p) || !which(*p)) continue;
      Json ready = *p;
      ready["status"] = {
          {"phase", "Running"},
          {"conditions", {{{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", now()}}}}};
      ASSERT_TRUE(fake.update(res::kPods, "default", ready, "status"));
    }
  }
  Json status() {
    return client::at(*fake.object(res::kDaemonSets, "default", "agent"), {"status"});
  }
  // Deleted: gone, or (a running pod on a node) marked for its graceful deletion.
  bool deleted(const std::string& pod) {
    auto p = fake.object(res::kPods, "default", pod);
    return !p || client::isDeleting(*p);
  }
  SyncResult run() {
    settle();
    return controller.process("default/agent");
  }
  DaemonSetController controller{informers, events};
};

TEST_F(DaemonSetTest, OnePodOnEachNodeThatShouldRunIt) {
  node("web-1", {{"role", "web"}});
  node("web-2", {{"role", "web"}},
       {{{"key", "dedicated"}, {"value", "db"}, {"effect", "NoSchedule"}}});
  node("other", {{"role", "batch"}});
  node("tainted-ok", {{"role", "web"}},
       {{{"key", "node.kubernetes.io/unschedulable"}, {"effect", "NoSchedule"}}});
  daemonSet({{"nodeSelector", {{"role", "web"}}}});
  start();
  EXPECT_FALSE(run().failed());
  auto made = fake.actions("create", "pods");
  ASSERT_EQ(made.size(), 2u);  // web-1, and the cordoned node (daemons tolerate that)
  std::set<std::string> nodes;
  for (const auto& a : made) nodes.insert(json::getString(a.object, {"spec", "nodeName"}));
  EXPECT_EQ(nodes, (std::set<std::string>{"web-1", "tainted-ok"}));
  const Json& pod = made[0].object;
  EXPECT_EQ(json::getString(pod, {"metadata", "labels", "app"}), "agent");
  EXPECT_FALSE(json::getString(pod, {"metadata", "labels", "controller-revision-hash"}).empty());
  EXPECT_NE(json::dump(pod["spec"]["tolerations"]).find("node.kubernetes.io/not-ready"),
            std::string::npos);
  Json st = status();
  EXPECT_EQ(st["desiredNumberScheduled"], 2);
  EXPECT_EQ(st["currentNumberScheduled"], 0);  // counted before the pods were seen
  EXPECT_EQ(st["numberMisscheduled"], 0);
  EXPECT_EQ(st["numberReady"], 0);
  // Seen, the counts follow; nothing more is made.
  EXPECT_FALSE(run().failed());
  EXPECT_EQ(fake.actions("create", "pods").size(), 2u);
  EXPECT_EQ(status()["currentNumberScheduled"], 2);
}

TEST_F(DaemonSetTest, ExtraAndMisscheduledPodsGo) {
  node("a", {{"role", "web"}});
  node("b", {{"role", "batch"}});
  Json ds = daemonSet({{"nodeSelector", {{"role", "web"}}}});
  daemonPod("agent-old", ds, "a", hashOf(ds));
  daemonPod("agent-new", ds, "a", hashOf(ds));
  daemonPod("agent-b", ds, "b", hashOf(ds));
  daemonPod("agent-gone", ds, "removed-node", hashOf(ds));
  start();
  EXPECT_FALSE(run().failed());
  EXPECT_TRUE(fake.actions("create", "pods").empty());
  EXPECT_FALSE(deleted("agent-old"));
  for (const char* gone : {"agent-new", "agent-b", "agent-gone"})
    EXPECT_TRUE(deleted(gone)) << gone;
  Json st = status();
  EXPECT_EQ(st["desiredNumberScheduled"], 1);
  EXPECT_EQ(st["currentNumberScheduled"], 1);
  EXPECT_EQ(st["numberMisscheduled"], 1);
  EXPECT_EQ(st["numberReady"], 1);
  EXPECT_EQ(st["numberAvailable"], 1);
  EXPECT_EQ(st["updatedNumberScheduled"], 1);
}

TEST_F(DaemonSetTest, ARollingUpdateReplacesOneNodeAtATime) {
  for (const char* n : {"n1", "n2", "n3"}) node(n);
  Json ds = daemonSet();
  for (const char* n : {"n1", "n2", "n3"}) daemonPod(std::string("agent-") + n, ds, n, "old");
  start();
  EXPECT_FALSE(run().failed());
  // One old pod goes (maxUnavailable 1): the oldest.
  EXPECT_TRUE(deleted("agent-n1"));
  EXPECT_FALSE(deleted("agent-n2"));
  EXPECT_EQ(status()["numberUnavailable"], 0);  // counted before the delete was seen
  // Its node gets a pod of the new template; the others wait while it is not ready.
  EXPECT_FALSE(run().failed());
  auto made = fake.actions("create", "pods");
  ASSERT_EQ(made.size(), 1u);
  EXPECT_EQ(json::getString(made[0].object, {"spec", "nodeName"}), "n1");
  EXPECT_EQ(json::getString(made[0].object, {"metadata", "labels", "controller-revision-hash"}),
            hashOf(ds));
  EXPECT_FALSE(run().failed());
  EXPECT_FALSE(deleted("agent-n2"));
  EXPECT_EQ(status()["numberUnavailable"], 1);
  EXPECT_EQ(status()["updatedNumberScheduled"], 1);
  // OnDelete: old pods stay until deleted.
  Json cur = *fake.object(res::kDaemonSets, "default", "agent");
  cur["spec"]["updateStrategy"] = {{"type", "OnDelete"}};
  ASSERT_TRUE(fake.update(res::kDaemonSets, "default", cur, ""));
  makeReady([](const Json& p) { return json::getString(p, {"spec", "nodeName"}) == "n1"; });
  EXPECT_FALSE(run().failed());
  EXPECT_FALSE(deleted("agent-n2"));
  EXPECT_FALSE(deleted("agent-n3"));
}

// maxSurge: a new pod starts beside the old one (no node goes without its daemon); the old one
// goes once the new is available, and the next node's turn comes.
TEST_F(DaemonSetTest, MaxSurgeStartsTheNewPodBesideTheOld) {
  for (const char* n : {"n1", "n2", "n3"}) node(n);
  Json ds = daemonSet();
  ds["spec"]["updateStrategy"] = {{"type", "RollingUpdate"},
                                  {"rollingUpdate", {{"maxSurge", 1}, {"maxUnavailable", 0}}}};
  ASSERT_TRUE(fake.update(res::kDaemonSets, "default", ds, ""));
  for (const char* n : {"n1", "n2", "n3"}) daemonPod(std::string("agent-") + n, ds, n, "old");
  start();
  EXPECT_FALSE(run().failed());
  auto made = fake.actions("create", "pods");
  ASSERT_EQ(made.size(), 1u);
  EXPECT_EQ(json::getString(made[0].object, {"spec", "nodeName"}), "n1");
  EXPECT_TRUE(fake.actions("delete", "pods").empty());
  // While the new pod is not ready, nothing else moves.
  EXPECT_FALSE(run().failed());
  EXPECT_EQ(fake.actions("create", "pods").size(), 1u);
  EXPECT_FALSE(deleted("agent-n1"));
  EXPECT_EQ(status()["numberAvailable"], 3);
  EXPECT_EQ(status()["updatedNumberScheduled"], 1);
  // Ready (and so available, minReadySeconds 0): the old pod on n1 goes, n2 gets its new pod.
  std::string fresh = hashOf(ds);
  makeReady([&](const Json& p) {
    return json::getString(p, {"metadata", "labels", "controller-revision-hash"}) == fresh;
  });
  EXPECT_FALSE(run().failed());
  EXPECT_TRUE(deleted("agent-n1"));
  EXPECT_FALSE(deleted("agent-n2"));
  made = fake.actions("create", "pods");
  ASSERT_EQ(made.size(), 2u);
  EXPECT_EQ(json::getString(made[1].object, {"spec", "nodeName"}), "n2");
}

// Templates are kept as ControllerRevisions, which kubectl rollout history lists and rollout
// undo patches back; a template that comes back is renumbered as the newest, and history beyond
// revisionHistoryLimit goes.
TEST_F(DaemonSetTest, TemplatesAreKeptAsRevisions) {
  node("n1");
  Json ds = daemonSet();
  start();
  auto revisionOf = [&](const std::string& hash) {
    auto cr = fake.object(res::kControllerRevisions, "default", "agent-" + hash);
    return cr ? json::integer(*cr, "revision", 0) : int64_t{0};
  };
  EXPECT_FALSE(run().failed());
  std::string first = hashOf(ds);
  EXPECT_EQ(revisionOf(first), 1);
  auto cr = fake.object(res::kControllerRevisions, "default", "agent-" + first);
  ASSERT_TRUE(cr);
  EXPECT_EQ(json::getString(*cr, {"metadata", "labels", "app"}), "agent");  // the selector's
  EXPECT_EQ(json::getString(*cr, {"data", "spec", "template", "$patch"}), "replace");
  EXPECT_TRUE(client::controlledBy(*cr, "DaemonSet"));

  Json changed = *fake.object(res::kDaemonSets, "default", "agent");
  changed["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2";
  ASSERT_TRUE(fake.update(res::kDaemonSets, "default", changed, ""));
  EXPECT_FALSE(run().failed());
  std::string second = hashOf(changed);
  EXPECT_EQ(revisionOf(second), 2);
  // kubectl rollout undo: the first template is back, as revision 3.
  Json back = *fake.object(res::kDaemonSets, "default", "agent");
  back["spec"]["template"] = ds["spec"]["template"];
  back["spec"]["revisionHistoryLimit"] = 0;
  ASSERT_TRUE(fake.update(res::kDaemonSets, "default", back, ""));
  EXPECT_FALSE(run().failed());
  EXPECT_EQ(revisionOf(first), 3);
  // With no history kept, the second goes once no pod runs it.
  for (const auto& p : fake.objects(res::kPods, "default")) {
    if (json::getString(*p, {"metadata", "labels", "controller-revision-hash"}) == second) {
      ASSERT_TRUE(fake.remove(res::kPods, "default", client::nameOf(*p), {}));
    }
  }
  EXPECT_FALSE(run().failed());
  EXPECT_EQ(revisionOf(second), 0);
  EXPECT_EQ(revisionOf(first), 3);
}

}  // namespace
}  // namespace podium::controllers
