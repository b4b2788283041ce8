#include "api/apply.h"

#include <gtest/gtest.h>

namespace podium::api::ssa {
namespace {

Scope deploymentScope() { return Scope{schema::builtin().find("apps.v1.Deployment"), true, ""}; }

Json config(int replicas, const std::string& image, bool withLabel = true) {
  Json c = Json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},
    "spec":{"selector":{"matchLabels":{"app":"d"}},"template":{"metadata":{"labels":{"app":"d"}},
    "spec":{"containers":[{"name":"web","image":"x","ports":[{"containerPort":80}]}]}}}})");
  c["spec"]["replicas"] = replicas;
  c["spec"]["template"]["spec"]["containers"][0]["image"] = image;
  if (withLabel) c["metadata"]["labels"] = {{"team", "a"}};
  return c;
}

const Json* entry(const Json& obj, const std::string& manager) {
  for (const auto& e : obj["metadata"]["managedFields"])
    if (e["manager"] == manager) return &e;
  return nullptr;
}

TEST(FieldSet, RoundTripsFieldsV1) {
  Json f = Json::parse(
      R"({"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{}}}}})");
  FieldSet s = FieldSet::fromFieldsV1(f);
  EXPECT_EQ(s.toFieldsV1(), f);
  EXPECT_TRUE(s.has({"f:metadata", "f:labels"}));
  EXPECT_FALSE(s.has({"f:metadata"}));
  EXPECT_TRUE(s.hasAtOrBelow({"f:spec"}));
  FieldSet other =
      FieldSet::fromFieldsV1(Json::parse(R"({"f:metadata":{"f:labels":{"f:app":{}}}})"));
  s.subtract(other);
  EXPECT_FALSE(s.has({"f:metadata", "f:labels", "f:app"}));
  EXPECT_EQ(pathString({"f:spec", "f:containers", "k:{\"name\":\"web\"}", "f:image"}),
            ".spec.containers[name=\"web\"].image");
}

TEST(Apply, CreatesWithOwnership) {
  auto r = apply(nullptr, config(3, "nginx:1"), "alice", false, "t", deploymentScope(),
                 "deployments.apps", "d");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ((*r)["spec"]["replicas"], 3);
  const Json* e = entry(*r, "alice");
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)["operation"], "Apply");
  EXPECT_TRUE((*e)["fieldsV1"]["f:spec"].contains("f:replicas"));
  EXPECT_TRUE((*e)["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"].contains(
      "k:{\"name\":\"web\"}"));
  // Container ports are keyed by port and protocol (defaulted TCP).
  EXPECT_TRUE((*e)["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
                  ["k:{\"name\":\"web\"}"]["f:ports"]
                      .contains("k:{\"containerPort\":80,\"protocol\":\"TCP\"}"));
}

TEST(Apply, ConflictsWithAnotherManagerUnlessForced) {
  auto live = apply(nullptr, config(3, "nginx:1"), "alice", false, "t", deploymentScope(),
                    "deployments.apps", "d");
  ASSERT_TRUE(live);
  auto conflict = apply(&*live, config(5, "nginx:1"), "bob", false, "t", deploymentScope(),
                        "deployments.apps", "d");
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().code(), 409);
  EXPECT_NE(conflict.error().message().find("conflict with \"alice\""), std::string::npos);
  EXPECT_NE(conflict.error().message().find(".spec.replicas"), std::string::npos);
  EXPECT_EQ(conflict.error().details()["causes"][0]["reason"], "FieldManagerConflict");
  // The same value is shared ownership, not a conflict.
  auto shared = apply(&*live, config(3, "nginx:1"), "bob", false, "t", deploymentScope(),
                      "deployments.apps", "d");
  ASSERT_TRUE(shared) << shared.error().message();
  auto forced = apply(&*live, config(5, "nginx:1"), "bob", true, "t", deploymentScope(),
                      "deployments.apps", "d");
  ASSERT_TRUE(forced);
  EXPECT_EQ((*forced)["spec"]["replicas"], 5);
  const Json* alice = entry(*forced, "alice");
  ASSERT_TRUE(alice);
  EXPECT_FALSE((*alice)["fieldsV1"]["f:spec"].contains("f:replicas"));  // taken by bob
}

TEST(Apply, FieldsNoLongerAppliedAreRemoved) {
  auto live = apply(nullptr, config(3, "nginx:1", true), "alice", false, "t", deploymentScope(),
                    "deployments.apps", "d");
  ASSERT_TRUE(live);
  EXPECT_EQ((*live)["metadata"]["labels"]["team"], "a");
  auto next = apply(&*live, config(3, "nginx:1", false), "alice", false, "t", deploymentScope(),
                    "deployments.apps", "d");
  ASSERT_TRUE(next);
  EXPECT_FALSE((*next)["metadata"].contains("labels") &&
               (*next)["metadata"]["labels"].contains("team"));
}

TEST(Apply, FieldsOwnedByOthersSurviveRemoval) {
  auto live = apply(nullptr, config(3, "nginx:1", true), "alice", false, "t", deploymentScope(),
                    "deployments.apps", "d");
  ASSERT_TRUE(live);
  auto bob = apply(&*live, config(3, "nginx:1", true), "bob", false, "t", deploymentScope(),
                   "deployments.apps", "d");
  ASSERT_TRUE(bob);
  auto next = apply(&*bob, config(3, "nginx:1", false), "alice", false, "t", deploymentScope(),
                    "deployments.apps", "d");
  ASSERT_TRUE(next);
  EXPECT_EQ((*next)["metadata"]["labels"]["team"], "a");  // bob still applies it
}

TEST(RecordUpdate, UpdateTakesOwnershipOfChangedFields) {
  auto live = apply(nullptr, config(3, "nginx:1"), "alice", false, "t", deploymentScope(),
                    "deployments.apps", "d");
  ASSERT_TRUE(live);
  Json next = *live;
  next["spec"]["replicas"] = 7;
  Scope scale = deploymentScope();
  scale.subresource = "scale";
  recordUpdate(&*live, next, "kubectl-scale", "apps/v1", "t2", scale);
  const Json* e = entry(next, "kubectl-scale");
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)["operation"], "Update");
  EXPECT_EQ((*e)["subresource"], "scale");
  EXPECT_TRUE((*e)["fieldsV1"]["f:spec"].contains("f:replicas"));
  EXPECT_FALSE((*entry(next, "alice"))["fieldsV1"]["f:spec"].contains("f:replicas"));
  // Applying the old value now conflicts with the scaler, naming its subresource.
  auto c = apply(&next, config(3, "nginx:1"), "alice", false, "t", deploymentScope(),
                 "deployments.apps", "d");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("with subresource \"scale\""), std::string::npos);
}

TEST(RecordUpdate, StatusIsNotOwnedThroughTheMainResource) {
  Json obj = config(1, "x");
  obj["status"] = {{"replicas", 1}};
  recordUpdate(nullptr, obj, "creator", "apps/v1", "t", deploymentScope());
  EXPECT_FALSE(entry(obj, "creator")->at("fieldsV1").contains("f:status"));
  EXPECT_FALSE(entry(obj, "creator")->at("fieldsV1")["f:metadata"].contains("f:name"));
}

TEST(RecordUpdate, ClientSuppliedManagedFieldsAreKept) {
  Json old = config(1, "x");
  recordUpdate(nullptr, old, "a", "apps/v1", "t", deploymentScope());
  Json next = old;
  next["metadata"]["managedFields"] = Json::parse(
      R"([{"manager":"m","operation":"Apply","apiVersion":"apps/v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:replicas":{}}}}])");
  recordUpdate(&old, next, "a", "apps/v1", "t", deploymentScope());
  ASSERT_EQ(next["metadata"]["managedFields"].size(), 1u);
  EXPECT_EQ(next["metadata"]["managedFields"][0]["manager"], "m");
}

}  // namespace
}  // namespace podium::api::ssa
