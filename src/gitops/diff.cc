#include "diff.h"

#include <algorithm>
#include <optional>

#include "podium/common/strings.h"

namespace podium::gitops {

// Whether `live` has every field `want` sets, with the same value. Fields the server added
// (defaults, status, metadata it manages) are not differences: only what git says is compared,
// so a freshly synced app is never OutOfSync, and a `kubectl scale` or edit of a field git sets is.
bool contains(const Json& live, const Json& want) {
  if (want.is_object()) {
    if (!live.is_object()) return false;
    for (const auto& [k, v] : want.items()) {
      auto it = live.find(k);
      if (it == live.end()) {
        if (v.is_null() || (v.is_object() && v.empty()) || (v.is_array() && v.empty())) continue;
        return false;
      }
      if (!contains(*it, v)) return false;
    }
    return true;
  }
  if (want.is_array()) {
    if (!live.is_array() || live.size() != want.size()) return false;
    for (size_t i = 0; i < want.size(); ++i)
      if (!contains(live[i], want[i])) return false;
    return true;
  }
  if (want.is_number() && live.is_number()) return want.get<double>() == live.get<double>();
  return live == want;
}

// What of a desired object is compared: everything but status and the metadata the server owns.
Json comparable(const Json& obj) {
  Json out = obj;
  out.erase("status");
  Json md = Json::object();
  for (const char* k : {"labels", "annotations"})
    if (obj.contains("metadata") && obj["metadata"].contains(k)) md[k] = obj["metadata"][k];
  out["metadata"] = md;
  out.erase("apiVersion");
  if (json::str(obj, "kind") == "Secret" && out.contains("stringData")) {
    for (const auto& [k, v] : out["stringData"].items())
      if (v.is_string()) out["data"][k] = strings::base64Encode(v.get<std::string>());
    out.erase("stringData");
  }
  return out;
}

}  // namespace podium::gitops

namespace podium::gitops {

namespace {

// A small non-negative number written in decimal (an array index), or nullopt.
std::optional<size_t> indexOf(const std::string& s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  return v;
}

// Whether an array element is one a Select step picks.
bool selected(const Json& element, const Json& match) {
  if (!match.is_object()) return element == match;
  if (!element.is_object()) return false;
  for (const auto& [k, v] : match.items()) {
    auto it = element.find(k);
    if (it == element.end() || *it != v) return false;
  }
  return true;
}

// The children of `node` a step leads to (pointers into it).
std::vector<Json*> step(Json& node, const PathStep& s) {
  std::vector<Json*> out;
  switch (s.kind) {
    case PathStep::Field:
      if (node.is_object() && node.contains(s.name)) out.push_back(&node[s.name]);
      if (auto i = indexOf(s.name); node.is_array() && i && *i < node.size())
        out.push_back(&node[*i]);
      break;
    case PathStep::Index:
      if (node.is_array() && s.index < node.size()) out.push_back(&node[s.index]);
      break;
    case PathStep::Each:
      if (node.is_array() || node.is_object())
        for (auto& e : node) out.push_back(&e);
      break;
    case PathStep::Select:
      if (node.is_array())
        for (auto& e : node)
          if (selected(e, s.match)) out.push_back(&e);
      break;
  }
  return out;
}

void removeAt(Json& node, const FieldPath& path, size_t i) {
  const PathStep& s = path[i];
  if (i + 1 < path.size()) {
    for (Json* child : step(node, s)) removeAt(*child, path, i + 1);
    return;
  }
  if (node.is_object() && s.kind == PathStep::Field) {
    node.erase(s.name);
  } else if (node.is_array()) {
    size_t k = 0;
    Json kept = Json::array();
    for (auto& e : node) {
      bool drop = s.kind == PathStep::Each || (s.kind == PathStep::Index && k == s.index) ||
                  (s.kind == PathStep::Field && indexOf(s.name) == k) ||
                  (s.kind == PathStep::Select && selected(e, s.match));
      if (!drop) kept.push_back(std::move(e));
      ++k;
    }
    node = std::move(kept);
  } else if (node.is_object() && s.kind == PathStep::Each) {
    node = Json::object();
  }
}

void keepAt(Json& desired, const Json& live, const FieldPath& path, size_t i) {
  const PathStep& s = path[i];
  if (i + 1 < path.size()) {
    Json& d = desired;
    Json l = live;  // step() wants a mutable node; live is small where rules point
    auto ds = step(d, s);
    auto ls = step(l, s);
    for (size_t k = 0; k < ds.size(); ++k) {
      // Elements pair up by position, or for a Select by being the n-th selected one.
      if (k < ls.size())
        keepAt(*ds[k], *ls[k], path, i + 1);
      else
        removeAt(*ds[k], path, i + 1);  // live has none there
    }
    return;
  }
  if (s.kind == PathStep::Field && desired.is_object()) {
    if (live.is_object() && live.contains(s.name))
      desired[s.name] = live[s.name];
    else
      desired.erase(s.name);
    return;
  }
  // Array elements: live's selection replaces desired's.
  if (desired.is_array() && live.is_array()) {
    Json l = live;
    Json out = Json::array();
    for (auto& e : desired) {
      bool mine = s.kind == PathStep::Select ? selected(e, s.match) : s.kind == PathStep::Each;
      if (!mine) out.push_back(e);
    }
    for (Json* e : step(l, s)) out.push_back(*e);
    desired = std::move(out);
  }
}

// jq's path subset: .a.b, ."a/b", .["a"], .[0], .[], and `| select(.k == "v")` between them.
class JqParser {
 public:
  explicit JqParser(const std::string& s) : s_(s) {}
  Expected<FieldPath, std::string> parse() {
    FieldPath out;
    skip();
    if (!eat('.')) return fail("a path starts with '.'");
    for (;;) {
      skip();
      if (pos_ >= s_.size()) break;
      if (eat('|')) {
        skip();
        if (s_.compare(pos_, 6, "select") != 0) return fail("only select(...) may follow '|'");
        pos_ += 6;
        skip();
        if (!eat('(')) return fail("expected '(' after select");
        skip();
        if (!eat('.')) return fail("select compares a field: select(.name == \"value\")");
        auto key = name();
        if (!key) return Unexpected(key.error());
        skip();
        if (s_.compare(pos_, 2, "==") != 0) return fail("select compares with ==");
        pos_ += 2;
        skip();
        auto value = literal();
        if (!value) return Unexpected(value.error());
        skip();
        if (!eat(')')) return fail("expected ')'");
        PathStep st;
        st.kind = PathStep::Select;
        st.match = Json{{*key, *value}};
        // `.list[] | select(...)`: the list's elements that match.
        if (out.empty() || out.back().kind != PathStep::Each)
          return fail("select(...) must follow [] (a list's elements)");
        out.back() = st;
        continue;
      }
      if (eat('[')) {
        skip();
        PathStep st;
        if (eat(']')) {
          st.kind = PathStep::Each;
        } else if (pos_ < s_.size() && s_[pos_] == '"') {
          auto v = literal();
          if (!v) return Unexpected(v.error());
          st.name = v->get<std::string>();
          if (!eat(']')) return fail("expected ']'");
        } else {
          size_t start = pos_;
          while (pos_ < s_.size() && isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
          auto i = indexOf(s_.substr(start, pos_ - start));
          if (start == pos_ || !eat(']')) return fail("expected an index, a \"name\" or ]");
          if (!i) return fail("an index too large");
          st.kind = PathStep::Index;
          st.index = *i;
        }
        out.push_back(st);
        continue;
      }
      if (eat('.')) {
        skip();
        if (pos_ < s_.size() && s_[pos_] == '[') continue;  // .["a"], .[0]
      } else if (!out.empty() || (pos_ > 0 && s_[pos_ - 1] != '.')) {
        return fail("unexpected '" + std::string(1, s_[pos_]) + "'");
      }
      auto n = name();
      if (!n) return Unexpected(n.error());
      out.push_back({PathStep::Field, *n, 0, {}});
    }
    if (out.empty()) return fail("the whole object cannot be ignored");
    return out;
  }

 private:
  Unexpected<std::string> fail(const std::string& why) const {
    return Unexpected("jq path '" + s_ + "' at " + std::to_string(pos_) + ": " + why);
  }
  void skip() {
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  }
  bool eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  Expected<std::string, std::string> name() {
    if (pos_ < s_.size() && s_[pos_] == '"') {
      auto v = literal();
      if (!v) return Unexpected(v.error());
      if (!v->is_string()) return fail("a field name is a string");
      return v->get<std::string>();
    }
    size_t start = pos_;
    while (pos_ < s_.size() &&
           (isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_' || s_[pos_] == '-'))
      ++pos_;
    if (start == pos_) return fail("expected a field name");
    return s_.substr(start, pos_ - start);
  }
  // A JSON literal: "string", number, true, false, null.
  Expected<Json, std::string> literal() {
    size_t start = pos_;
    if (eat('"')) {
      while (pos_ < s_.size() && s_[pos_] != '"') pos_ += s_[pos_] == '\\' ? 2 : 1;
      if (!eat('"')) return fail("unterminated string");
    } else {
      while (pos_ < s_.size() && s_[pos_] != ')' && s_[pos_] != ' ') ++pos_;
    }
    auto v = json::parse(s_.substr(start, pos_ - start));
    if (!v) return fail("not a JSON value");
    return v->value;
  }
  const std::string& s_;
  size_t pos_ = 0;
};

void managedWalk(const Json& node, FieldPath& prefix, std::vector<FieldPath>& out) {
  for (const auto& [k, v] : node.items()) {
    if (k == ".") continue;
    PathStep s;
    if (k.rfind("f:", 0) == 0) {
      s.name = k.substr(2);
    } else if (k.rfind("k:", 0) == 0 || k.rfind("v:", 0) == 0) {
      auto m = json::parse(k.substr(2));
      if (!m) continue;
      s.kind = PathStep::Select;
      s.match = m->value;
    } else if (k.rfind("i:", 0) == 0 && indexOf(k.substr(2))) {
      s.kind = PathStep::Index;
      s.index = *indexOf(k.substr(2));
    } else {
      continue;
    }
    prefix.push_back(s);
    bool leaf = !v.is_object() || std::none_of(v.items().begin(), v.items().end(),
                                               [](const auto& kv) { return kv.key() != "."; });
    if (leaf)
      out.push_back(prefix);
    else
      managedWalk(v, prefix, out);
    prefix.pop_back();
  }
}

}  // namespace

namespace {

// The fields of `shape` that `other` has too (arrays element by element when as long), with
// the values of `shape` or of `other` at the leaves.
Json commonFields(const Json& shape, const Json& other, bool shapeValues) {
  if (shape.is_object() && other.is_object()) {
    Json out = Json::object();
    for (const auto& [k, v] : shape.items())
      if (auto it = other.find(k); it != other.end()) out[k] = commonFields(v, *it, shapeValues);
    return out;
  }
  if (shape.is_array() && other.is_array() && shape.size() == other.size()) {
    Json out = Json::array();
    for (size_t i = 0; i < shape.size(); ++i)
      out.push_back(commonFields(shape[i], other[i], shapeValues));
    return out;
  }
  return shapeValues ? shape : other;
}

}  // namespace

Json knownFields(const Json& desired, const Json& stored) {
  return commonFields(desired, stored, true);
}

Json projectOnto(const Json& live, const Json& want) { return commonFields(want, live, false); }

bool IgnoreRule::matches(const std::string& g, const std::string& k, const std::string& n,
                         const std::string& nm) const {
  return group == g && kind == k && (ns.empty() || ns == n) && (name.empty() || name == nm);
}

Expected<FieldPath, std::string> parseJsonPointer(const std::string& pointer) {
  if (pointer.empty() || pointer[0] != '/')
    return Unexpected("JSON pointer '" + pointer + "' does not start with '/'");
  FieldPath out;
  for (auto& part : strings::split(pointer.substr(1), '/')) {
    std::string name;
    for (size_t i = 0; i < part.size(); ++i) {
      if (part[i] == '~' && i + 1 < part.size() && (part[i + 1] == '0' || part[i + 1] == '1')) {
        name += part[i + 1] == '0' ? '~' : '/';
        ++i;
      } else {
        name += part[i];
      }
    }
    out.push_back({PathStep::Field, name, 0, {}});
  }
  return out;
}

Expected<FieldPath, std::string> parseJqPath(const std::string& expression) {
  return JqParser(expression).parse();
}

Expected<std::vector<IgnoreRule>, std::string> parseIgnoreRules(const Json& list) {
  std::vector<IgnoreRule> out;
  if (list.is_null()) return out;
  if (!list.is_array()) return Unexpected(std::string("spec.ignoreDifferences: not a list"));
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& e = list[i];
    std::string at = "spec.ignoreDifferences[" + std::to_string(i) + "]";
    IgnoreRule r;
    r.group = json::str(e, "group");
    r.kind = json::str(e, "kind");
    r.name = json::str(e, "name");
    r.ns = json::str(e, "namespace");
    if (r.kind.empty()) return Unexpected(at + ".kind: Required value");
    for (const char* field : {"jsonPointers", "jqPathExpressions", "managedFieldsManagers"}) {
      const Json& items = json::at(e, {field});
      if (items.is_null()) continue;
      if (!items.is_array()) return Unexpected(at + "." + field + ": not a list");
      for (size_t k = 0; k < items.size(); ++k) {
        std::string where = at + "." + field + "[" + std::to_string(k) + "]";
        if (!items[k].is_string()) return Unexpected(where + ": not a string");
        std::string v = items[k].get<std::string>();
        if (std::string(field) == "managedFieldsManagers") {
          r.managers.push_back(v);
          continue;
        }
        auto p = std::string(field) == "jsonPointers" ? parseJsonPointer(v) : parseJqPath(v);
        if (!p) return Unexpected(where + ": " + p.error());
        r.paths.push_back(std::move(*p));
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

void removePath(Json& obj, const FieldPath& path) {
  if (!path.empty()) removeAt(obj, path, 0);
}

void keepLive(Json& desired, const Json& live, const FieldPath& path) {
  if (!path.empty()) keepAt(desired, live, path, 0);
}

std::vector<FieldPath> managedPaths(const Json& live, const std::string& manager) {
  std::vector<FieldPath> out;
  for (const auto& m : json::at(live, {"metadata", "managedFields"}))
    if (json::str(m, "manager") == manager && m.contains("fieldsV1") && m["fieldsV1"].is_object()) {
      FieldPath prefix;
      managedWalk(m["fieldsV1"], prefix, out);
    }
  return out;
}

}  // namespace podium::gitops
