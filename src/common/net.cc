#include "podium/common/net.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>

#include "podium/common/strings.h"

namespace podium::net {

std::optional<uint32_t> parseIpv4(std::string_view text) {
  uint32_t v = 0;
  int parts = 0;
  size_t i = 0;
  auto digit = [&](size_t at) { return at < text.size() && text[at] >= '0' && text[at] <= '9'; };
  while (parts < 4) {
    if (!digit(i)) return std::nullopt;
    uint32_t octet = 0;
    size_t digits = 0;
    while (digit(i)) {
      octet = octet * 10 + static_cast<uint32_t>(text[i] - '0');
      if (++digits > 3 || octet > 255) return std::nullopt;
      ++i;
    }
    v = (v << 8) | octet;
    if (++parts < 4) {
      if (i >= text.size() || text[i] != '.') return std::nullopt;
      ++i;
    }
  }
  if (i != text.size()) return std::nullopt;
  return v;
}

std::string formatIpv4(uint32_t ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 0xFF) + "." +
         std::to_string((ip >> 8) & 0xFF) + "." + std::to_string(ip & 0xFF);
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  size_t slash = text.find('/');
  auto ip = parseIpv4(text.substr(0, slash));
  if (!ip) return std::nullopt;
  Cidr c;
  if (slash != std::string_view::npos) {
    auto bits = strings::parseInt(text.substr(slash + 1));
    if (!bits || *bits < 0 || *bits > 32) return std::nullopt;
    c.bits = static_cast<int>(*bits);
  }
  c.base = *ip & c.mask();
  return c;
}

std::vector<InterfaceAddress> localIpv4Addresses() {
  std::vector<InterfaceAddress> out;
  struct ifaddrs* addrs = nullptr;
  if (getifaddrs(&addrs) != 0) return out;
  for (auto* a = addrs; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, ip, sizeof ip);
    out.push_back({a->ifa_name, ip, (a->ifa_flags & IFF_LOOPBACK) != 0});
  }
  freeifaddrs(addrs);
  return out;
}

}  // namespace podium::net
