#include "podium/mesh/routes.h"

#include <gtest/gtest.h>

#include <string>

namespace podium::mesh {
namespace {

StringMatch regex(const std::string& pattern) {
  auto m = StringMatch::from(Json{{"regex", pattern}});
  EXPECT_TRUE(m);
  return *m;
}

// Istio's regex matches are RE2 syntax over the whole string (Envoy's safe_regex).
TEST(StringMatch, RegexMatchesTheWholeStringInRe2Syntax) {
  auto api = regex("/api/v[0-9]+/.*");
  EXPECT_TRUE(api.matches("/api/v2/users"));
  EXPECT_FALSE(api.matches("/apix/v2/users"));
  EXPECT_FALSE(regex("abc").matches("xabcx"));  // not a search
  EXPECT_TRUE(regex("(?i)hello").matches("HeLLo"));
  EXPECT_TRUE(regex(R"(\d{3}-\w+)").matches("123-abc"));
}

// A pattern RE2 rejects (a back-reference, a look-ahead, unbalanced parentheses) matches
// nothing rather than failing the configuration or throwing on the data path.
TEST(StringMatch, APatternRe2RejectsMatchesNothing) {
  for (const char* bad : {"(a)\\1", "a(?=b)", "(", "[z-a]"}) {
    auto m = regex(bad);
    EXPECT_FALSE(m.matches("a")) << bad;
    EXPECT_FALSE(m.matches("ab")) << bad;
  }
}

// Inputs that make a backtracking engine recurse once per character or take exponential time
// are matched in linear time; an input over the limit matches nothing.
TEST(StringMatch, LongAndHostileInputsAreSafe) {
  std::string as(StringMatch::kMaxMatchInput, 'a');
  EXPECT_TRUE(regex(".*").matches(as));
  EXPECT_TRUE(regex("(a|aa)*").matches(as));
  EXPECT_FALSE(regex("(a*)*b").matches(as));
  EXPECT_FALSE(regex(".*").matches(as + "a"));  // over the limit
  EXPECT_FALSE(regex("(a|a)*c").matches(std::string(100000, 'a')));
}

TEST(StringMatch, ExactAndPrefixWithAndWithoutCase) {
  auto exact = StringMatch::from(Json{{"exact", "/Hello"}});
  auto prefix = StringMatch::from(Json{{"prefix", "/api"}});
  ASSERT_TRUE(exact && prefix);
  EXPECT_TRUE(exact->matches("/Hello"));
  EXPECT_FALSE(exact->matches("/hello"));
  EXPECT_TRUE(exact->matches("/hello", true));
  EXPECT_TRUE(prefix->matches("/api/v1"));
  EXPECT_FALSE(prefix->matches("/API/v1"));
  EXPECT_TRUE(prefix->matches("/API/v1", true));
  EXPECT_FALSE(StringMatch::from(Json{{"suffix", "x"}}));
}

}  // namespace
}  // namespace podium::mesh
