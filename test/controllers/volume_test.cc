#include "controllers/volume.h"

#include "controllers/harness.h"

namespace podium::controllers {
namespace {

class VolumeTest : public ControllerTest {
 protected:
  void storageClass(const std::string& name, const std::string& provisioner,
                    const std::string& mode, bool isDefault = false) {
    Json sc = {{"metadata", {{"name", name}}},
               {"provisioner", provisioner},
               {"reclaimPolicy", "Delete"},
               {"volumeBindingMode", mode}};
    if (isDefault)
      sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] = "true";
    fake.add(res::kStorageClasses, sc);
  }
  Json volume(const std::string& name, const std::string& size, Json modes = {"ReadWriteOnce"},
              const std::string& cls = "", const std::string& node = "") {
    Json pv = {{"metadata", {{"name", name}}},
               {"spec",
                {{"capacity", {{"storage", size}}},
                 {"accessModes", modes},
                 {"hostPath", {{"path", "/tmp/" + name}}},
                 {"persistentVolumeReclaimPolicy", "Retain"},
                 {"storageClassName", cls},
                 {"volumeMode", "Filesystem"}}},
               {"status", {{"phase", "Available"}}}};
    if (!node.empty())
      pv["spec"]["nodeAffinity"] = {{"required",
                                     {{"nodeSelectorTerms",
                                       {{{"matchExpressions",
                                          {{{"key", "kubernetes.io/hostname"},
                                            {"operator", "In"},
                                            {"values", {node}}}}}}}}}}};
    return fake.add(res::kPersistentVolumes, pv);
  }
  Json claim(const std::string& name, Json cls, const std::string& size = "1Gi",
             Json annotations = Json::object()) {
    Json spec = {{"accessModes", {"ReadWriteOnce"}},
                 {"resources", {{"requests", {{"storage", size}}}}},
                 {"volumeMode", "Filesystem"}};
    if (!cls.is_null()) spec["storageClassName"] = cls;
    return fake.add(res::kPersistentVolumeClaims,
                    {{"metadata",
                      {{"name", name},
                       {"namespace", "default"},
                       {"annotations", annotations},
                       {"finalizers", {"kubernetes.io/pvc-protection"}}}},
                     {"spec", spec},
                     {"status", {{"phase", "Pending"}}}});
  }
  void node(const std::string& name) {
    fake.add(res::kNodes,
             {{"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}}}}}});
  }
  void setPhase(const std::string& name, const std::string& phase) {
    Json v = pv(name);
    v["status"]["phase"] = phase;
    ASSERT_TRUE(fake.update(res::kPersistentVolumes, "", v, "status"));
  }
  Json pv(const std::string& name) { return *fake.object(res::kPersistentVolumes, "", name); }
  Json pvc(const std::string& name) {
    return *fake.object(res::kPersistentVolumeClaims, "default", name);
  }
  SyncResult run(const std::string& key) {
    settle();
    auto r = controller.process(key);
    settle();
    return r;
  }
  VolumeController controller{informers, events};
};

TEST_F(VolumeTest, ClaimWithoutClassGetsTheDefault) {
  storageClass("old-default", "x", "Immediate", true);
  clock.advance(std::chrono::seconds(5));
  storageClass("local-path", "podium.dev/local-path", "WaitForFirstConsumer", true);
  storageClass("other", "x", "Immediate");
  claim("data", nullptr);
  claim("none", "");  // "" asks for no class: left alone
  start();
  EXPECT_FALSE(run("claim:default/data").failed());
  EXPECT_EQ(pvc("data")["spec"]["storageClassName"], "local-path");  // the newest default
  fake.clearActions();
  EXPECT_FALSE(run("claim:default/none").failed());
  EXPECT_TRUE(fake.actions("patch", "persistentvolumeclaims").empty());
}

TEST_F(VolumeTest, BindsTheSmallestVolumeThatFits) {
  volume("big", "5Gi");
  volume("small", "2Gi");
  volume("shared-only", "1Gi", {"ReadWriteMany"});
  volume("classy", "1Gi", {"ReadWriteOnce"}, "fast");
  claim("data", "", "1500Mi");
  start();
  EXPECT_FALSE(run("claim:default/data").failed());
  Json v = pv("small");
  EXPECT_EQ(v["spec"]["claimRef"]["name"], "data");
  EXPECT_EQ(v["spec"]["claimRef"]["uid"], pvc("data")["metadata"]["uid"]);
  EXPECT_EQ(v["status"]["phase"], "Bound");
  Json c = pvc("data");
  EXPECT_EQ(c["spec"]["volumeName"], "small");
  EXPECT_EQ(c["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"], "yes");
  EXPECT_EQ(c["status"]["phase"], "Bound");
  EXPECT_EQ(c["status"]["capacity"]["storage"], "2Gi");
  EXPECT_EQ(c["status"]["accessModes"], Json({"ReadWriteOnce"}));
  // Again: nothing left to write.
  fake.clearActions();
  EXPECT_FALSE(run("claim:default/data").failed());
  EXPECT_TRUE(writes().empty()) << writes()[0];
}

TEST_F(VolumeTest, WaitForFirstConsumerBindsOnlyOnTheChosenNode) {
  storageClass("local", "kubernetes.io/no-provisioner", "WaitForFirstConsumer");
  node("n1");
  node("n2");
  volume("on-n2", "1Gi", {"ReadWriteOnce"}, "local", "n2");
  claim("data", "local");
  start();
  EXPECT_FALSE(run("claim:default/data").failed());
  EXPECT_FALSE(pvc("data")["spec"].contains("volumeName"));  // no consumer yet
  Json c = pvc("data");
  c["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] = "n1";
  ASSERT_TRUE(fake.update(res::kPersistentVolumeClaims, "default", c, ""));
  EXPECT_FALSE(run("claim:default/data").failed());
  EXPECT_FALSE(pvc("data")["spec"].contains("volumeName"));  // the volume is not on n1
  c = pvc("data");
  c["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] = "n2";
  ASSERT_TRUE(fake.update(res::kPersistentVolumeClaims, "default", c, ""));
  EXPECT_FALSE(run("claim:default/data").failed());
  EXPECT_EQ(pvc("data")["spec"]["volumeName"], "on-n2");
}

TEST_F(VolumeTest, AClassWithAProvisionerIsAskedForAVolume) {
  storageClass("local-path", "podium.dev/local-path", "WaitForFirstConsumer");
  storageClass("immediate-local", "podium.dev/local-path", "Immediate");
  node("n1");
  claim("data", "local-path", "1Gi", {{"volume.kubernetes.io/selected-node", "n1"}});
  claim("nowhere", "immediate-local");
  start();
  EXPECT_FALSE(run("claim:default/data").failed());
  EXPECT_EQ(pvc("data")["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"],
            "podium.dev/local-path");
  // local-path cannot place a volume without a pod's node: said, not silently ignored.
  EXPECT_FALSE(run("claim:default/nowhere").failed());
  bool said = false;
  for (const auto& e : fake.objects(res::kEvents, "default"))
    said |= json::str(*e, "reason") == "ProvisioningFailed" &&
            json::str(*e, "message").find("WaitForFirstConsumer") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST_F(VolumeTest, AVolumeWhoseClaimIsGoneIsReleasedThenReclaimedByPolicy) {
  Json v = volume("orphan", "1Gi");
  v["spec"]["claimRef"] = {{"namespace", "default"}, {"name", "gone"}, {"uid", "uid-gone"}};
  v["spec"]["persistentVolumeReclaimPolicy"] = "Delete";
  ASSERT_TRUE(fake.update(res::kPersistentVolumes, "", v, ""));
  setPhase("orphan", "Bound");
  Json kept = volume("kept", "1Gi");
  kept["spec"]["claimRef"] = {{"namespace", "default"}, {"name", "gone2"}, {"uid", "uid-gone2"}};
  ASSERT_TRUE(fake.update(res::kPersistentVolumes, "", kept, ""));
  setPhase("kept", "Bound");
  start();
  EXPECT_FALSE(run("volume:orphan").failed());
  EXPECT_EQ(pv("orphan")["status"]["phase"], "Released");
  EXPECT_FALSE(run("volume:orphan").failed());  // Delete, but no provisioner made it
  EXPECT_EQ(pv("orphan")["status"]["phase"], "Failed");
  EXPECT_EQ(pv("orphan")["status"]["reason"], "VolumeFailedDelete");
  EXPECT_FALSE(run("volume:kept").failed());
  EXPECT_FALSE(run("volume:kept").failed());
  EXPECT_EQ(pv("kept")["status"]["phase"], "Released");  // Retain: stays so
}

TEST_F(VolumeTest, AClaimInUseKeepsItsProtectionUntilThePodStops) {
  claim("data", "");
  Json user = pod("user", nullptr, "Running", true);
  user["spec"]["volumes"] = {{{"name", "d"}, {"persistentVolumeClaim", {{"claimName", "data"}}}}};
  ASSERT_TRUE(fake.update(res::kPods, "default", user, ""));
  ASSERT_TRUE(fake.remove(res::kPersistentVolumeClaims, "default", "data", {}));
  start();
  EXPECT_FALSE(run("claim:default/data").failed());
  ASSERT_TRUE(fake.object(res::kPersistentVolumeClaims, "default", "data"));  // held
  user = *fake.object(res::kPods, "default", "user");
  user["status"]["phase"] = "Succeeded";
  ASSERT_TRUE(fake.update(res::kPods, "default", user, "status"));
  EXPECT_FALSE(run("claim:default/data").failed());
  EXPECT_FALSE(fake.object(res::kPersistentVolumeClaims, "default", "data"));  // gone
}

}  // namespace
}  // namespace podium::controllers
