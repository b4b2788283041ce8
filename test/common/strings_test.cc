#include "podium/common/strings.h"

#include <gtest/gtest.h>

namespace podium::strings {
namespace {

TEST(Strings, SplitJoinTrim) {
  EXPECT_EQ(split("a,b,,c", ','), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(join({"x", "y"}, ", "), "x, y");
  EXPECT_EQ(trim("  a b \n"), "a b");
}

TEST(Strings, UrlDecode) {
  EXPECT_EQ(urlDecode("metadata.name%3Dp1", true), "metadata.name=p1");
  EXPECT_EQ(urlDecode("a+b", true), "a b");
  EXPECT_EQ(urlDecode("a+b", false), "a+b");
  EXPECT_EQ(urlDecode("%zz%4", true), "%zz%4");  // malformed escapes are kept literally
  EXPECT_EQ(urlEncode("a=b c"), "a%3Db%20c");
}

TEST(Strings, ParseInt) {
  EXPECT_EQ(parseInt("42"), 42);
  EXPECT_EQ(parseInt("-7"), -7);
  EXPECT_FALSE(parseInt(""));
  EXPECT_FALSE(parseInt("4x"));
  EXPECT_FALSE(parseInt("99999999999999999999"));
}

TEST(Strings, Base64RoundTrip) {
  for (const std::string& s :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    EXPECT_EQ(base64Decode(base64Encode(s)), s);
    EXPECT_EQ(base64UrlDecode(base64UrlEncode(s)), s);
  }
  EXPECT_EQ(base64Encode("hello"), "aGVsbG8=");
  EXPECT_FALSE(base64Decode("aGVsbG8"));   // missing padding
  EXPECT_FALSE(base64Decode("aGV*bG8="));  // bad alphabet
}

TEST(Strings, Uuid) {
  std::string u = uuid4();
  ASSERT_EQ(u.size(), 36u);
  EXPECT_EQ(u[14], '4');
  EXPECT_NE(u, uuid4());
  EXPECT_EQ(randomSuffix(5).size(), 5u);
}

}  // namespace
}  // namespace podium::strings
