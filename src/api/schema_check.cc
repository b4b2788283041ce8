#include "schema_check.h"

#include <cmath>
#include <regex>

#include "podium/common/strings.h"
#include "podium/common/time.h"

namespace podium::api {
namespace {

using schema::Kind;
using schema::Type;

const char* jsonTypeName(const Json& v) {
  if (v.is_string()) return "string";
  if (v.is_boolean()) return "bool";
  if (v.is_number()) return "number";
  if (v.is_array()) return "array";
  if (v.is_object()) return "object";
  return "null";
}

const char* goTypeName(const Type* t) {
  switch (t->kind) {
    case Kind::String:
      return "string";
    case Kind::Int32:
      return "int32";
    case Kind::Int64:
      return "int64";
    case Kind::Bool:
      return "bool";
    case Kind::Float64:
      return "float64";
    case Kind::Bytes:
      return "[]uint8";
    case Kind::List:
      return "[]";
    case Kind::Map:
      return "map[string]";
    default:
      return "struct";
  }
}

const char* openapiTypeName(const Type* t) {
  switch (t->kind) {
    case Kind::Int32:
    case Kind::Int64:
      return "integer";
    case Kind::Float64:
      return "number";
    case Kind::Bool:
      return "boolean";
    case Kind::List:
      return "array";
    case Kind::Map:
    case Kind::Object:
      return "object";
    default:
      return "string";
  }
}

class Checker {
 public:
  Checker(bool custom, SchemaIssues& issues) : custom_(custom), issues_(issues) {}

  void object(Json& v, const Type* t, const std::string& path, bool root) {
    for (auto it = v.begin(); it != v.end();) {
      const std::string& key = it.key();
      std::string child = path.empty() ? key : path + "." + key;
      if (root && (key == "apiVersion" || key == "kind")) {
        if (!it->is_string()) typeError(*it, "string", child, t);
        ++it;
        continue;
      }
      const schema::Field* f = t->field(key);
      if (!f) {
        if (t->preserveUnknown) {
          ++it;
          continue;
        }
        issues_.unknownFields.push_back(child);
        it = v.erase(it);
        continue;
      }
      if (it->is_null() && !f->type->nullable) {
        it = v.erase(it);
        continue;
      }
      value(*it, f->type, child);
      ++it;
    }
    if (custom_) {
      for (const auto& r : t->required)
        if (!v.contains(r))
          issues_.invalid.push_back(FieldError::required(path.empty() ? r : path + "." + r));
    }
  }

  void value(Json& v, const Type* t, const std::string& path) {
    if (v.is_null()) return;
    switch (t->kind) {
      case Kind::Raw:
      case Kind::FieldsV1:
        return;
      case Kind::Object:
        if (!v.is_object()) return typeError(v, "object", path, t);
        object(v, t, path, false);
        break;
      case Kind::List: {
        if (!v.is_array()) return typeError(v, "array", path, t);
        for (size_t i = 0; i < v.size(); ++i) {
          if (v[i].is_null() && t->elem->kind == Kind::Object) continue;
          value(v[i], t->elem, path + "[" + std::to_string(i) + "]");
        }
        break;
      }
      case Kind::Map:
        if (!v.is_object()) return typeError(v, "object", path, t);
        for (auto& item : v.items()) {
          if (item.value().is_null()) continue;
          value(item.value(), t->elem, path + "[" + item.key() + "]");
        }
        break;
      case Kind::String:
        if (!v.is_string()) return typeError(v, "string", path, t);
        break;
      case Kind::Bool:
        if (!v.is_boolean()) return typeError(v, "boolean", path, t);
        break;
      case Kind::Int32:
      case Kind::Int64:
        integer(v, t, path);
        break;
      case Kind::Float64:
        if (!v.is_number()) return typeError(v, "number", path, t);
        break;
      case Kind::Bytes:
        if (!v.is_string()) return typeError(v, "string", path, t);
        if (!strings::base64Decode(v.get<std::string>()))
          decodeError(path, "illegal base64 data in field " + path);
        break;
      case Kind::Quantity: {
        auto q = canonicalQuantity(v);
        if (!q) {
          invalidValue(path, v,
                       "quantities must match the regular expression "
                       "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
        } else {
          v = *q;
        }
        break;
      }
      case Kind::IntOrString:
        if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>())
          v = static_cast<int64_t>(v.get<double>());
        if (!v.is_string() && !v.is_number_integer()) return typeError(v, "int-or-string", path, t);
        break;
      case Kind::Time:
      case Kind::MicroTime:
        if (!v.is_string()) return typeError(v, "string", path, t);
        if (!timefmt::parseRfc3339(v.get<std::string>()))
          decodeError(path, "parsing time \"" + v.get<std::string>() +
                                "\" as RFC3339 failed in field " + path);
        break;
      case Kind::Duration:
        if (!v.is_string()) return typeError(v, "string", path, t);
        break;
    }
    if (custom_ && !t->enumValues.empty()) {
      bool ok = false;
      for (const auto& e : t->enumValues) ok = ok || e == v;
      if (!ok) {
        std::vector<std::string> supported;
        for (const auto& e : t->enumValues)
          supported.push_back(e.is_string() ? e.get<std::string>() : e.dump());
        issues_.invalid.push_back(FieldError::notSupported(path, v, supported));
      }
    }
  }

 private:
  void integer(Json& v, const Type* t, const std::string& path) {
    if (v.is_number_float()) {
      double d = v.get<double>();
      if (std::floor(d) != d || std::isinf(d)) return typeError(v, "integer", path, t);
      v = static_cast<int64_t>(d);
    }
    if (!v.is_number_integer()) return typeError(v, "integer", path, t);
    if (t->kind == Kind::Int32) {
      int64_t n =
          v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>()) : v.get<int64_t>();
      if (n < INT32_MIN || n > INT32_MAX ||
          (v.is_number_unsigned() && v.get<uint64_t>() > INT32_MAX))
        decodeError(path, "cannot unmarshal number " + v.dump() + " into Go struct field " + path +
                              " of type int32");
    }
  }

  void typeError(const Json& v, const char* expected, const std::string& path, const Type* t) {
    if (custom_) {
      issues_.invalid.push_back(FieldError::typeInvalid(path, v,
                                                        path + " in body must be of type " +
                                                            openapiTypeName(t) + ": \"" +
                                                            jsonTypeName(v) + "\""));
    } else {
      std::string jt = v.is_number() ? "number" : v.is_boolean() ? "bool" : jsonTypeName(v);
      decodeError(path, "cannot unmarshal " + jt + " into Go struct field " + path + " of type " +
                            goTypeName(t));
    }
    (void)expected;
  }

  void decodeError(const std::string& path, const std::string& message) {
    if (custom_)
      issues_.invalid.push_back(FieldError::invalid(path, nullptr, message));
    else
      issues_.decodeErrors.push_back(message);
  }

  void invalidValue(const std::string& path, const Json& v, const std::string& detail) {
    if (custom_)
      issues_.invalid.push_back(FieldError::invalid(path, v, detail));
    else
      issues_.decodeErrors.push_back(path + ": " + detail);
  }

  bool custom_;
  SchemaIssues& issues_;
};

}  // namespace

std::optional<std::string> canonicalQuantity(const Json& v) {
  if (v.is_number_integer()) return v.dump();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isnan(d) || std::isinf(d)) return std::nullopt;
    if (std::floor(d) == d && std::fabs(d) < 1e15) return std::to_string(static_cast<int64_t>(d));
    // Milli-units cover the fractions manifests use ("0.5" -> "500m").
    double milli = d * 1000;
    if (std::floor(milli) == milli && std::fabs(milli) < 1e15)
      return std::to_string(static_cast<int64_t>(milli)) + "m";
    std::string s = v.dump();
    return s;
  }
  if (!v.is_string()) return std::nullopt;
  static const std::regex re("^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$");
  const std::string& s = v.get_ref<const std::string&>();
  std::smatch m;
  if (s.empty() || !std::regex_match(s, m, re)) return std::nullopt;
  // The number part: at most one '.', at least one digit.
  std::string num = m[1].str();
  if (std::count(num.begin(), num.end(), '.') > 1 ||
      num.find_first_of("0123456789") == std::string::npos)
    return std::nullopt;
  std::string suffix = m[2].str();
  static const std::regex suffixRe("^(|[numkMGTPE]|Ki|Mi|Gi|Ti|Pi|Ei|[eE][-+]?[0-9]+)$");
  if (!std::regex_match(suffix, suffixRe)) return std::nullopt;
  // "0.5" is canonically "500m".
  if (suffix.empty() && num.find('.') != std::string::npos) {
    double d = std::strtod(num.c_str(), nullptr);
    double milli = d * 1000;
    if (std::floor(milli) == milli) {
      if (std::floor(d) == d) return std::to_string(static_cast<int64_t>(d));
      return std::to_string(static_cast<int64_t>(milli)) + "m";
    }
  }
  return s;
}

void checkSchema(Json& obj, const schema::Type* root, bool custom, SchemaIssues& issues) {
  if (!root || !obj.is_object()) return;
  Checker c(custom, issues);
  c.object(obj, root, "", true);
}

}  // namespace podium::api
