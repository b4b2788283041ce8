#include "podium/dns/message.h"

#include <algorithm>
#include <cctype>

namespace podium::dns {

namespace {

constexpr size_t kMaxName = 255;
constexpr size_t kMaxRecordsPerSection = 16;

class Reader {
 public:
  explicit Reader(std::string_view wire) : w_(wire) {}
  size_t pos() const { return pos_; }
  bool u8(uint8_t* v) {
    if (pos_ + 1 > w_.size()) return false;
    *v = static_cast<uint8_t>(w_[pos_++]);
    return true;
  }
  bool u16(uint16_t* v) {
    if (pos_ + 2 > w_.size()) return false;
    *v = static_cast<uint16_t>((static_cast<uint8_t>(w_[pos_]) << 8) |
                               static_cast<uint8_t>(w_[pos_ + 1]));
    pos_ += 2;
    return true;
  }
  bool u32(uint32_t* v) {
    uint16_t hi, lo;
    if (!u16(&hi) || !u16(&lo)) return false;
    *v = (static_cast<uint32_t>(hi) << 16) | lo;
    return true;
  }
  bool bytes(size_t n, std::string* out) {
    if (pos_ + n > w_.size()) return false;
    out->assign(w_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  // A possibly compressed name; pointers must point before the place they appear.
  Expected<std::string, std::string> name() {
    std::string out;
    size_t p = pos_;
    bool jumped = false;
    size_t wireLen = 0;
    for (int hops = 0;; ++hops) {
      if (hops > 127) return Unexpected(std::string("name pointer loop"));
      if (p >= w_.size()) return Unexpected(std::string("truncated name"));
      uint8_t len = static_cast<uint8_t>(w_[p]);
      if ((len & 0xC0) == 0xC0) {
        if (p + 1 >= w_.size()) return Unexpected(std::string("truncated name pointer"));
        size_t target = (static_cast<size_t>(len & 0x3F) << 8) | static_cast<uint8_t>(w_[p + 1]);
        if (target >= p) return Unexpected(std::string("name pointer does not point backwards"));
        if (!jumped) pos_ = p + 2;
        jumped = true;
        p = target;
        continue;
      }
      if ((len & 0xC0) != 0) return Unexpected(std::string("unsupported label type"));
      if (len == 0) {
        if (!jumped) pos_ = p + 1;
        break;
      }
      if (p + 1 + len > w_.size()) return Unexpected(std::string("truncated label"));
      wireLen += len + 1;
      if (wireLen + 1 > kMaxName) return Unexpected(std::string("name longer than 255 bytes"));
      if (!out.empty()) out += '.';
      for (size_t i = 0; i < len; ++i) {
        char c = w_[p + 1 + i];
        // A dot inside a label cannot be told from a label boundary in the text form.
        if (c == '.') return Unexpected(std::string("label contains a dot"));
        out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      p += 1 + len;
    }
    return out;
  }

 private:
  std::string_view w_;
  size_t pos_ = 0;
};

void put16(std::string& out, uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xFF);
}
void put32(std::string& out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v >> 16));
  put16(out, static_cast<uint16_t>(v & 0xFFFF));
}

void putName(std::string& out, const std::string& name) {
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    size_t len = std::min<size_t>(dot - start, 63);
    out += static_cast<char>(len);
    out.append(name, start, len);
    start = dot + 1;
  }
  out += '\0';
}

}  // namespace

Expected<Message, std::string> parse(std::string_view wire) {
  Reader r(wire);
  Message m;
  uint16_t flags, qd, an, ns, ar;
  if (!r.u16(&m.id) || !r.u16(&flags) || !r.u16(&qd) || !r.u16(&an) || !r.u16(&ns) || !r.u16(&ar))
    return Unexpected(std::string("truncated header"));
  m.response = flags & 0x8000;
  m.opcode = (flags >> 11) & 0xF;
  m.authoritative = flags & 0x0400;
  m.truncated = flags & 0x0200;
  m.recursionDesired = flags & 0x0100;
  m.recursionAvailable = flags & 0x0080;
  m.rcode = flags & 0xF;
  if (qd > kMaxRecordsPerSection) return Unexpected(std::string("too many questions"));
  for (uint16_t i = 0; i < qd; ++i) {
    auto name = r.name();
    if (!name) return Unexpected(name.error());
    Question q;
    q.name = std::move(*name);
    if (!r.u16(&q.type) || !r.u16(&q.klass)) return Unexpected(std::string("truncated question"));
    m.questions.push_back(std::move(q));
  }
  auto section = [&](uint16_t count, std::vector<Record>& out,
                     bool additional) -> Expected<void, std::string> {
    if (count > kMaxRecordsPerSection) return Unexpected(std::string("too many records"));
    for (uint16_t i = 0; i < count; ++i) {
      auto name = r.name();
      if (!name) return Unexpected(name.error());
      Record rec;
      rec.name = std::move(*name);
      uint16_t len;
      if (!r.u16(&rec.type) || !r.u16(&rec.klass) || !r.u32(&rec.ttl) || !r.u16(&len) ||
          !r.bytes(len, &rec.rdata))
        return Unexpected(std::string("truncated record"));
      if (additional && rec.type == kOPT) {
        m.ednsUdpSize = std::max<uint16_t>(512, rec.klass);
        continue;
      }
      out.push_back(std::move(rec));
    }
    return {};
  };
  if (auto s = section(an, m.answers, false); !s) return Unexpected(s.error());
  if (auto s = section(ns, m.authority, false); !s) return Unexpected(s.error());
  if (auto s = section(ar, m.additional, true); !s) return Unexpected(s.error());
  return m;
}

std::string serialize(const Message& m, size_t maxSize) {
  auto encode = [&](bool withAnswers) {
    std::string out;
    uint16_t flags = static_cast<uint16_t>(
        (m.response ? 0x8000 : 0) | ((m.opcode & 0xF) << 11) | (m.authoritative ? 0x0400 : 0) |
        (m.truncated || !withAnswers ? 0x0200 : 0) | (m.recursionDesired ? 0x0100 : 0) |
        (m.recursionAvailable ? 0x0080 : 0) | (m.rcode & 0xF));
    put16(out, m.id);
    put16(out, flags);
    put16(out, static_cast<uint16_t>(m.questions.size()));
    put16(out, withAnswers ? static_cast<uint16_t>(m.answers.size()) : 0);
    put16(out, withAnswers ? static_cast<uint16_t>(m.authority.size()) : 0);
    put16(out, withAnswers ? static_cast<uint16_t>(m.additional.size()) : 0);
    std::string qname = m.questions.empty() ? "" : m.questions[0].name;
    for (const auto& q : m.questions) {
      putName(out, q.name);
      put16(out, q.type);
      put16(out, q.klass);
    }
    if (!withAnswers) return out;
    for (const auto* section : {&m.answers, &m.authority, &m.additional})
      for (const auto& rec : *section) {
        if (!m.questions.empty() && rec.name == qname) {
          put16(out, 0xC00C);  // the first question's name, right after the header
        } else {
          putName(out, rec.name);
        }
        put16(out, rec.type);
        put16(out, rec.klass);
        put32(out, rec.ttl);
        put16(out, static_cast<uint16_t>(std::min<size_t>(rec.rdata.size(), 65535)));
        out.append(rec.rdata, 0, std::min<size_t>(rec.rdata.size(), 65535));
      }
    return out;
  };
  std::string full = encode(true);
  if (full.size() <= maxSize) return full;
  return encode(false);
}

std::string rdataA(uint32_t ip) {
  std::string out;
  put32(out, ip);
  return out;
}

std::string rdataName(const std::string& name) {
  std::string out;
  putName(out, name);
  return out;
}

std::string rdataSrv(uint16_t priority, uint16_t weight, uint16_t port, const std::string& target) {
  std::string out;
  put16(out, priority);
  put16(out, weight);
  put16(out, port);
  putName(out, target);
  return out;
}

std::string rdataSoa(const std::string& mname, const std::string& rname, uint32_t serial,
                     uint32_t refresh, uint32_t retry, uint32_t expire, uint32_t minimum) {
  std::string out;
  putName(out, mname);
  putName(out, rname);
  for (uint32_t v : {serial, refresh, retry, expire, minimum}) put32(out, v);
  return out;
}

}  // namespace podium::dns
