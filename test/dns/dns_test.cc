#include <gtest/gtest.h>

#include <map>
#include <random>

#include "podium/common/net.h"
#include "podium/dns/cluster_dns.h"
#include "podium/dns/message.h"

namespace podium::dns {
namespace {

std::string query(const std::string& name, uint16_t type, uint16_t id = 0x1234) {
  Message m;
  m.id = id;
  m.recursionDesired = true;
  m.questions.push_back({name, type, kClassIN});
  return serialize(m);
}

client::ObjectPtr obj(const char* text) { return std::make_shared<const Json>(Json::parse(text)); }

class ZoneTest : public ::testing::Test {
 protected:
  std::map<std::string, client::ObjectPtr> services = {
      {"default/web", obj(R"({"metadata":{"name":"web","namespace":"default"},
          "spec":{"clusterIP":"10.43.0.20","ports":[{"name":"http","port":80,"protocol":"TCP"}]}})")},
      {"default/db", obj(R"({"metadata":{"name":"db","namespace":"default"},
          "spec":{"clusterIP":"None","ports":[{"port":5432}]}})")},
      {"default/ext", obj(R"({"metadata":{"name":"ext","namespace":"default"},
          "spec":{"type":"ExternalName","externalName":"Example.COM"}})")}};
  std::map<std::string, client::ObjectPtr> endpoints = {
      {"default/db",
       obj(R"({"subsets":[{"addresses":[{"ip":"10.42.0.7","hostname":"db-0"},{"ip":"10.42.0.8"}],
          "notReadyAddresses":[{"ip":"10.42.0.9"}]}]})")}};
  ClusterZone zone{"cluster.local",
                   [this](const std::string& ns, const std::string& n) {
                     auto it = services.find(ns + "/" + n);
                     return it == services.end() ? nullptr : it->second;
                   },
                   [this](const std::string& ns, const std::string& n) {
                     auto it = endpoints.find(ns + "/" + n);
                     return it == endpoints.end() ? nullptr : it->second;
                   },
                   [this] {
                     std::vector<client::ObjectPtr> all;
                     for (auto& [k, v] : services) all.push_back(v);
                     return all;
                   }};

  Message ask(const std::string& name, uint16_t type) {
    bool forwarded = false;
    std::string answer = handleQuery(
        query(name, type), zone,
        [&](std::string_view) {
          forwarded = true;
          return std::string();
        },
        512);
    auto m = parse(answer);
    EXPECT_TRUE(m) << (m ? "" : m.error());
    lastForwarded = forwarded;
    return m ? *m : Message{};
  }
  bool lastForwarded = false;
};

TEST(DnsMessage, RoundTripsAQuestionAndAnswers) {
  Message m;
  m.id = 7;
  m.response = true;
  m.authoritative = true;
  m.questions.push_back({"web.default.svc.cluster.local", kA, kClassIN});
  uint32_t ip;
  ASSERT_TRUE(net::parseIpv4("10.43.0.20", &ip));
  m.answers.push_back({"web.default.svc.cluster.local", kA, kClassIN, 5, rdataA(ip)});
  m.additional.push_back({"other.name", kA, kClassIN, 5, rdataA(ip)});
  auto back = parse(serialize(m));
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(back->id, 7);
  EXPECT_TRUE(back->response);
  EXPECT_TRUE(back->authoritative);
  ASSERT_EQ(back->answers.size(), 1u);
  EXPECT_EQ(back->answers[0].name, "web.default.svc.cluster.local");  // through the 0xC00C pointer
  EXPECT_EQ(back->answers[0].rdata, rdataA(ip));
  EXPECT_EQ(back->additional[0].name, "other.name");
}

TEST(DnsMessage, NamesAreCaseInsensitive) {
  auto m = parse(query("WeB.Default.SVC.Cluster.Local", kA));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->questions[0].name, "web.default.svc.cluster.local");
}

TEST(DnsMessage, RejectsPointerLoopsAndForwardPointers) {
  // Header with one question whose name is a pointer to itself (offset 12).
  std::string loop = std::string("\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12) +
                     "\xC0\x0C" + std::string("\x00\x01\x00\x01", 4);
  auto r = parse(loop);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "name pointer does not point backwards");
  EXPECT_FALSE(parse(std::string("\x00\x01", 2)));
  // A label running past the end.
  std::string longLabel = std::string("\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12) +
                          "\x3F"
                          "abc";
  EXPECT_EQ(parse(longLabel).error(), "truncated label");
}

TEST(DnsMessage, TruncatesOversizedAnswers) {
  Message m;
  m.response = true;
  m.questions.push_back({"a.b", kA, kClassIN});
  for (int i = 0; i < 100; ++i)
    m.answers.push_back({"a.b", kA, kClassIN, 5, rdataA(static_cast<uint32_t>(i))});
  std::string wire = serialize(m, 512);
  auto back = parse(wire);
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->truncated);
  EXPECT_TRUE(back->answers.empty());
}

TEST(DnsMessage, RandomBytesNeverCrashTheParser) {
  std::mt19937 rng(42);
  std::string seed = query("web.default.svc.cluster.local", kSRV);
  for (int i = 0; i < 20000; ++i) {
    std::string s = seed;
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      if (!s.empty() && rng() % 3)
        s[rng() % s.size()] = static_cast<char>(rng());
      else if (rng() % 2)
        s.resize(rng() % (s.size() + 1));
      else
        s.push_back(static_cast<char>(rng()));
    }
    auto m = parse(s);
    if (m) (void)serialize(*m);
  }
}

TEST(DnsIpv4, ParsesOnlyDottedQuads) {
  uint32_t v;
  EXPECT_TRUE(net::parseIpv4("10.43.0.1", &v));
  EXPECT_EQ(net::formatIpv4(v), "10.43.0.1");
  for (const char* bad :
       {"", "10.43.0", "10.43.0.1.2", "256.0.0.1", "1..2.3", "a.b.c.d", "1.2.3.4 "})
    EXPECT_FALSE(net::parseIpv4(bad, &v)) << bad;
}

TEST_F(ZoneTest, ServiceARecordIsTheClusterIp) {
  Message m = ask("web.default.svc.cluster.local", kA);
  EXPECT_EQ(m.rcode, kNoError);
  EXPECT_TRUE(m.authoritative);
  ASSERT_EQ(m.answers.size(), 1u);
  uint32_t ip;
  net::parseIpv4("10.43.0.20", &ip);
  EXPECT_EQ(m.answers[0].rdata, rdataA(ip));
  EXPECT_EQ(m.answers[0].ttl, 5u);
}

TEST_F(ZoneTest, HeadlessServiceAnswersReadyEndpoints) {
  Message m = ask("db.default.svc.cluster.local", kA);
  ASSERT_EQ(m.answers.size(), 2u);
}

// A StatefulSet's pod under its headless Service: <hostname>.<service>.<ns>.svc.
TEST_F(ZoneTest, PodHostnamesUnderAHeadlessService) {
  Message m = ask("db-0.db.default.svc.cluster.local", kA);
  EXPECT_EQ(m.rcode, kNoError);
  ASSERT_EQ(m.answers.size(), 1u);
  uint32_t ip;
  net::parseIpv4("10.42.0.7", &ip);
  EXPECT_EQ(m.answers[0].rdata, rdataA(ip));
  EXPECT_EQ(ask("db-1.db.default.svc.cluster.local", kA).rcode, kNXDomain);
  EXPECT_EQ(ask("db-0.web.default.svc.cluster.local", kA).rcode, kNXDomain);  // not headless
}

TEST_F(ZoneTest, SrvForNamedPortsAndTheService) {
  Message m = ask("_http._tcp.web.default.svc.cluster.local", kSRV);
  ASSERT_EQ(m.answers.size(), 1u);
  EXPECT_EQ(m.answers[0].rdata, rdataSrv(0, 100, 80, "web.default.svc.cluster.local"));
  EXPECT_EQ(m.additional.size(), 1u);
  EXPECT_EQ(ask("_nope._tcp.web.default.svc.cluster.local", kSRV).rcode, kNXDomain);
}

TEST_F(ZoneTest, MissingNamesInTheZoneAreNxdomainWithSoa) {
  Message m = ask("nope.default.svc.cluster.local", kA);
  EXPECT_EQ(m.rcode, kNXDomain);
  ASSERT_EQ(m.authority.size(), 1u);
  EXPECT_EQ(m.authority[0].type, kSOA);
  // The search path's intermediate names exist but are empty.
  EXPECT_EQ(ask("default.svc.cluster.local", kA).rcode, kNoError);
  // AAAA of a service: no data, not NXDOMAIN (so resolvers do not drop the A answer).
  Message aaaa = ask("web.default.svc.cluster.local", kAAAA);
  EXPECT_EQ(aaaa.rcode, kNoError);
  EXPECT_TRUE(aaaa.answers.empty());
}

TEST_F(ZoneTest, PodRecordsPtrAndExternalName) {
  Message pod = ask("10-42-0-5.default.pod.cluster.local", kA);
  ASSERT_EQ(pod.answers.size(), 1u);
  uint32_t ip;
  net::parseIpv4("10.42.0.5", &ip);
  EXPECT_EQ(pod.answers[0].rdata, rdataA(ip));
  Message ptr = ask("20.0.43.10.in-addr.arpa", kPTR);
  ASSERT_EQ(ptr.answers.size(), 1u);
  EXPECT_EQ(ptr.answers[0].rdata, rdataName("web.default.svc.cluster.local"));
  Message ext = ask("ext.default.svc.cluster.local", kA);
  ASSERT_EQ(ext.answers.size(), 1u);
  EXPECT_EQ(ext.answers[0].type, kCNAME);
  EXPECT_EQ(ext.answers[0].rdata, rdataName("example.com"));
}

TEST_F(ZoneTest, OtherNamesAreForwardedAndServfailWhenNoUpstreamAnswers) {
  Message m = ask("example.com", kA);
  EXPECT_TRUE(lastForwarded);
  EXPECT_EQ(m.rcode, kServFail);
  ask("1.1.168.192.in-addr.arpa", kPTR);
  EXPECT_TRUE(lastForwarded);
}

TEST_F(ZoneTest, MalformedQueriesGetFormerrAndAnswersAreIgnored) {
  std::string bad = query("web.default.svc.cluster.local", kA);
  bad.resize(bad.size() - 2);
  auto m = parse(handleQuery(bad, zone, nullptr, 512));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->rcode, kFormErr);
  EXPECT_EQ(m->id, 0x1234);
  EXPECT_EQ(handleQuery("abc", zone, nullptr, 512), "");
  Message answer;
  answer.response = true;
  answer.questions.push_back({"web.default.svc.cluster.local", kA, kClassIN});
  EXPECT_EQ(handleQuery(serialize(answer), zone, nullptr, 512), "");
}

}  // namespace
}  // namespace podium::dns
