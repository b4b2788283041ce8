#include "analysis_expr.h"

#include <cctype>
#include <cmath>
#include <stdexcept>

namespace podium::controllers {

namespace {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A recursive-descent evaluator over the text (conditions are short; no AST is kept).
class Parser {
 public:
  Parser(const std::string& text, const Json& result) : s_(text), result_(result) {}

  Json parse() {
    Json v = orExpr();
    skip();
    if (i_ < s_.size()) throw Error("unexpected '" + s_.substr(i_, 10) + "'");
    return v;
  }

 private:
  void skip() {
    while (i_ < s_.size() && isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool eat(const std::string& tok) {
    skip();
    if (s_.compare(i_, tok.size(), tok) != 0) return false;
    // Word operators must end at a word boundary ("and", "or", "not").
    if (isalpha(static_cast<unsigned char>(tok[0])) && i_ + tok.size() < s_.size() &&
        (isalnum(static_cast<unsigned char>(s_[i_ + tok.size()])) || s_[i_ + tok.size()] == '_'))
      return false;
    i_ += tok.size();
    return true;
  }
  static bool truthy(const Json& v) {
    if (v.is_boolean()) return v.get<bool>();
    throw Error("expected a boolean, got " + v.dump());
  }
  static double num(const Json& v) {
    if (v.is_number()) return v.get<double>();
    if (v.is_array() && v.size() == 1 && v[0].is_number()) return v[0].get<double>();
    throw Error("expected a number, got " + v.dump());
  }
  Json orExpr() {
    Json v = andExpr();
    while (eat("||") || eat("or")) {
      Json r = andExpr();
      v = truthy(v) || truthy(r);
    }
    return v;
  }
  Json andExpr() {
    Json v = notExpr();
    while (eat("&&") || eat("and")) {
      Json r = notExpr();
      v = truthy(v) && truthy(r);
    }
    return v;
  }
  Json notExpr() {
    skip();
    if (s_.compare(i_, 2, "!=") != 0 && (eat("!") || eat("not"))) return !truthy(notExpr());
    return compare();
  }
  Json compare() {
    Json a = sum();
    for (const char* op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (!eat(op)) continue;
      Json b = sum();
      std::string o = op;
      if (o == "==" || o == "!=") {
        bool eq = (a.is_number() && b.is_number()) ? a.get<double>() == b.get<double>() : a == b;
        return o == "==" ? eq : !eq;
      }
      double x = num(a), y = num(b);
      return o == "<" ? x < y : o == ">" ? x > y : o == "<=" ? x <= y : x >= y;
    }
    return a;
  }
  Json sum() {
    Json v = product();
    for (;;) {
      if (eat("+")) {
        Json r = product();
        v = (v.is_string() && r.is_string()) ? Json(v.get<std::string>() + r.get<std::string>())
                                             : Json(num(v) + num(r));
      } else if (eat("-")) {
        v = num(v) - num(product());
      } else {
        return v;
      }
    }
  }
  Json product() {
    Json v = unary();
    for (;;) {
      if (eat("*"))
        v = num(v) * num(unary());
      else if (eat("/"))
        v = num(v) / num(unary());
      else if (eat("%"))
        v = std::fmod(num(v), num(unary()));
      else
        return v;
    }
  }
  Json unary() {
    if (eat("-")) return -num(unary());
    return postfix();
  }
  Json postfix() {
    Json v = primary();
    for (;;) {
      if (eat("[")) {
        Json idx = orExpr();
        if (!eat("]")) throw Error("missing ']'");
        if (v.is_array() && idx.is_number()) {
          auto n = static_cast<int64_t>(idx.get<double>());
          if (n < 0) n += static_cast<int64_t>(v.size());
          if (n < 0 || n >= static_cast<int64_t>(v.size()))
            throw Error("index " + std::to_string(n) + " out of range (" +
                        std::to_string(v.size()) + " values)");
          v = v[static_cast<size_t>(n)];
        } else if (v.is_object() && idx.is_string()) {
          v = v.value(idx.get<std::string>(), Json());
        } else {
          throw Error("cannot index " + v.dump());
        }
      } else if (eat(".")) {
        std::string f = ident();
        if (!v.is_object()) throw Error("no field " + f + " in " + v.dump());
        v = v.value(f, Json());
      } else {
        return v;
      }
    }
  }
  std::string ident() {
    skip();
    size_t start = i_;
    while (i_ < s_.size() && (isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_')) ++i_;
    if (start == i_) throw Error("expected a name at '" + s_.substr(i_, 10) + "'");
    return s_.substr(start, i_ - start);
  }
  Json primary() {
    skip();
    if (i_ >= s_.size()) throw Error("unexpected end of condition");
    char c = s_[i_];
    if (eat("(")) {
      Json v = orExpr();
      if (!eat(")")) throw Error("missing ')'");
      return v;
    }
    if (isdigit(static_cast<unsigned char>(c)) || c == '.') {
      size_t used = 0;
      double d = std::stod(s_.substr(i_), &used);
      i_ += used;
      return d;
    }
    if (c == '"' || c == '\'') {
      size_t end = s_.find(c, i_ + 1);
      if (end == std::string::npos) throw Error("unterminated string");
      std::string v = s_.substr(i_ + 1, end - i_ - 1);
      i_ = end + 1;
      return v;
    }
    std::string name = ident();
    if (name == "true") return true;
    if (name == "false") return false;
    if (name == "nil") return nullptr;
    if (name == "result") return result_;
    if (!eat("(")) throw Error("unknown name " + name + " (the measurement is `result`)");
    std::vector<Json> args;
    if (!eat(")")) {
      do args.push_back(orExpr());
      while (eat(","));
      if (!eat(")")) throw Error("missing ')' after the arguments of " + name);
    }
    auto want = [&](size_t n) {
      if (args.size() != n)
        throw Error(name + " takes " + std::to_string(n) + " argument" + (n == 1 ? "" : "s"));
    };
    if (name == "len") {
      want(1);
      if (args[0].is_array() || args[0].is_object()) return args[0].size();
      if (args[0].is_string()) return args[0].get<std::string>().size();
      throw Error("len of " + args[0].dump());
    }
    if (name == "isNaN") return want(1), args[0].is_null() || std::isnan(num(args[0]));
    if (name == "isInf") return want(1), std::isinf(num(args[0]));
    if (name == "default") return want(2), args[0].is_null() ? args[1] : args[0];
    if (name == "asInt") return want(1), static_cast<int64_t>(num(args[0]));
    if (name == "asFloat") return want(1), num(args[0]);
    throw Error("unknown function " + name);
  }

  const std::string& s_;
  const Json& result_;
  size_t i_ = 0;
};

}  // namespace

Expected<bool, std::string> evaluateCondition(const std::string& expr, const Json& result) {
  try {
    Json v = Parser(expr, result).parse();
    if (!v.is_boolean()) return Unexpected("condition \"" + expr + "\" is not a boolean");
    return v.get<bool>();
  } catch (const std::exception& e) {  // Error, and std::stod's
    return Unexpected("condition \"" + expr + "\": " + e.what());
  }
}

}  // namespace podium::controllers
