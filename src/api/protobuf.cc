#include "protobuf.h"

#include <cstring>

#include "podium/common/strings.h"
#include "podium/common/time.h"

namespace podium::api {
namespace {

using schema::Field;
using schema::Kind;
using schema::Type;

constexpr int kMaxDepth = 100;

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool done() const { return pos_ >= data_.size(); }

  bool varint(uint64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos_ >= data_.size()) return false;
      uint8_t b = static_cast<uint8_t>(data_[pos_++]);
      if (shift == 63 && b > 1) return false;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) {
        *out = v;
        return true;
      }
    }
    return false;
  }
  bool bytes(std::string_view* out) {
    uint64_t n;
    if (!varint(&n) || n > data_.size() - pos_) return false;
    *out = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool fixed64(uint64_t* out) {
    if (data_.size() - pos_ < 8) return false;
    std::memcpy(out, data_.data() + pos_, 8);
    pos_ += 8;
    return true;
  }
  bool fixed32(uint32_t* out) {
    if (data_.size() - pos_ < 4) return false;
    std::memcpy(out, data_.data() + pos_, 4);
    pos_ += 4;
    return true;
  }
  bool skip(int wireType) {
    uint64_t u;
    uint32_t u32;
    std::string_view sv;
    switch (wireType) {
      case 0:
        return varint(&u);
      case 1:
        return fixed64(&u);
      case 2:
        return bytes(&sv);
      case 5:
        return fixed32(&u32);
      default:
        return false;
    }
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

const std::string kEof = "proto: unexpected EOF";

// Reads the fields of a small fixed-shape message (Quantity, Time, IntOrString, ...).
struct Raw {
  std::map<int, uint64_t> ints;
  std::map<int, std::string_view> strs;
};
Expected<Raw, std::string> readRaw(std::string_view bytes) {
  Raw r;
  Reader rd(bytes);
  while (!rd.done()) {
    uint64_t tag;
    if (!rd.varint(&tag)) return Unexpected(kEof);
    int num = static_cast<int>(tag >> 3), wt = static_cast<int>(tag & 7);
    if (wt == 0) {
      uint64_t v;
      if (!rd.varint(&v)) return Unexpected(kEof);
      r.ints[num] = v;
    } else if (wt == 2) {
      std::string_view sv;
      if (!rd.bytes(&sv)) return Unexpected(kEof);
      r.strs[num] = sv;
    } else if (!rd.skip(wt)) {
      return Unexpected(kEof);
    }
  }
  return r;
}

const Field* fieldByNumber(const Type* t, int num) {
  for (const auto& f : t->fields)
    if (f.proto == num) return &f;
  return nullptr;
}

bool isZero(const Json& v) {
  if (v.is_null()) return true;
  if (v.is_string()) return v.get_ref<const std::string&>().empty();
  if (v.is_number_integer()) return v.get<int64_t>() == 0;
  if (v.is_number_float()) return v.get<double>() == 0;
  if (v.is_boolean()) return !v.get<bool>();
  return false;
}

Expected<Json, std::string> decodeMessage(std::string_view bytes, const Type* type, int depth);

// One scalar or message payload of `type` from a field occurrence with wire type `wt`.
Expected<Json, std::string> decodeValue(Reader& rd, int wt, const Type* type, int depth) {
  uint64_t u = 0;
  std::string_view sv;
  switch (type->kind) {
    case Kind::Int32:
    case Kind::Int64:
      if (wt != 0 || !rd.varint(&u)) return Unexpected(kEof);
      if (type->kind == Kind::Int32) return Json(static_cast<int64_t>(static_cast<int32_t>(u)));
      return Json(static_cast<int64_t>(u));
    case Kind::Bool:
      if (wt != 0 || !rd.varint(&u)) return Unexpected(kEof);
      return Json(u != 0);
    case Kind::Float64:
      if (wt != 1 || !rd.fixed64(&u)) return Unexpected(kEof);
      {
        double d;
        std::memcpy(&d, &u, 8);
        return Json(d);
      }
    default:
      break;
  }
  if (wt != 2 || !rd.bytes(&sv)) return Unexpected(kEof);
  switch (type->kind) {
    case Kind::String:
    case Kind::Duration:
      if (type->kind == Kind::Duration) {
        auto r = readRaw(sv);
        if (!r) return Unexpected(r.error());
        return Json(
            timefmt::goDuration(std::chrono::nanoseconds(static_cast<int64_t>(r->ints[1]))));
      }
      return Json(std::string(sv));
    case Kind::Bytes:
      return Json(strings::base64Encode(sv));
    case Kind::Quantity: {
      auto r = readRaw(sv);
      if (!r) return Unexpected(r.error());
      return Json(std::string(r->strs[1]));
    }
    case Kind::IntOrString: {
      auto r = readRaw(sv);
      if (!r) return Unexpected(r.error());
      if (r->ints[1] == 1) return Json(std::string(r->strs[3]));
      return Json(static_cast<int64_t>(static_cast<int32_t>(r->ints[2])));
    }
    case Kind::Time:
    case Kind::MicroTime: {
      auto r = readRaw(sv);
      if (!r) return Unexpected(r.error());
      if (r->ints.empty()) return Json();  // the zero time
      auto tp = std::chrono::system_clock::from_time_t(
          static_cast<time_t>(static_cast<int64_t>(r->ints[1])));
      tp += std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(static_cast<int64_t>(r->ints[2])));
      return Json(type->kind == Kind::Time ? timefmt::rfc3339(tp) : timefmt::rfc3339Micro(tp));
    }
    case Kind::Raw:
    case Kind::FieldsV1: {
      auto r = readRaw(sv);
      if (!r) return Unexpected(r.error());
      std::string_view raw = r->strs[1];
      if (raw.empty()) return Json();
      auto parsed = json::parse(raw);
      if (!parsed) return Unexpected("embedded JSON: " + parsed.error());
      return std::move(parsed->value);
    }
    case Kind::Object:
      return decodeMessage(sv, type, depth + 1);
    default:
      return Unexpected("unsupported protobuf field type " + type->name);
  }
}

void setField(Json& obj, const Field& f, Json v) {
  if (v.is_null()) return;
  if (!f.pointer && !f.always && isZero(v)) return;
  obj[f.json] = std::move(v);
}

Expected<Json, std::string> decodeInto(Json& obj, std::string_view bytes, const Type* type,
                                       int depth) {
  if (depth > kMaxDepth) return Unexpected(std::string("proto: message nested too deeply"));
  Reader rd(bytes);
  while (!rd.done()) {
    uint64_t tag;
    if (!rd.varint(&tag)) return Unexpected(kEof);
    int num = static_cast<int>(tag >> 3), wt = static_cast<int>(tag & 7);
    const Field* f = num > 0 ? fieldByNumber(type, num) : nullptr;
    if (!f) {
      if (!rd.skip(wt)) return Unexpected(kEof);
      continue;
    }
    if (f->inlined) {
      std::string_view sv;
      if (wt != 2 || !rd.bytes(&sv)) return Unexpected(kEof);
      auto r = decodeInto(obj, sv, f->type, depth + 1);
      if (!r) return r;
      continue;
    }
    const Type* ft = f->type;
    if (ft->kind == Kind::List) {
      Json& arr = obj[f->json];
      if (!arr.is_array()) arr = Json::array();
      const Type* et = ft->elem;
      bool numeric = et->kind == Kind::Int32 || et->kind == Kind::Int64 || et->kind == Kind::Bool ||
                     et->kind == Kind::Float64;
      if (numeric && wt == 2) {  // packed
        std::string_view sv;
        if (!rd.bytes(&sv)) return Unexpected(kEof);
        Reader packed(sv);
        while (!packed.done()) {
          auto v = decodeValue(packed, et->kind == Kind::Float64 ? 1 : 0, et, depth);
          if (!v) return v;
          arr.push_back(std::move(*v));
        }
        continue;
      }
      auto v = decodeValue(rd, wt, et, depth);
      if (!v) return v;
      arr.push_back(v->is_null() ? Json::object() : std::move(*v));
      continue;
    }
    if (ft->kind == Kind::Map) {
      std::string_view sv;
      if (wt != 2 || !rd.bytes(&sv)) return Unexpected(kEof);
      Reader entry(sv);
      std::string key;
      Json value;
      while (!entry.done()) {
        uint64_t etag;
        if (!entry.varint(&etag)) return Unexpected(kEof);
        int en = static_cast<int>(etag >> 3), ewt = static_cast<int>(etag & 7);
        if (en == 1) {
          std::string_view k;
          if (ewt != 2 || !entry.bytes(&k)) return Unexpected(kEof);
          key = std::string(k);
        } else if (en == 2) {
          auto v = decodeValue(entry, ewt, ft->elem, depth);
          if (!v) return v;
          value = std::move(*v);
        } else if (!entry.skip(ewt)) {
          return Unexpected(kEof);
        }
      }
      if (value.is_null()) {
        if (ft->elem->kind == Kind::String)
          value = "";
        else if (ft->elem->kind == Kind::Bytes)
          value = "";
        else if (ft->elem->kind == Kind::Object)
          value = Json::object();
      }
      obj[f->json][key] = std::move(value);
      continue;
    }
    auto v = decodeValue(rd, wt, ft, depth);
    if (!v) return v;
    setField(obj, *f, std::move(*v));
  }
  return Json();
}

Expected<Json, std::string> decodeMessage(std::string_view bytes, const Type* type, int depth) {
  Json obj = Json::object();
  auto r = decodeInto(obj, bytes, type, depth);
  if (!r) return r;
  return obj;
}

}  // namespace

Expected<Json, std::string> decodeProtobufMessage(std::string_view bytes,
                                                  const schema::Type* type) {
  return decodeMessage(bytes, type, 0);
}

Expected<Json, std::string> decodeProtobufObject(std::string_view body,
                                                 const ProtoTypeLookup& lookup) {
  static const char kMagic[4] = {'k', '8', 's', '\0'};
  if (body.size() < 4 || std::memcmp(body.data(), kMagic, 4) != 0)
    return Unexpected(std::string(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"));
  auto env = readRaw(body.substr(4));
  if (!env) return Unexpected(env.error());
  auto typeMeta = readRaw(env->strs[1]);
  if (!typeMeta) return Unexpected(typeMeta.error());
  std::string apiVersion(typeMeta->strs[1]), kind(typeMeta->strs[2]);
  if (kind.empty() || apiVersion.empty())
    return Unexpected(std::string("Object 'Kind' is missing in protobuf message"));
  const schema::Type* type = lookup(apiVersion, kind);
  if (!type)
    return Unexpected("no kind \"" + kind + "\" is registered for version \"" + apiVersion +
                      "\" in protobuf");
  if (!env->strs[3].empty())
    return Unexpected("unsupported protobuf content encoding " + std::string(env->strs[3]));
  auto obj = decodeMessage(env->strs[2], type, 0);
  if (!obj) return obj;
  (*obj)["apiVersion"] = apiVersion;
  (*obj)["kind"] = kind;
  return obj;
}

}  // namespace podium::api
