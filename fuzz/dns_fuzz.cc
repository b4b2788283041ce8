// libFuzzer target for the DNS codec and the query handler (the cluster DNS parses packets
// from any pod). Invariants: nothing crashes, and whatever parses serializes to something that
// parses again.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "podium/dns/cluster_dns.h"
#include "podium/dns/message.h"

using namespace podium;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view packet(reinterpret_cast<const char*>(data), size);
  auto m = dns::parse(packet);
  if (m && !dns::parse(dns::serialize(*m))) std::abort();
  static const dns::ClusterZone zone(
      "cluster.local", [](const std::string&, const std::string&) { return client::ObjectPtr(); },
      [](const std::string&, const std::string&) { return client::ObjectPtr(); },
      [] { return std::vector<client::ObjectPtr>(); });
  std::string answer = dns::handleQuery(
      packet, zone, [](std::string_view) { return std::string(); }, 512);
  if (!answer.empty() && !dns::parse(answer)) std::abort();
  return 0;
}
