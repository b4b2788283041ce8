#include "proxy/http1.h"

#include <gtest/gtest.h>

#include <random>

namespace podium::proxy::http1 {
namespace {

ParseResult req(const std::string& text, Head* h) { return parseRequest(text, h); }

TEST(Http1Request, ParsesAKeepAliveGet) {
  Head h;
  auto r = req("GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\nrest", &h);
  ASSERT_EQ(r.status, ParseStatus::Done) << r.error;
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/a?b=1");
  EXPECT_EQ(h.header("host"), "example.com");
  EXPECT_TRUE(h.keepAlive);
  EXPECT_EQ(h.body, BodyKind::None);
  EXPECT_EQ(
      h.headSize,
      std::string("GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n").size());
}

TEST(Http1Request, WaitsForTheWholeHead) {
  Head h;
  EXPECT_EQ(req("GET / HTTP/1.1\r\nHost: a\r\n", &h).status, ParseStatus::NeedMore);
}

TEST(Http1Request, FramingAndConnection) {
  Head h;
  ASSERT_EQ(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", &h).status,
            ParseStatus::Done);
  EXPECT_EQ(h.body, BodyKind::Length);
  EXPECT_EQ(h.contentLength, 5u);
  ASSERT_EQ(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &h).status,
            ParseStatus::Done);
  EXPECT_EQ(h.body, BodyKind::Chunked);
  ASSERT_EQ(req("GET / HTTP/1.0\r\n\r\n", &h).status, ParseStatus::Done);
  EXPECT_FALSE(h.keepAlive);
  ASSERT_EQ(req("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &h).status,
            ParseStatus::Done);
  EXPECT_FALSE(h.keepAlive);
  ASSERT_EQ(
      req("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", &h)
          .status,
      ParseStatus::Done);
  EXPECT_TRUE(h.upgrade);
}

TEST(Http1Request, RefusesSmugglingAndMalformedInput) {
  Head h;
  struct Case {
    const char* text;
    int code;
  } cases[] = {
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
       400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"GET / HTTP/1.1\r\n\r\n", 400},                        // no Host
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},  // two Hosts
      {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
      {"GET / HTTP/1.1\nHost: a\n\n", 400},
      {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
      {"GET / FTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GARBAGE\r\n\r\n", 400},
  };
  for (const auto& c : cases) {
    auto r = req(c.text, &h);
    EXPECT_EQ(r.status, ParseStatus::Error) << c.text;
    EXPECT_EQ(r.errorCode, c.code) << c.text;
  }
}

TEST(Http1Request, OversizedHeadIs431) {
  Head h;
  std::string big = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(70000, 'a');
  auto r = req(big, &h);
  EXPECT_EQ(r.status, ParseStatus::Error);
  EXPECT_EQ(r.errorCode, 431);
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 200; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(req(many + "\r\n", &h).errorCode, 431);
}

TEST(Http1Response, BodyRules) {
  Head h;
  ASSERT_EQ(parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", "GET", &h).status,
            ParseStatus::Done);
  EXPECT_EQ(h.body, BodyKind::Length);
  ASSERT_EQ(parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", "HEAD", &h).status,
            ParseStatus::Done);
  EXPECT_EQ(h.body, BodyKind::None);
  EXPECT_TRUE(h.keepAlive);
  ASSERT_EQ(parseResponse("HTTP/1.1 204 No Content\r\n\r\n", "GET", &h).status, ParseStatus::Done);
  EXPECT_EQ(h.body, BodyKind::None);
  ASSERT_EQ(parseResponse("HTTP/1.1 200 OK\r\n\r\n", "GET", &h).status, ParseStatus::Done);
  EXPECT_EQ(h.body, BodyKind::UntilClose);
  EXPECT_FALSE(h.keepAlive);
  EXPECT_EQ(parseResponse("HTTP/1.1 2x0 OK\r\n\r\n", "GET", &h).status, ParseStatus::Error);
}

TEST(Http1Chunked, FindsTheEndAcrossFeeds) {
  std::string body = "4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT";
  for (size_t split = 0; split <= body.size(); ++split) {
    ChunkedScanner s;
    int64_t a = s.feed(std::string_view(body).substr(0, split));
    ASSERT_GE(a, 0);
    int64_t b = s.done() ? 0 : s.feed(std::string_view(body).substr(static_cast<size_t>(a)));
    ASSERT_GE(b, 0);
    EXPECT_TRUE(s.done()) << split;
    EXPECT_EQ(static_cast<size_t>(a + b), body.size() - 4) << split;
  }
  ChunkedScanner bad;
  EXPECT_EQ(bad.feed("zz\r\n"), -1);
  ChunkedScanner huge;
  EXPECT_EQ(huge.feed("ffffffffffffffffff\r\n"), -1);
}

TEST(Http1Request, RandomMutationsNeverCrash) {
  std::mt19937 rng(7);
  std::string seed =
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n";
  for (int i = 0; i < 20000; ++i) {
    std::string s = seed;
    for (int e = 0; e < 1 + static_cast<int>(rng() % 6); ++e) {
      if (!s.empty() && rng() % 3)
        s[rng() % s.size()] = static_cast<char>(rng());
      else if (rng() % 2)
        s.resize(rng() % (s.size() + 1));
      else
        s.insert(s.begin() + static_cast<long>(rng() % (s.size() + 1)), static_cast<char>(rng()));
    }
    Head h;
    auto r = parseRequest(s, &h);
    if (r.status == ParseStatus::Done) (void)serializeRequest(h);
  }
}

}  // namespace
}  // namespace podium::proxy::http1
