// SPDY/3.1 framing as Kubernetes' streaming protocols use it (the runtime's streaming server and
// kubelets run moby/spdystream on the other end): control and data frames, header blocks
// compressed with zlib and the SPDY/3 dictionary. No flow control: spdystream neither sends nor
// honours WINDOW_UPDATE, so neither does this.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "podium/common/expected.h"

namespace podium::api::spdy {

using Headers = std::vector<std::pair<std::string, std::string>>;

enum class FrameType : uint16_t {
  kData = 0,
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

constexpr uint8_t kFlagFin = 0x01;
constexpr uint32_t kRefusedStream = 3;  // RST_STREAM status
constexpr size_t kMaxDataLength = (1u << 24) - 1;

struct Frame {
  FrameType type = FrameType::kData;
  uint8_t flags = 0;
  // The stream a DATA, SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS or WINDOW_UPDATE frame is
  // about; the last good stream of a GOAWAY.
  uint32_t streamId = 0;
  // RST_STREAM and GOAWAY status, PING id, WINDOW_UPDATE delta.
  uint32_t value = 0;
  Headers headers;   // SYN_STREAM, SYN_REPLY, HEADERS (names lower-case, as on the wire)
  std::string data;  // DATA payload
  bool fin() const { return (flags & kFlagFin) != 0; }
};

// One end of a SPDY session's framing. Header compression keeps one zlib context per direction
// for the whole session, so frames must be encoded, sent and fed in wire order.
class Codec {
 public:
  Codec();
  ~Codec();
  Codec(const Codec&) = delete;
  Codec& operator=(const Codec&) = delete;

  std::string synStream(uint32_t streamId, const Headers& headers, bool fin = false);
  std::string synReply(uint32_t streamId, const Headers& headers, bool fin = false);
  // A payload longer than kMaxDataLength is split over several frames; FIN goes on the last.
  std::string data(uint32_t streamId, std::string_view payload, bool fin = false);
  std::string ping(uint32_t id);
  std::string rstStream(uint32_t streamId, uint32_t status);
  std::string goAway(uint32_t lastGoodStreamId, uint32_t status = 0);

  // Appends received bytes and returns the frames they complete. An error (a malformed frame or
  // header block) means the session cannot go on.
  Expected<std::vector<Frame>, std::string> feed(std::string_view bytes);

 private:
  std::string compress(const Headers& headers);
  Expected<Headers, std::string> decompress(std::string_view block);
  Expected<Frame, std::string> parseControl(FrameType type, uint8_t flags, std::string_view body);

  z_stream deflate_{};
  z_stream inflate_{};
  std::string pending_;
};

// The SPDY/3 header compression dictionary (1423 bytes).
const std::string& headerDictionary();

}  // namespace podium::api::spdy
