#include "podium/common/json.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <regex>
#include <set>

namespace podium::json {
namespace {

constexpr int kMaxDepth = 512;

std::string cleanNlohmannMessage(const std::string& what) {
  // "[json.exception.parse_error.101] parse error at line 1, ..." -> "parse error at line 1, ..."
  auto pos = what.find("] ");
  return pos == std::string::npos ? what : what.substr(pos + 2);
}

// --- YAML -> JSON -----------------------------------------------------------------------------

bool isPlainNull(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

Json plainScalar(const std::string& s) {
  if (isPlainNull(s)) return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  static const std::regex intRe("[-+]?[0-9]+");
  static const std::regex octRe("0o[0-7]+");
  static const std::regex hexRe("0x[0-9a-fA-F]+");
  static const std::regex floatRe("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (std::regex_match(s, intRe)) {
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (errno == 0 && end && *end == 0) return v;
    return std::strtod(s.c_str(), nullptr);
  }
  if (std::regex_match(s, octRe))
    return static_cast<long long>(std::strtoll(s.c_str() + 2, nullptr, 8));
  if (std::regex_match(s, hexRe))
    return static_cast<long long>(std::strtoll(s.c_str() + 2, nullptr, 16));
  if (std::regex_match(s, floatRe)) return std::strtod(s.c_str(), nullptr);
  if (s == ".inf" || s == ".Inf" || s == "+.inf") return s;  // JSON has no infinity: keep text
  return s;
}

Expected<Json, std::string> fromYaml(const YAML::Node& node, const std::string& path, int depth,
                                     std::vector<std::string>* dups) {
  if (depth > kMaxDepth) return Unexpected(std::string("document nested too deeply"));
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return Json(nullptr);
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      // yaml-cpp tags quoted scalars "!" and plain ones "?"; explicit tags are honoured.
      const std::string& tag = node.Tag();
      if (tag == "!" || tag == "tag:yaml.org,2002:str" || tag == "!!str") return Json(s);
      return plainScalar(s);
    }
    case YAML::NodeType::Sequence: {
      Json arr = Json::array();
      size_t i = 0;
      for (const auto& item : node) {
        auto v = fromYaml(item, path + "[" + std::to_string(i++) + "]", depth + 1, dups);
        if (!v) return v;
        arr.push_back(std::move(*v));
      }
      return arr;
    }
    case YAML::NodeType::Map: {
      Json obj = Json::object();
      for (const auto& kv : node) {
        if (kv.first.Type() != YAML::NodeType::Scalar)
          return Unexpected("mapping key at " + (path.empty() ? std::string("<root>") : path) +
                            " is not a string");
        std::string key = kv.first.Scalar();
        std::string childPath = path.empty() ? key : path + "." + key;
        if (key == "<<") return Unexpected("YAML merge keys (<<) are not supported at " + path);
        auto v = fromYaml(kv.second, childPath, depth + 1, dups);
        if (!v) return v;
        if (obj.contains(key) && dups) dups->push_back(childPath);
        obj[key] = std::move(*v);
      }
      return obj;
    }
  }
  return Json(nullptr);
}

// --- JSON -> YAML -----------------------------------------------------------------------------

bool needsQuotes(const std::string& s) {
  if (s.empty()) return true;
  Json typed = plainScalar(s);
  if (!typed.is_string()) return true;  // would read back as a number/bool/null
  static const std::string special = ":{}[],&*#?|-<>=!%@`\"'";
  if (special.find(s.front()) != std::string::npos) {
    if (!(s.front() == '-' && s.size() > 1 && s[1] != ' ')) return true;
  }
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos) return true;
  if (s.back() == ':' || s.front() == ' ' || s.back() == ' ') return true;
  for (char c : s)
    if (c == '\n' || c == '\t' || c == '\r' || static_cast<unsigned char>(c) < 0x20) return true;
  if (s == "y" || s == "n" || s == "yes" || s == "no" || s == "on" || s == "off" || s == "Y" ||
      s == "N" || s == "Yes" || s == "No" || s == "On" || s == "Off")
    return true;
  return false;
}

std::string scalarText(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (!needsQuotes(s)) return s;
    return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  return v.dump();
}

void emit(const Json& v, int indent, std::string& out, bool inSeq);

void emitValueAfterKey(const Json& v, int indent, std::string& out) {
  if (v.is_object() && !v.empty()) {
    out += "\n";
    emit(v, indent + 2, out, false);
  } else if (v.is_array() && !v.empty()) {
    out += "\n";
    emit(v, indent, out, false);
  } else if (v.is_object()) {
    out += " {}\n";
  } else if (v.is_array()) {
    out += " []\n";
  } else if (v.is_string() && v.get_ref<const std::string&>().find('\n') != std::string::npos) {
    const std::string& s = v.get_ref<const std::string&>();
    bool trailing = !s.empty() && s.back() == '\n';
    out += trailing ? " |\n" : " |-\n";
    size_t start = 0;
    std::string pad(indent + 2, ' ');
    std::string body = trailing ? s.substr(0, s.size() - 1) : s;
    while (start <= body.size()) {
      size_t nl = body.find('\n', start);
      std::string line =
          body.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      out += line.empty() ? "\n" : pad + line + "\n";
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  } else {
    out += " " + scalarText(v) + "\n";
  }
}

void emit(const Json& v, int indent, std::string& out, bool inSeq) {
  std::string pad(indent, ' ');
  if (v.is_object()) {
    bool first = true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      std::string key = needsQuotes(it.key()) ? Json(it.key()).dump() : it.key();
      out += (first && inSeq) ? "" : pad;
      first = false;
      out += key + ":";
      emitValueAfterKey(it.value(), inSeq ? indent : indent, out);
    }
  } else if (v.is_array()) {
    for (const auto& item : v) {
      out += pad + "- ";
      if (item.is_object() && !item.empty()) {
        emit(item, indent + 2, out, true);
      } else if (item.is_array() && !item.empty()) {
        out += "\n";
        emit(item, indent + 2, out, false);
      } else if (item.is_object()) {
        out += "{}\n";
      } else if (item.is_array()) {
        out += "[]\n";
      } else {
        out += scalarText(item) + "\n";
      }
    }
  } else {
    out += pad + scalarText(v) + "\n";
  }
}

}  // namespace

Expected<ParseResult, std::string> parse(std::string_view text) {
  ParseResult result;
  std::vector<std::set<std::string>> keys;
  std::vector<std::string> path;
  int depth = 0;
  bool tooDeep = false;
  auto cb = [&](int d, Json::parse_event_t event, Json& parsed) -> bool {
    switch (event) {
      case Json::parse_event_t::object_start:
        keys.emplace_back();
        [[fallthrough]];
      case Json::parse_event_t::array_start:
        if (++depth > kMaxDepth) tooDeep = true;
        break;
      case Json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        [[fallthrough]];
      case Json::parse_event_t::array_end:
        --depth;
        break;
      case Json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string()) {
          const auto& k = parsed.get_ref<const std::string&>();
          if (!keys.back().insert(k).second) result.duplicates.push_back(k);
        }
        break;
      default:
        break;
    }
    (void)d;
    return !tooDeep;
  };
  try {
    result.value = Json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true);
  } catch (const Json::exception& e) {
    if (tooDeep) return Unexpected(std::string("JSON nested more than 512 levels deep"));
    return Unexpected(cleanNlohmannMessage(e.what()));
  }
  if (tooDeep) return Unexpected(std::string("JSON nested more than 512 levels deep"));
  return result;
}

Expected<ParseResult, std::string> parseYaml(std::string_view text) {
  ParseResult result;
  try {
    YAML::Node node = YAML::Load(std::string(text));
    auto v = fromYaml(node, "", 0, &result.duplicates);
    if (!v) return Unexpected(v.error());
    result.value = std::move(*v);
  } catch (const YAML::Exception& e) {
    return Unexpected("yaml: line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  } catch (const std::exception& e) {
    return Unexpected(std::string("yaml: ") + e.what());
  }
  return result;
}

Expected<std::vector<Json>, std::string> parseYamlStream(std::string_view text) {
  std::vector<Json> docs;
  try {
    for (const auto& node : YAML::LoadAll(std::string(text))) {
      auto v = fromYaml(node, "", 0, nullptr);
      if (!v) return Unexpected(v.error());
      if (!v->is_null()) docs.push_back(std::move(*v));
    }
  } catch (const YAML::Exception& e) {
    return Unexpected("yaml: line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return docs;
}

std::string toYaml(const Json& value) {
  std::string out;
  if (value.is_object() && value.empty()) return "{}\n";
  if (value.is_array() && value.empty()) return "[]\n";
  emit(value, 0, out, false);
  return out;
}

std::string dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string str(const Json& obj, std::string_view key, std::string_view dflt) {
  if (!obj.is_object()) return std::string(dflt);
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string(dflt);
}

int64_t integer(const Json& obj, std::string_view key, int64_t dflt) {
  if (!obj.is_object()) return dflt;
  auto it = obj.find(key);
  if (it == obj.end()) return dflt;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float()) {
    double d = it->get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
  }
  return dflt;
}

bool boolean(const Json& obj, std::string_view key, bool dflt) {
  if (!obj.is_object()) return dflt;
  auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() ? it->get<bool>() : dflt;
}

const Json& at(const Json& value, std::initializer_list<std::string_view> path) {
  static const Json kNull;
  const Json* v = find(value, path);
  return v ? *v : kNull;
}

const Json* find(const Json& value, std::initializer_list<std::string_view> path) {
  const Json* cur = &value;
  for (auto key : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(std::string(key));
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::string getString(const Json& value, std::initializer_list<std::string_view> path) {
  const Json* v = find(value, path);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

Json mergePatchBetween(const Json& from, const Json& to) {
  if (!from.is_object() || !to.is_object()) return to;
  Json patch = Json::object();
  for (auto it = to.begin(); it != to.end(); ++it) {
    auto old = from.find(it.key());
    if (old == from.end())
      patch[it.key()] = it.value();
    else if (*old != it.value())
      patch[it.key()] = mergePatchBetween(*old, it.value());
  }
  for (auto it = from.begin(); it != from.end(); ++it)
    if (!to.contains(it.key())) patch[it.key()] = nullptr;
  return patch;
}

}  // namespace podium::json
