#include "api/patch.h"

#include <gtest/gtest.h>

#include "podium/api/schema.h"

namespace podium::api {
namespace {

const schema::Type* deployment() { return schema::builtin().find("apps.v1.Deployment"); }

Json smp(const std::string& original, const std::string& patch) {
  auto r = applyStrategicMergePatch(Json::parse(original), patch, deployment());
  EXPECT_TRUE(r) << (r ? "" : r.error().message());
  return r ? *r : Json();
}

const char* kDeploy =
    R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","labels":{"a":"1","b":"2"},"finalizers":["x"]},
  "spec":{"replicas":1,"template":{"spec":{"containers":[
    {"name":"web","image":"nginx:1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"ports":[{"containerPort":80}]},
    {"name":"side","image":"busybox"}]}}}})";

TEST(StrategicMerge, MergesContainersByName) {
  Json out =
      smp(kDeploy,
          R"({"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:2"}]}}}})");
  const Json& cs = out["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0]["image"], "nginx:2");
  EXPECT_EQ(cs[0]["env"].size(), 2u);  // untouched fields stay
  EXPECT_EQ(cs[1]["name"], "side");
}

TEST(StrategicMerge, NestedMergeKeysAndNullDeletes) {
  Json out = smp(
      kDeploy,
      R"({"metadata":{"labels":{"a":null,"c":"3"}},"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"B","value":"22"},{"name":"C","value":"3"}]}]}}}})");
  EXPECT_EQ(out["metadata"]["labels"], Json({{"b", "2"}, {"c", "3"}}));
  const Json& env = out["spec"]["template"]["spec"]["containers"][0]["env"];
  ASSERT_EQ(env.size(), 3u);
  EXPECT_EQ(env[1]["value"], "22");
  EXPECT_EQ(env[2]["name"], "C");
}

TEST(StrategicMerge, DeleteAndReplaceDirectives) {
  Json out =
      smp(kDeploy,
          R"({"spec":{"template":{"spec":{"containers":[{"name":"side","$patch":"delete"}]}}}})");
  EXPECT_EQ(out["spec"]["template"]["spec"]["containers"].size(), 1u);
  out = smp(
      kDeploy,
      R"({"spec":{"template":{"spec":{"containers":[{"name":"only","image":"x"},{"$patch":"replace"}]}}}})");
  ASSERT_EQ(out["spec"]["template"]["spec"]["containers"].size(), 1u);
  EXPECT_EQ(out["spec"]["template"]["spec"]["containers"][0]["name"], "only");
  out = smp(kDeploy, R"({"metadata":{"labels":{"$patch":"replace","z":"9"}}})");
  EXPECT_EQ(out["metadata"]["labels"], Json({{"z", "9"}}));
}

TEST(StrategicMerge, SetElementOrderAndPrimitiveLists) {
  Json out = smp(
      kDeploy,
      R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"side"},{"name":"web"}],"containers":[{"name":"web","image":"nginx:3"}]}}},
                              "metadata":{"finalizers":["y"]}})");
  EXPECT_EQ(out["spec"]["template"]["spec"]["containers"][0]["name"], "side");
  EXPECT_EQ(out["spec"]["template"]["spec"]["containers"][1]["image"], "nginx:3");
  EXPECT_EQ(out["metadata"]["finalizers"], Json({"x", "y"}));  // finalizers merge as a set
  out = smp(kDeploy, R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["x"]}})");
  EXPECT_EQ(out["metadata"]["finalizers"], Json::array());
}

TEST(StrategicMerge, ListsWithoutMergeKeyAreReplaced) {
  Json out = smp(kDeploy,
                 R"({"spec":{"template":{"spec":{"containers":[{"name":"web","args":["a"]}]}}}})");
  out = smp(out.dump(),
            R"({"spec":{"template":{"spec":{"containers":[{"name":"web","args":["b","c"]}]}}}})");
  EXPECT_EQ(out["spec"]["template"]["spec"]["containers"][0]["args"], Json({"b", "c"}));
}

TEST(StrategicMerge, RetainKeys) {
  auto pod = schema::builtin().find("core.v1.Pod");
  Json orig = Json::parse(R"({"spec":{"volumes":[{"name":"v","emptyDir":{}}]}})");
  auto r = applyStrategicMergePatch(
      orig,
      R"({"spec":{"volumes":[{"name":"v","hostPath":{"path":"/x"},"$retainKeys":["hostPath","name"]}]}})",
      pod);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["spec"]["volumes"][0], Json::parse(R"({"name":"v","hostPath":{"path":"/x"}})"));
}

TEST(StrategicMerge, MissingMergeKeyIsAnError) {
  auto r = applyStrategicMergePatch(
      Json::parse(kDeploy), R"({"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}})",
      deployment());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), 422);
}

TEST(JsonPatch, OperationsAndTest) {
  Json o = Json::parse(R"({"a":{"b":1},"l":[1,2]})");
  auto r = applyJsonPatch(
      o,
      R"([{"op":"replace","path":"/a/b","value":2},{"op":"add","path":"/l/-","value":3},{"op":"test","path":"/a/b","value":2}])");
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["a"]["b"], 2);
  EXPECT_EQ((*r)["l"].size(), 3u);
  auto failed = applyJsonPatch(o, R"([{"op":"test","path":"/a/b","value":5}])");
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code(), 422);
  EXPECT_EQ(applyJsonPatch(o, R"({"op":"add"})").error().code(), 400);
  EXPECT_EQ(applyJsonPatch(o, R"([{"op":"frobnicate","path":"/a"}])").error().code(), 422);
  EXPECT_EQ(applyJsonPatch(o, R"([{"op":"remove","path":"/nope"}])").error().code(), 422);
  EXPECT_EQ(applyJsonPatch(o, "[").error().code(), 400);
}

TEST(MergePatch, Rfc7386) {
  auto r = applyMergePatch(Json::parse(R"({"a":1,"b":{"c":2,"d":3},"l":[1]})"),
                           R"({"b":{"c":null},"l":[2,3],"e":true})");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, Json::parse(R"({"a":1,"b":{"d":3},"l":[2,3],"e":true})"));
  EXPECT_EQ(applyMergePatch(Json::object(), "[1]").error().code(), 400);
}

TEST(PatchType, FromContentType) {
  EXPECT_EQ(patchTypeFor("application/strategic-merge-patch+json"), PatchType::StrategicMerge);
  EXPECT_EQ(patchTypeFor("application/apply-patch+yaml; charset=utf-8"), PatchType::Apply);
  EXPECT_EQ(patchTypeFor("application/json-patch+json"), PatchType::JsonPatch);
  EXPECT_EQ(patchTypeFor("application/merge-patch+json"), PatchType::MergePatch);
  EXPECT_FALSE(patchTypeFor("application/json"));
}

}  // namespace
}  // namespace podium::api
