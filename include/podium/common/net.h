#pragma once

// IPv4 addresses and CIDR ranges as text, the way the API, the cluster DNS, the node and the
// proxy all spell them. Values are host-order integers. Untrusted text never throws: a parse
// that fails says so.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podium::net {

// "10.43.0.1" -> host-order value; nullopt unless it is dotted-quad IPv4 (no leading junk,
// each octet 0-255 with at most three digits).
std::optional<uint32_t> parseIpv4(std::string_view text);
// The same, for callers that keep an out-parameter; false when it does not parse.
inline bool parseIpv4(std::string_view text, uint32_t* out) {
  auto v = parseIpv4(text);
  if (v) *out = *v;
  return v.has_value();
}
std::string formatIpv4(uint32_t ipv4HostOrder);

// An IPv4 range "10.43.0.0/16". The base is masked (10.43.1.2/16 is 10.43.0.0/16).
struct Cidr {
  uint32_t base = 0;
  int bits = 32;
  // "A.B.C.D/N" with 0 <= N <= 32, or a bare address (a /32).
  static std::optional<Cidr> parse(std::string_view text);
  uint64_t size() const { return uint64_t(1) << (32 - bits); }
  bool contains(uint32_t ip) const { return uint64_t(ip - base) < size(); }
  uint32_t mask() const { return bits == 0 ? 0 : ~uint32_t(0) << (32 - bits); }
};

// The IPv4 addresses on this network namespace's interfaces (getifaddrs), in its order.
struct InterfaceAddress {
  std::string interface, ip;
  bool loopback = false;
};
std::vector<InterfaceAddress> localIpv4Addresses();

}  // namespace podium::net
