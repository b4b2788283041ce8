// libFuzzer target for the proxy's HTTP/1.1 parsing (requests come from any pod or from the
// ingress port). Invariants: nothing crashes; a request that parses serializes to a request
// that parses again with the same method, target and body framing; the chunked scanner never
// claims more bytes than it was given.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "proxy/http1.h"

using namespace podium::proxy::http1;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Head h;
  auto r = parseRequest(in, &h);
  // (An HTTP/1.0 request may lack Host; the proxy adds one before forwarding it as HTTP/1.1.)
  if (r.status == ParseStatus::Done && h.has("host")) {
    if (h.headSize > size) std::abort();
    Head again;
    std::string out = serializeRequest(h);
    auto r2 = parseRequest(out, &again);
    if (r2.status != ParseStatus::Done || again.method != h.method || again.target != h.target ||
        again.body != h.body || again.contentLength != h.contentLength)
      std::abort();
  }
  Head resp;
  (void)parseResponse(in, "GET", &resp);
  ChunkedScanner s;
  int64_t used = s.feed(in);
  if (used > static_cast<int64_t>(size)) std::abort();
  return 0;
}
