#include "http1.h"

#include <cctype>
#include <cstring>

#include "podium/common/strings.h"

namespace podium::proxy::http1 {

namespace {

bool tchar(unsigned char c) {
  return std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

std::string lower(std::string_view s) { return strings::toLower(s); }

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Comma-separated list elements, trimmed and lower-cased.
std::vector<std::string> tokens(std::string_view v) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= v.size()) {
    size_t comma = v.find(',', start);
    if (comma == std::string_view::npos) comma = v.size();
    auto t = trimOws(v.substr(start, comma - start));
    if (!t.empty()) out.push_back(lower(t));
    start = comma + 1;
  }
  return out;
}

ParseResult fail(int code, std::string why) { return {ParseStatus::Error, code, std::move(why)}; }

// Splits the head into lines (without CRLF) and parses the header fields after the first
// line. `head` ends with the CRLF of the last field line.
ParseResult parseFields(std::string_view head, Head* out, const Limits& limits,
                        std::string_view* firstLine) {
  size_t eol = head.find("\r\n");
  *firstLine = head.substr(0, eol);
  out->headers.reserve(16);
  size_t pos = eol + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(pos, end - pos);
    pos = end + 2;
    if (line.empty()) continue;
    if (line.front() == ' ' || line.front() == '\t') return fail(400, "obsolete line folding");
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail(400, "malformed header field");
    std::string_view name = line.substr(0, colon);
    for (unsigned char c : name)
      if (!tchar(c)) return fail(400, "invalid character in header name");
    std::string_view value = trimOws(line.substr(colon + 1));
    for (unsigned char c : value)
      if ((c < 0x20 && c != '\t') || c == 0x7F)
        return fail(400, "invalid character in header value");
    if (out->headers.size() >= limits.maxHeaders) return fail(431, "too many header fields");
    out->headers.push_back({std::string(name), std::string(value)});
  }
  return {ParseStatus::Done, 0, ""};
}

// Finds the end of the head; skips leading empty lines (RFC 9112 2.2). Bare LF is refused.
ParseResult locateHead(std::string_view data, const Limits& limits, size_t* start, size_t* end) {
  size_t s = 0;
  while (s + 1 < data.size() && data[s] == '\r' && data[s + 1] == '\n') s += 2;
  size_t e = data.find("\r\n\r\n", s);
  if (e == std::string_view::npos) {
    if (data.size() - s > limits.maxHeadBytes) return fail(431, "request header fields too large");
    // A bare LF would never complete the head: refuse early instead of waiting.
    for (size_t i = s; i < data.size(); ++i)
      if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
        return fail(400, "bare LF in message head");
    return {ParseStatus::NeedMore, 0, ""};
  }
  if (e + 4 - s > limits.maxHeadBytes) return fail(431, "request header fields too large");
  for (size_t i = s; i < e; ++i)
    if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
      return fail(400, "bare LF in message head");
  *start = s;
  *end = e + 4;
  return {ParseStatus::Done, 0, ""};
}

bool parseVersion(std::string_view v, int* minor) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.' ||
      !std::isdigit(static_cast<unsigned char>(v[5])) ||
      !std::isdigit(static_cast<unsigned char>(v[7])))
    return false;
  if (v[5] != '1') return false;
  *minor = v[7] - '0';
  return *minor <= 1;
}

// Content-Length and Transfer-Encoding, and keep-alive, from the fields.
ParseResult framing(Head* h, bool request) {
  std::optional<uint64_t> length;
  bool te = false;
  std::vector<std::string> codings;
  std::vector<std::string> connection;
  for (const auto& f : h->headers) {
    std::string n = lower(f.name);
    if (n == "content-length") {
      for (const auto& part : tokens(f.value)) {
        if (part.empty() || part.size() > 15) return fail(400, "invalid Content-Length");
        uint64_t v = 0;
        for (char c : part) {
          if (!std::isdigit(static_cast<unsigned char>(c)))
            return fail(400, "invalid Content-Length");
          v = v * 10 + static_cast<uint64_t>(c - '0');
        }
        if (length && *length != v) return fail(400, "conflicting Content-Length values");
        length = v;
      }
      if (tokens(f.value).empty()) return fail(400, "invalid Content-Length");
    } else if (n == "transfer-encoding") {
      te = true;
      for (auto& t : tokens(f.value)) codings.push_back(t);
    } else if (n == "connection") {
      for (auto& t : tokens(f.value)) connection.push_back(t);
    }
  }
  auto hasToken = [&](const char* t) {
    for (const auto& c : connection)
      if (c == t) return true;
    return false;
  };
  h->keepAlive = h->minor == 1 ? !hasToken("close") : hasToken("keep-alive");
  h->upgrade = hasToken("upgrade") && h->has("upgrade");
  if (te) {
    if (length) return fail(400, "both Content-Length and Transfer-Encoding (request smuggling)");
    if (request && h->minor == 0) return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (codings.empty() || codings.back() != "chunked") {
      if (request) return fail(400, "Transfer-Encoding does not end in chunked");
      h->body = BodyKind::UntilClose;
      h->keepAlive = false;
      return {ParseStatus::Done, 0, ""};
    }
    for (size_t i = 0; i + 1 < codings.size(); ++i)
      if (codings[i] != "identity") return fail(501, "unsupported transfer coding " + codings[i]);
    if (codings.size() > 1 && request) return fail(501, "unsupported transfer coding");
    h->body = BodyKind::Chunked;
  } else if (length) {
    h->contentLength = *length;
    h->body = *length > 0 ? BodyKind::Length : BodyKind::None;
  } else {
    h->body = request ? BodyKind::None : BodyKind::UntilClose;
    if (!request) h->keepAlive = false;
  }
  return {ParseStatus::Done, 0, ""};
}

}  // namespace

std::string Head::header(std::string_view name) const {
  for (const auto& f : headers)
    if (strings::iequals(f.name, name)) return f.value;
  return "";
}

bool Head::has(std::string_view name) const {
  for (const auto& f : headers)
    if (strings::iequals(f.name, name)) return true;
  return false;
}

void Head::remove(std::string_view name) {
  std::erase_if(headers, [&](const Header& f) { return strings::iequals(f.name, name); });
}

void Head::set(const std::string& name, const std::string& value) {
  remove(name);
  headers.push_back({name, value});
}

void Head::add(const std::string& name, const std::string& value) {
  headers.push_back({name, value});
}

ParseResult parseRequest(std::string_view data, Head* out, const Limits& limits) {
  size_t start = 0, end = 0;
  auto located = locateHead(data, limits, &start, &end);
  if (located.status != ParseStatus::Done) return located;
  *out = Head{};
  out->headSize = end;
  std::string_view first;
  auto fields = parseFields(data.substr(start, end - start - 2), out, limits, &first);
  if (fields.status == ParseStatus::Error) return fields;
  size_t sp1 = first.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : first.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      first.find(' ', sp2 + 1) != std::string_view::npos)
    return fail(400, "malformed request line");
  std::string_view method = first.substr(0, sp1), target = first.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = first.substr(sp2 + 1);
  if (method.empty() || target.empty()) return fail(400, "malformed request line");
  for (unsigned char c : method)
    if (!tchar(c)) return fail(400, "invalid method");
  for (unsigned char c : target)
    if (c <= 0x20 || c == 0x7F) return fail(400, "invalid request target");
  if (!parseVersion(version, &out->minor)) {
    if (version.substr(0, 5) == "HTTP/") return fail(505, "HTTP version not supported");
    return fail(400, "malformed request line");
  }
  out->method = std::string(method);
  out->target = std::string(target);
  size_t hosts = 0;
  for (const auto& f : out->headers)
    if (lower(f.name) == "host") ++hosts;
  // RFC 9112 3.2: no Host in HTTP/1.1, or more than one in any request, is a 400.
  if (hosts > 1) return fail(400, "more than one Host header");
  if (out->minor == 1 && hosts == 0) return fail(400, "missing Host header");
  return framing(out, true);
}

ParseResult parseResponse(std::string_view data, const std::string& requestMethod, Head* out,
                          const Limits& limits) {
  size_t start = 0, end = 0;
  auto located = locateHead(data, limits, &start, &end);
  if (located.status != ParseStatus::Done) return located;
  *out = Head{};
  out->headSize = end;
  std::string_view first;
  auto fields = parseFields(data.substr(start, end - start - 2), out, limits, &first);
  if (fields.status == ParseStatus::Error) return fields;
  if (first.size() < 12 || !parseVersion(first.substr(0, 8), &out->minor) || first[8] != ' ')
    return fail(502, "malformed status line");
  for (int i = 9; i < 12; ++i)
    if (!std::isdigit(static_cast<unsigned char>(first[i])))
      return fail(502, "malformed status code");
  out->status = (first[9] - '0') * 100 + (first[10] - '0') * 10 + (first[11] - '0');
  out->reason = first.size() > 13 ? std::string(first.substr(13)) : "";
  auto f = framing(out, false);
  if (f.status == ParseStatus::Error) return f;
  if (requestMethod == "HEAD" || out->status / 100 == 1 || out->status == 204 ||
      out->status == 304) {
    out->body = BodyKind::None;
    bool close = false, keep = false;
    for (const auto& t : tokens(out->header("connection"))) {
      close = close || t == "close";
      keep = keep || t == "keep-alive";
    }
    out->keepAlive = out->minor == 1 ? !close : keep;
  }
  return f;
}

namespace {
void appendHeaders(std::string& out, const Head& h) {
  for (const auto& f : h.headers) {
    out += f.name;
    out += ": ";
    out += f.value;
    out += "\r\n";
  }
  out += "\r\n";
}
}  // namespace

std::string serializeRequest(const Head& h) {
  std::string out;
  out.reserve(256 + h.headers.size() * 32);
  out += h.method;
  out += ' ';
  out += h.target;
  out += " HTTP/1.1\r\n";
  appendHeaders(out, h);
  return out;
}

std::string serializeResponse(const Head& h) {
  std::string out;
  out.reserve(128 + h.headers.size() * 32);
  out += "HTTP/1.1 ";
  out += std::to_string(h.status);
  out += ' ';
  out += h.reason.empty() ? reasonPhrase(h.status) : h.reason;
  out += "\r\n";
  appendHeaders(out, h);
  return out;
}

int64_t ChunkedScanner::feed(std::string_view d) {
  size_t i = 0;
  while (i < d.size() && state_ != State::Done) {
    char c = d[i];
    switch (state_) {
      case State::Size: {
        int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                                                            : -1;
        if (v >= 0) {
          if (++sizeDigits_ > 15) return -1;
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
          ++i;
        } else if (sizeDigits_ == 0) {
          return -1;
        } else if (c == ';' || c == ' ' || c == '\t') {
          state_ = State::SizeExt;
          ++i;
        } else if (c == '\r') {
          state_ = State::SizeLf;
          ++i;
        } else {
          return -1;
        }
        break;
      }
      case State::SizeExt:
        if (c == '\r')
          state_ = State::SizeLf;
        else if (c == '\n' || ++trailerBytes_ > 4096)
          return -1;
        ++i;
        break;
      case State::SizeLf:
        if (c != '\n') return -1;
        ++i;
        trailerBytes_ = 0;
        state_ = remaining_ == 0 ? State::TrailerLineStart : State::Data;
        break;
      case State::Data: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, d.size() - i));
        i += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::DataCr;
        break;
      }
      case State::DataCr:
        if (c != '\r') return -1;
        ++i;
        state_ = State::DataLf;
        break;
      case State::DataLf:
        if (c != '\n') return -1;
        ++i;
        sizeDigits_ = 0;
        remaining_ = 0;
        state_ = State::Size;
        break;
      case State::TrailerLineStart:
        state_ = c == '\r' ? State::FinalLf : State::Trailer;
        ++i;
        break;
      case State::Trailer:
        if (++trailerBytes_ > 16384) return -1;
        if (c == '\r') state_ = State::TrailerFieldLf;
        ++i;
        break;
      case State::TrailerFieldLf:
        if (c != '\n') return -1;
        ++i;
        state_ = State::TrailerLineStart;
        break;
      case State::FinalLf:
        if (c != '\n') return -1;
        ++i;
        state_ = State::Done;
        break;
      case State::Done:
        break;
    }
  }
  return static_cast<int64_t>(i);
}

const char* reasonPhrase(int s) {
  switch (s) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 418:
      return "I'm a teapot";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace podium::proxy::http1
