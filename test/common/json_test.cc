#include "podium/common/json.h"

#include <gtest/gtest.h>

namespace podium::json {
namespace {

TEST(Json, ParseReportsDuplicates) {
  auto r = parse(R"({"a":1,"b":{"c":1,"c":2},"a":3})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value["a"], 3);
  EXPECT_EQ(r->duplicates, (std::vector<std::string>{"c", "a"}));
}

TEST(Json, ParseErrorsAreMessagesNotExceptions) {
  auto r = parse("{\"a\": ");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("parse error"), std::string::npos);
  EXPECT_FALSE(parse(std::string(10000, '[')));
}

TEST(Json, YamlScalarsFollowTheCoreSchema) {
  auto r = parseYaml("a: 1\nb: \"1\"\nc: true\nd: 'true'\ne: null\nf: 1.5\ng: v1.0.0\nh:\n- x\n");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->value["a"], 1);
  EXPECT_EQ(r->value["b"], "1");
  EXPECT_EQ(r->value["c"], true);
  EXPECT_EQ(r->value["d"], "true");
  EXPECT_TRUE(r->value["e"].is_null());
  EXPECT_EQ(r->value["f"], 1.5);
  EXPECT_EQ(r->value["g"], "v1.0.0");
  EXPECT_EQ(r->value["h"], Json::array({"x"}));
}

TEST(Json, YamlErrorsNameTheLine) {
  auto r = parseYaml("a: 1\nb: [unclosed\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("line"), std::string::npos);
}

TEST(Json, YamlStream) {
  auto r = parseYamlStream("a: 1\n---\n---\nb: 2\n");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1]["b"], 2);
}

TEST(Json, ToYamlRoundTrips) {
  Json v = Json::parse(
      R"({"apiVersion":"v1","kind":"Config","clusters":[{"name":"x","cluster":{"server":"https://127.0.0.1:6443","insecure":false}}],"n":"123","empty":{},"list":[],"multi":"a\nb\n","colon":"a: b"})");
  std::string y = toYaml(v);
  auto back = parseYaml(y);
  ASSERT_TRUE(back) << back.error() << "\n" << y;
  EXPECT_EQ(back->value, v) << y;
}

TEST(Json, MergePatchBetweenHoldsOnlyWhatChanged) {
  Json from = Json::parse(R"({"a":1,"b":{"c":"x","d":[1,2]},"e":"gone","f":{"g":1}})");
  Json to = Json::parse(R"({"a":1,"b":{"c":"y","d":[1,2]},"f":[3],"h":{"i":true}})");
  EXPECT_EQ(mergePatchBetween(from, to),
            Json::parse(R"({"b":{"c":"y"},"e":null,"f":[3],"h":{"i":true}})"));
  EXPECT_EQ(mergePatchBetween(from, from), Json::object());
  EXPECT_EQ(mergePatchBetween(Json("x"), to), to);
  EXPECT_EQ(mergePatchBetween(from, Json::array()), Json::array());
}

}  // namespace
}  // namespace podium::json
