// libFuzzer target for the route matches the proxy runs on every request (VirtualService uri,
// header and query regexes, prefixes and exact matches): the pattern comes from a resource, the
// subject from any client. Input: pattern, a newline, subject. Invariants: nothing crashes or
// runs away on any pattern or subject; a pattern that quotes the subject matches it; a prefix
// of the subject matches it.
#include <re2/re2.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "podium/mesh/routes.h"

using podium::Json;
using podium::mesh::StringMatch;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  auto nl = in.find('\n');
  std::string pattern = in.substr(0, nl);
  std::string subject = nl == std::string::npos ? "" : in.substr(nl + 1);
  if (auto m = StringMatch::from(Json{{"regex", pattern}})) (void)m->matches(subject, false);
  auto quoted = StringMatch::from(Json{{"regex", re2::RE2::QuoteMeta(subject)}});
  if (quoted && quoted->re && subject.size() <= StringMatch::kMaxMatchInput &&
      !quoted->matches(subject))
    std::abort();
  auto prefix = StringMatch::from(Json{{"prefix", subject.substr(0, subject.size() / 2)}});
  if (!prefix || !prefix->matches(subject) || !prefix->matches(subject, true)) std::abort();
  return 0;
}
