#include "node/resource_stats.h"

#include <gtest/gtest.h>

namespace podium::node {
namespace {

TEST(ResourceStats, ProcFilesGiveTheMachinesCpuTimeAndWorkingSet) {
  // user nice system idle iowait irq softirq steal, in ticks of 1/100 s
  EXPECT_EQ(parseProcStatCpuNs("cpu  100 0 50 1000 30 5 5 0 0 0\ncpu0 1 2 3\n", 100),
            160u * 10000000u);
  EXPECT_FALSE(parseProcStatCpuNs("intr 5\n", 100));
  EXPECT_EQ(parseMeminfoWorkingSet("MemTotal:  1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\n"),
            400u * 1024u);
  EXPECT_FALSE(parseMeminfoWorkingSet("MemTotal: 1000 kB\n"));
}

ContainerSample sample(const std::string& id, const std::string& pod, const std::string& name,
                       int64_t t, uint64_t cpu, uint64_t mem) {
  return {id, "apps", pod, "uid-" + pod, name, {t, cpu, mem}};
}

TEST(ResourceStats, RatesComeFromTwoSamplesAndPodsSumTheirContainers) {
  const int64_t s = 1000000000;
  NodeSample n0{{10 * s, 5 * s, 100}}, n1{{12 * s, 8 * s, 200}};
  std::vector<ContainerSample> prev = {sample("a", "web", "app", 10 * s, 1 * s, 10),
                                       sample("b", "web", "side", 10 * s, 0, 5),
                                       sample("c", "db", "db", 10 * s, 9 * s, 7)};
  std::vector<ContainerSample> cur = {sample("a", "web", "app", 12 * s, 2 * s, 30),
                                      sample("b", "web", "side", 12 * s, s / 2, 6),
                                      // restarted: its counter went back, so no rate yet
                                      sample("c", "db", "db", 12 * s, 1 * s, 8)};
  Json sum = buildSummary("n1", &n0, n1, prev, cur);
  EXPECT_EQ(sum["node"]["nodeName"], "n1");
  EXPECT_EQ(sum["node"]["cpu"]["usageNanoCores"], 1500000000u);  // 3 s over 2 s
  EXPECT_EQ(sum["node"]["memory"]["workingSetBytes"], 200u);
  ASSERT_EQ(sum["pods"].size(), 2u);
  const Json& web = sum["pods"][0];
  EXPECT_EQ(web["podRef"]["name"], "web");
  EXPECT_EQ(web["podRef"]["uid"], "uid-web");
  EXPECT_EQ(web["containers"][0]["cpu"]["usageNanoCores"], 500000000u);
  EXPECT_EQ(web["containers"][1]["cpu"]["usageNanoCores"], 250000000u);
  EXPECT_EQ(web["cpu"]["usageNanoCores"], 750000000u);
  EXPECT_EQ(web["memory"]["workingSetBytes"], 36u);
  EXPECT_FALSE(sum["pods"][1]["containers"][0]["cpu"].contains("usageNanoCores"));
  EXPECT_FALSE(sum["pods"][1]["cpu"].contains("usageNanoCores"));
  // One round only: usage, no rates.
  Json first = buildSummary("n1", nullptr, n0, {}, prev);
  EXPECT_FALSE(first["node"]["cpu"].contains("usageNanoCores"));
  EXPECT_EQ(first["pods"][0]["cpu"]["usageCoreNanoSeconds"], 1000000000u);
}

}  // namespace
}  // namespace podium::node
