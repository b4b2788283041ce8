#include "podium/api/selectors.h"

#include <gtest/gtest.h>

namespace podium::api {
namespace {

TEST(LabelSelector, ParsesAndMatchesEveryOperator) {
  auto s = LabelSelector::parse(
      "app=web,tier!=db,env in (prod, staging),!legacy,release,version notin (1)");
  ASSERT_TRUE(s) << s.error();
  Json labels = {
      {"app", "web"}, {"tier", "front"}, {"env", "prod"}, {"release", "x"}, {"version", "2"}};
  EXPECT_TRUE(s->matches(labels));
  labels["legacy"] = "yes";
  EXPECT_FALSE(s->matches(labels));
  EXPECT_EQ(s->str(), "app=web,tier!=db,env in (prod,staging),!legacy,release,version notin (1)");
}

TEST(LabelSelector, DoubleEqualsAndEmpty) {
  auto s = LabelSelector::parse("a==b");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->matches({{"a", "b"}}));
  auto e = LabelSelector::parse("");
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->empty());
  EXPECT_TRUE(e->matches(nullptr));
}

TEST(LabelSelector, SyntaxErrors) {
  EXPECT_FALSE(LabelSelector::parse("a in (b"));
  EXPECT_FALSE(LabelSelector::parse("=b"));
  EXPECT_FALSE(LabelSelector::parse("a=b,,c"));
}

TEST(LabelSelector, FromObject) {
  auto s = LabelSelector::fromObject(Json::parse(
      R"({"matchLabels":{"app":"x"},"matchExpressions":[{"key":"k","operator":"In","values":["a","b"]}]})"));
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->matches({{"app", "x"}, {"k", "b"}}));
  EXPECT_FALSE(s->matches({{"app", "x"}}));
  EXPECT_EQ(s->str(), "app=x,k in (a,b)");
  auto none = LabelSelector::fromObject(nullptr);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->matches({{"a", "b"}}));
  EXPECT_FALSE(LabelSelector::fromObject(
      Json::parse(R"({"matchExpressions":[{"key":"k","operator":"Near"}]})")));
}

TEST(FieldSelector, SupportedFieldsOnly) {
  auto s = FieldSelector::parse("metadata.name=p1,status.phase!=Running", {"status.phase"});
  ASSERT_TRUE(s) << s.error();
  Json pod = {{"metadata", {{"name", "p1"}}}, {"status", {{"phase", "Pending"}}}};
  EXPECT_TRUE(s->matches(pod));
  pod["status"]["phase"] = "Running";
  EXPECT_FALSE(s->matches(pod));
  EXPECT_EQ(s->exactName(), "p1");
  auto bad = FieldSelector::parse("spec.foo=1", {});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), "field label not supported: spec.foo");
}

}  // namespace
}  // namespace podium::api
