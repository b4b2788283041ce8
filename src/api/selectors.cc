#include "podium/api/selectors.h"

#include <algorithm>
#include <cctype>

#include "podium/common/strings.h"

namespace podium::api {
namespace {

bool validLabelKeyChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
         c == '/';
}

class Lexer {
 public:
  explicit Lexer(const std::string& s) : s_(s) {}
  void skipSpace() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool done() {
    skipSpace();
    return pos_ >= s_.size();
  }
  bool peek(const char* tok) {
    skipSpace();
    return s_.compare(pos_, strlen(tok), tok) == 0;
  }
  bool eat(const char* tok) {
    if (!peek(tok)) return false;
    pos_ += strlen(tok);
    return true;
  }
  std::string word() {
    skipSpace();
    size_t start = pos_;
    while (pos_ < s_.size() && validLabelKeyChar(s_[pos_])) ++pos_;
    return s_.substr(start, pos_ - start);
  }
  // Keyword "in"/"notin" followed by a space or '('.
  bool keyword(const char* kw) {
    skipSpace();
    size_t n = strlen(kw);
    if (s_.compare(pos_, n, kw) != 0) return false;
    if (pos_ + n < s_.size() &&
        (std::isspace(static_cast<unsigned char>(s_[pos_ + n])) || s_[pos_ + n] == '(')) {
      pos_ += n;
      return true;
    }
    return false;
  }
  size_t pos() const { return pos_; }

 private:
  const std::string& s_;
  size_t pos_ = 0;
};

bool matchesRequirement(const LabelSelector::Requirement& r, const Json& labels) {
  const Json* v = nullptr;
  if (labels.is_object()) {
    auto it = labels.find(r.key);
    if (it != labels.end() && it->is_string()) v = &*it;
  }
  using Op = LabelSelector::Op;
  switch (r.op) {
    case Op::Exists:
      return v != nullptr;
    case Op::NotExists:
      return v == nullptr;
    case Op::Equals:
    case Op::In:
      return v &&
             std::find(r.values.begin(), r.values.end(), v->get<std::string>()) != r.values.end();
    case Op::NotEquals:
    case Op::NotIn:
      return !v ||
             std::find(r.values.begin(), r.values.end(), v->get<std::string>()) == r.values.end();
    case Op::Gt:
    case Op::Lt: {
      if (!v || r.values.empty()) return false;
      auto have = strings::parseInt(v->get<std::string>());
      auto want = strings::parseInt(r.values[0]);
      if (!have || !want) return false;
      return r.op == Op::Gt ? *have > *want : *have < *want;
    }
  }
  return false;
}

}  // namespace

Expected<LabelSelector, std::string> LabelSelector::parse(const std::string& text) {
  LabelSelector sel;
  Lexer lx(text);
  if (lx.done()) return sel;
  while (true) {
    Requirement r;
    bool negated = lx.eat("!");
    r.key = lx.word();
    if (r.key.empty())
      return Unexpected("unable to parse requirement: found '" + text.substr(lx.pos(), 1) +
                        "', expected: identifier");
    if (negated) {
      r.op = Op::NotExists;
    } else if (lx.eat("==") || lx.eat("=")) {
      r.op = Op::Equals;
      r.values.push_back(lx.word());
    } else if (lx.eat("!=")) {
      r.op = Op::NotEquals;
      r.values.push_back(lx.word());
    } else if (lx.eat(">")) {
      r.op = Op::Gt;
      r.values.push_back(lx.word());
    } else if (lx.eat("<")) {
      r.op = Op::Lt;
      r.values.push_back(lx.word());
    } else if (bool notIn = lx.keyword("notin"); notIn || lx.keyword("in")) {
      r.op = notIn ? Op::NotIn : Op::In;
      if (!lx.eat("(")) return Unexpected(std::string("unable to parse requirement: expected '('"));
      while (true) {
        r.values.push_back(lx.word());
        if (lx.eat(")")) break;
        if (!lx.eat(","))
          return Unexpected(std::string("unable to parse requirement: expected ',' or ')'"));
      }
    } else {
      r.op = Op::Exists;
    }
    sel.reqs_.push_back(std::move(r));
    if (lx.done()) break;
    if (!lx.eat(","))
      return Unexpected("unable to parse requirement: unexpected input at position " +
                        std::to_string(lx.pos()));
  }
  return sel;
}

Expected<LabelSelector, std::string> LabelSelector::fromObject(const Json& selector,
                                                               bool nullMatchesNothing) {
  LabelSelector sel;
  if (selector.is_null()) {
    sel.nothing_ = nullMatchesNothing;
    return sel;
  }
  if (!selector.is_object()) return Unexpected(std::string("selector must be an object"));
  if (auto ml = selector.find("matchLabels"); ml != selector.end() && ml->is_object()) {
    for (const auto& item : ml->items()) {
      if (!item.value().is_string())
        return Unexpected("matchLabels[" + item.key() + "] must be a string");
      sel.reqs_.push_back({item.key(), Op::Equals, {item.value().get<std::string>()}});
    }
  }
  if (auto me = selector.find("matchExpressions"); me != selector.end() && me->is_array()) {
    for (const auto& e : *me) {
      Requirement r;
      r.key = json::str(e, "key", "");
      std::string op = json::str(e, "operator", "");
      if (auto vs = e.find("values"); vs != e.end() && vs->is_array())
        for (const auto& v : *vs)
          if (v.is_string()) r.values.push_back(v.get<std::string>());
      if (op == "In")
        r.op = Op::In;
      else if (op == "NotIn")
        r.op = Op::NotIn;
      else if (op == "Exists")
        r.op = Op::Exists;
      else if (op == "DoesNotExist")
        r.op = Op::NotExists;
      else
        return Unexpected("\"" + op + "\" is not a valid label selector operator");
      sel.reqs_.push_back(std::move(r));
    }
  }
  return sel;
}

bool LabelSelector::matches(const Json& labels) const {
  if (nothing_) return false;
  for (const auto& r : reqs_)
    if (!matchesRequirement(r, labels)) return false;
  return true;
}

std::string LabelSelector::str() const {
  if (nothing_) return "<none>";
  std::vector<std::string> parts;
  for (const auto& r : reqs_) {
    switch (r.op) {
      case Op::Exists:
        parts.push_back(r.key);
        break;
      case Op::NotExists:
        parts.push_back("!" + r.key);
        break;
      case Op::Equals:
        parts.push_back(r.key + "=" + r.values[0]);
        break;
      case Op::NotEquals:
        parts.push_back(r.key + "!=" + r.values[0]);
        break;
      case Op::Gt:
        parts.push_back(r.key + ">" + r.values[0]);
        break;
      case Op::Lt:
        parts.push_back(r.key + "<" + r.values[0]);
        break;
      case Op::In:
      case Op::NotIn: {
        auto vs = r.values;
        std::sort(vs.begin(), vs.end());
        parts.push_back(r.key + (r.op == Op::In ? " in (" : " notin (") + strings::join(vs, ",") +
                        ")");
        break;
      }
    }
  }
  return strings::join(parts, ",");
}

std::string fieldValue(const Json& obj, const std::string& path) {
  const Json* cur = &obj;
  for (const auto& part : strings::split(path, '.')) {
    if (!cur->is_object()) return "";
    auto it = cur->find(part);
    if (it == cur->end()) return "";
    cur = &*it;
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_boolean()) return cur->get<bool>() ? "true" : "false";
  if (cur->is_number()) return cur->dump();
  return "";
}

Expected<FieldSelector, std::string> FieldSelector::parse(const std::string& text,
                                                          const std::vector<std::string>& allowed) {
  FieldSelector sel;
  if (strings::trim(text).empty()) return sel;
  for (const auto& rawTerm : strings::split(text, ',')) {
    std::string term(strings::trim(rawTerm));
    Term t;
    size_t pos;
    if ((pos = term.find("!=")) != std::string::npos) {
      t.equal = false;
      t.field = term.substr(0, pos);
      t.value = term.substr(pos + 2);
    } else if ((pos = term.find("==")) != std::string::npos) {
      t.field = term.substr(0, pos);
      t.value = term.substr(pos + 2);
    } else if ((pos = term.find('=')) != std::string::npos) {
      t.field = term.substr(0, pos);
      t.value = term.substr(pos + 1);
    } else {
      return Unexpected("invalid selector: '" + text + "'; can't understand '" + term + "'");
    }
    t.field = std::string(strings::trim(t.field));
    if (t.field != "metadata.name" && t.field != "metadata.namespace" &&
        std::find(allowed.begin(), allowed.end(), t.field) == allowed.end())
      return Unexpected("field label not supported: " + t.field);
    sel.terms_.push_back(std::move(t));
  }
  return sel;
}

bool FieldSelector::matches(const Json& obj) const {
  for (const auto& t : terms_) {
    bool eq = fieldValue(obj, t.field) == t.value;
    if (eq != t.equal) return false;
  }
  return true;
}

std::string FieldSelector::exactName() const {
  for (const auto& t : terms_)
    if (t.field == "metadata.name" && t.equal) return t.value;
  return "";
}

std::string FieldSelector::exactNamespace() const {
  for (const auto& t : terms_)
    if (t.field == "metadata.namespace" && t.equal) return t.value;
  return "";
}

std::vector<std::string> selectableFields(const std::string& group, const std::string& plural) {
  if (group.empty()) {
    if (plural == "pods")
      return {"spec.nodeName",      "spec.restartPolicy",
              "spec.schedulerName", "spec.serviceAccountName",
              "spec.hostNetwork",   "status.phase",
              "status.podIP",       "status.nominatedNodeName"};
    if (plural == "events")
      return {"involvedObject.kind",
              "involvedObject.namespace",
              "involvedObject.name",
              "involvedObject.uid",
              "involvedObject.apiVersion",
              "involvedObject.resourceVersion",
              "involvedObject.fieldPath",
              "reason",
              "reportingComponent",
              "source",
              "type"};
    if (plural == "secrets") return {"type"};
    if (plural == "namespaces") return {"status.phase"};
    if (plural == "nodes") return {"spec.unschedulable"};
    if (plural == "services") return {"spec.clusterIP", "spec.type"};
  }
  if (group == "apps" && plural == "replicasets") return {"status.replicas"};
  if (group == "batch" && plural == "jobs") return {"status.successful"};
  return {};
}

}  // namespace podium::api
