#pragma once

// DNS messages (RFC 1035) as the cluster DNS reads and writes them. The parser takes untrusted
// packets: every length and pointer is checked, compression pointers may only point backwards,
// names are at most 255 bytes and labels 63, and at most 16 records per section are decoded.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "podium/common/expected.h"

namespace podium::dns {

enum Type : uint16_t {
  kA = 1,
  kNS = 2,
  kCNAME = 5,
  kSOA = 6,
  kPTR = 12,
  kTXT = 16,
  kAAAA = 28,
  kSRV = 33,
  kOPT = 41,
  kANY = 255
};
enum Rcode : uint8_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNXDomain = 3,
  kNotImp = 4,
  kRefused = 5
};
constexpr uint16_t kClassIN = 1;

struct Question {
  std::string name;  // lower-case, no trailing dot ("web.default.svc.cluster.local"); "" = root
  uint16_t type = kA;
  uint16_t klass = kClassIN;
};

struct Record {
  std::string name;
  uint16_t type = kA;
  uint16_t klass = kClassIN;
  uint32_t ttl = 0;
  std::string rdata;  // wire form; names inside are written uncompressed
};

struct Message {
  uint16_t id = 0;
  bool response = false;
  uint8_t opcode = 0;
  bool authoritative = false;
  bool truncated = false;
  bool recursionDesired = false;
  bool recursionAvailable = false;
  uint8_t rcode = kNoError;
  std::vector<Question> questions;
  std::vector<Record> answers, authority, additional;
  // From an OPT record in the additional section: the requester's UDP payload size (0 = none).
  uint16_t ednsUdpSize = 0;
};

// Decodes a message. Errors name what is wrong ("truncated header", "name pointer loop", ...).
Expected<Message, std::string> parse(std::string_view wire);
// Encodes a message; names equal to the first question's are compressed to a pointer. If the
// result exceeds `maxSize`, answers are dropped and the TC bit is set.
std::string serialize(const Message& m, size_t maxSize = 65535);

// RDATA builders.
std::string rdataA(uint32_t ipv4HostOrder);
std::string rdataName(const std::string& name);  // PTR, CNAME, NS
std::string rdataSrv(uint16_t priority, uint16_t weight, uint16_t port, const std::string& target);
std::string rdataSoa(const std::string& mname, const std::string& rname, uint32_t serial,
                     uint32_t refresh, uint32_t retry, uint32_t expire, uint32_t minimum);

}  // namespace podium::dns
