#include "spdy.h"

#include <algorithm>
#include <cctype>

namespace podium::api::spdy {

namespace {

constexpr uint16_t kVersion = 3;
constexpr size_t kFrameHeader = 8;
constexpr size_t kMaxHeaderBlock = 1 << 20;  // decompressed
constexpr uint32_t kMaxHeaderPairs = 1024;

void put32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

uint32_t get32(std::string_view in, size_t at) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(in[at + i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

// A control frame's 8-byte header: control bit and version, type, flags, 24-bit length.
std::string controlHeader(FrameType type, uint8_t flags, size_t length) {
  std::string out;
  put32(out, 0x80000000u | uint32_t{kVersion} << 16 | static_cast<uint32_t>(type));
  put32(out, uint32_t{flags} << 24 | static_cast<uint32_t>(length));
  return out;
}

std::string buildDictionary() {
  // The SPDY/3 draft's dictionary: common header names and values, each prefixed with its
  // 32-bit length, then a run of status lines, dates and content types.
  static const char* const kWords[] = {"options",
                                       "head",
                                       "post",
                                       "put",
                                       "delete",
                                       "trace",
                                       "accept",
                                       "accept-charset",
                                       "accept-encoding",
                                       "accept-language",
                                       "accept-ranges",
                                       "age",
                                       "allow",
                                       "authorization",
                                       "cache-control",
                                       "connection",
                                       "content-base",
                                       "content-encoding",
                                       "content-language",
                                       "content-length",
                                       "content-location",
                                       "content-md5",
                                       "content-range",
                                       "content-type",
                                       "date",
                                       "etag",
                                       "expect",
                                       "expires",
                                       "from",
                                       "host",
                                       "if-match",
                                       "if-modified-since",
                                       "if-none-match",
                                       "if-range",
                                       "if-unmodified-since",
                                       "last-modified",
                                       "location",
                                       "max-forwards",
                                       "pragma",
                                       "proxy-authenticate",
                                       "proxy-authorization",
                                       "range",
                                       "referer",
                                       "retry-after",
                                       "server",
                                       "te",
                                       "trailer",
                                       "transfer-encoding",
                                       "upgrade",
                                       "user-agent",
                                       "vary",
                                       "via",
                                       "warning",
                                       "www-authenticate",
                                       "method",
                                       "get",
                                       "status",
                                       "200 OK",
                                       "version",
                                       "HTTP/1.1",
                                       "url",
                                       "public",
                                       "set-cookie",
                                       "keep-alive",
                                       "origin"};
  std::string d;
  for (const char* w : kWords) {
    std::string_view word(w);
    put32(d, static_cast<uint32_t>(word.size()));
    d += word;
  }
  d += "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
       "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
       "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
       "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
       "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
       "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
       "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
  return d;
}

const Bytef* bytes(const std::string& s) { return reinterpret_cast<const Bytef*>(s.data()); }

}  // namespace

const std::string& headerDictionary() {
  static const std::string kDictionary = buildDictionary();
  return kDictionary;
}

Codec::Codec() {
  deflateInit(&deflate_, Z_BEST_COMPRESSION);
  const auto& dict = headerDictionary();
  deflateSetDictionary(&deflate_, bytes(dict), static_cast<uInt>(dict.size()));
  inflateInit(&inflate_);
}

Codec::~Codec() {
  deflateEnd(&deflate_);
  inflateEnd(&inflate_);
}

std::string Codec::compress(const Headers& headers) {
  std::string plain;
  put32(plain, static_cast<uint32_t>(headers.size()));
  for (const auto& [name, value] : headers) {
    put32(plain, static_cast<uint32_t>(name.size()));
    for (char c : name)
      plain.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    put32(plain, static_cast<uint32_t>(value.size()));
    plain += value;
  }
  std::string out;
  deflate_.next_in = const_cast<Bytef*>(bytes(plain));
  deflate_.avail_in = static_cast<uInt>(plain.size());
  char buf[4096];
  do {
    deflate_.next_out = reinterpret_cast<Bytef*>(buf);
    deflate_.avail_out = sizeof buf;
    deflate(&deflate_, Z_SYNC_FLUSH);
    out.append(buf, sizeof buf - deflate_.avail_out);
  } while (deflate_.avail_out == 0);
  return out;
}

Expected<Headers, std::string> Codec::decompress(std::string_view block) {
  std::string plain;
  inflate_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  inflate_.avail_in = static_cast<uInt>(block.size());
  char buf[4096];
  do {
    inflate_.next_out = reinterpret_cast<Bytef*>(buf);
    inflate_.avail_out = sizeof buf;
    int rc = inflate(&inflate_, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      const auto& dict = headerDictionary();
      if (inflateSetDictionary(&inflate_, bytes(dict), static_cast<uInt>(dict.size())) != Z_OK)
        return Unexpected(std::string("header block compressed with another dictionary"));
      continue;
    }
    if (rc == Z_BUF_ERROR) break;  // no progress possible: the block is used up
    if (rc != Z_OK) return Unexpected(std::string("corrupt header block"));
    plain.append(buf, sizeof buf - inflate_.avail_out);
    if (plain.size() > kMaxHeaderBlock) return Unexpected(std::string("header block too large"));
  } while (inflate_.avail_in > 0 || inflate_.avail_out == 0);
  Headers headers;
  std::string_view in(plain);
  auto str = [&](size_t& at, std::string* out) {
    if (in.size() - at < 4) return false;
    uint32_t n = get32(in, at);
    at += 4;
    if (in.size() - at < n) return false;
    out->assign(in.substr(at, n));
    at += n;
    return true;
  };
  if (in.size() < 4) return Unexpected(std::string("truncated header block"));
  uint32_t count = get32(in, 0);
  if (count > kMaxHeaderPairs) return Unexpected(std::string("too many headers"));
  size_t at = 4;
  for (uint32_t i = 0; i < count; ++i) {
    std::string name, value;
    if (!str(at, &name) || !str(at, &value))
      return Unexpected(std::string("truncated header block"));
    headers.emplace_back(std::move(name), std::move(value));
  }
  return headers;
}

std::string Codec::synStream(uint32_t streamId, const Headers& headers, bool fin) {
  std::string block = compress(headers);
  std::string out = controlHeader(FrameType::kSynStream, fin ? kFlagFin : 0, 10 + block.size());
  put32(out, streamId & 0x7fffffffu);
  put32(out, 0);        // associated-to stream
  out.append(2, '\0');  // priority 0, slot 0
  return out + block;
}

std::string Codec::synReply(uint32_t streamId, const Headers& headers, bool fin) {
  std::string block = compress(headers);
  std::string out = controlHeader(FrameType::kSynReply, fin ? kFlagFin : 0, 4 + block.size());
  put32(out, streamId & 0x7fffffffu);
  return out + block;
}

std::string Codec::data(uint32_t streamId, std::string_view payload, bool fin) {
  std::string out;
  do {
    size_t n = std::min(payload.size(), kMaxDataLength);
    bool last = n == payload.size();
    put32(out, streamId & 0x7fffffffu);
    put32(out, uint32_t{last && fin ? kFlagFin : uint8_t{0}} << 24 | static_cast<uint32_t>(n));
    out += payload.substr(0, n);
    payload.remove_prefix(n);
  } while (!payload.empty());
  return out;
}

std::string Codec::ping(uint32_t id) {
  std::string out = controlHeader(FrameType::kPing, 0, 4);
  put32(out, id);
  return out;
}

std::string Codec::rstStream(uint32_t streamId, uint32_t status) {
  std::string out = controlHeader(FrameType::kRstStream, 0, 8);
  put32(out, streamId & 0x7fffffffu);
  put32(out, status);
  return out;
}

std::string Codec::goAway(uint32_t lastGoodStreamId, uint32_t status) {
  std::string out = controlHeader(FrameType::kGoAway, 0, 8);
  put32(out, lastGoodStreamId & 0x7fffffffu);
  put32(out, status);
  return out;
}

Expected<Frame, std::string> Codec::parseControl(FrameType type, uint8_t flags,
                                                 std::string_view body) {
  Frame f;
  f.type = type;
  f.flags = flags;
  auto need = [&](size_t n) { return body.size() >= n; };
  switch (type) {
    case FrameType::kSynStream:
    case FrameType::kSynReply:
    case FrameType::kHeaders: {
      size_t skip = type == FrameType::kSynStream ? 10 : 4;
      if (!need(skip)) return Unexpected(std::string("truncated control frame"));
      f.streamId = get32(body, 0) & 0x7fffffffu;
      auto headers = decompress(body.substr(skip));
      if (!headers) return Unexpected(headers.error());
      f.headers = std::move(*headers);
      break;
    }
    case FrameType::kRstStream:
    case FrameType::kGoAway:
    case FrameType::kWindowUpdate:
      if (!need(8)) return Unexpected(std::string("truncated control frame"));
      f.streamId = get32(body, 0) & 0x7fffffffu;
      f.value = get32(body, 4);
      break;
    case FrameType::kPing:
      if (!need(4)) return Unexpected(std::string("truncated control frame"));
      f.value = get32(body, 0);
      break;
    default:
      break;  // SETTINGS and unknown types carry nothing this end uses
  }
  return f;
}

Expected<std::vector<Frame>, std::string> Codec::feed(std::string_view bytes) {
  pending_.append(bytes);
  std::vector<Frame> frames;
  size_t at = 0;
  while (pending_.size() - at >= kFrameHeader) {
    std::string_view in(pending_);
    uint32_t first = get32(in, at);
    uint32_t second = get32(in, at + 4);
    size_t length = second & 0xffffffu;
    auto flags = static_cast<uint8_t>(second >> 24);
    if (in.size() - at - kFrameHeader < length) break;
    std::string_view body = in.substr(at + kFrameHeader, length);
    if (first & 0x80000000u) {
      if (((first >> 16) & 0x7fffu) != kVersion)
        return Unexpected("unsupported SPDY version " + std::to_string((first >> 16) & 0x7fffu));
      auto f = parseControl(static_cast<FrameType>(first & 0xffffu), flags, body);
      if (!f) return Unexpected(f.error());
      frames.push_back(std::move(*f));
    } else {
      Frame f;
      f.streamId = first;
      f.flags = flags;
      f.data.assign(body);
      frames.push_back(std::move(f));
    }
    at += kFrameHeader + length;
  }
  pending_.erase(0, at);
  return frames;
}

}  // namespace podium::api::spdy
