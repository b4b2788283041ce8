#pragma once

// HTTP/1.1 message heads and body framing (RFC 9112) for the proxy, strict where requests come
// from untrusted clients: a head larger than the limit is 431, anything malformed 400, a
// request with both Content-Length and Transfer-Encoding (request smuggling) or with differing
// Content-Lengths is refused, and Transfer-Encoding other than chunked is 501.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace podium::proxy::http1 {

struct Header {
  std::string name;  // as received
  std::string value;
};

enum class BodyKind { None, Length, Chunked, UntilClose };

struct Head {
  // Requests: method, target; responses: status, reason.
  std::string method, target;
  int status = 0;
  std::string reason;
  int minor = 1;  // HTTP/1.<minor>
  std::vector<Header> headers;
  BodyKind body = BodyKind::None;
  uint64_t contentLength = 0;
  bool keepAlive = true;
  bool upgrade = false;  // Connection: upgrade with an Upgrade header (WebSocket, h2c)
  size_t headSize = 0;   // bytes of the head, CRLFCRLF included

  std::string header(std::string_view lowerName) const;  // first value, "" if none
  bool has(std::string_view lowerName) const;
  void set(const std::string& name, const std::string& value);  // replaces every instance
  void add(const std::string& name, const std::string& value);
  void remove(std::string_view lowerName);
};

enum class ParseStatus { Done, NeedMore, Error };

struct ParseResult {
  ParseStatus status = ParseStatus::NeedMore;
  int errorCode = 0;  // 400, 431, 501, 505 for requests
  std::string error;
};

struct Limits {
  size_t maxHeadBytes = 60 * 1024;
  size_t maxHeaders = 100;
};

// Parses a request head from the start of `data`.
ParseResult parseRequest(std::string_view data, Head* out, const Limits& limits = {});
// Parses a response head; `requestMethod` decides whether a body follows (HEAD, 1xx/204/304).
ParseResult parseResponse(std::string_view data, const std::string& requestMethod, Head* out,
                          const Limits& limits = {});

// Serializes a head (request line or status line, headers, CRLF).
std::string serializeRequest(const Head& h);
std::string serializeResponse(const Head& h);

// Incremental chunked-body scanner: says how many bytes of `data` belong to the body (chunks,
// sizes, extensions, trailers included) and whether the body ended. Errors on malformed sizes.
class ChunkedScanner {
 public:
  // Returns bytes consumed from data (all of it unless the body ended inside it), or -1 on error.
  int64_t feed(std::string_view data);
  bool done() const { return state_ == State::Done; }

 private:
  enum class State {
    Size,
    SizeExt,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerLineStart,
    Trailer,
    TrailerFieldLf,
    FinalLf,
    Done
  };
  State state_ = State::Size;
  uint64_t remaining_ = 0;
  int sizeDigits_ = 0;
  size_t trailerBytes_ = 0;
};

const char* reasonPhrase(int status);

}  // namespace podium::proxy::http1
