#pragma once

// Label and field selectors with Kubernetes' syntax and semantics
// (apimachinery pkg/labels and pkg/fields).

#include <string>
#include <vector>

#include "podium/common/expected.h"
#include "podium/common/json.h"

namespace podium::api {

class LabelSelector {
 public:
  enum class Op { Exists, NotExists, Equals, NotEquals, In, NotIn, Gt, Lt };
  struct Requirement {
    std::string key;
    Op op;
    std::vector<std::string> values;
  };

  // Parses the query-string form: "app=web,tier!=db,env in (a,b),!legacy,release".
  static Expected<LabelSelector, std::string> parse(const std::string& text);
  // From a metav1.LabelSelector object ({matchLabels, matchExpressions}); null selects nothing
  // when `nullMatchesNothing`, everything otherwise.
  static Expected<LabelSelector, std::string> fromObject(const Json& selector,
                                                         bool nullMatchesNothing = true);

  bool empty() const { return reqs_.empty() && !nothing_; }
  // `labels` is an object of string values (or null).
  bool matches(const Json& labels) const;
  // Canonical text ("app=web,env in (a,b)"), as kubectl and the Table printers show it.
  std::string str() const;
  const std::vector<Requirement>& requirements() const { return reqs_; }

 private:
  std::vector<Requirement> reqs_;
  bool nothing_ = false;
};

class FieldSelector {
 public:
  struct Term {
    std::string field;
    bool equal = true;
    std::string value;
  };
  // "metadata.name=x,status.phase!=Running"; `allowed` lists the fields this resource supports
  // (metadata.name and metadata.namespace are always supported).
  static Expected<FieldSelector, std::string> parse(const std::string& text,
                                                    const std::vector<std::string>& allowed);
  bool empty() const { return terms_.empty(); }
  bool matches(const Json& obj) const;
  // The value a term on metadata.name requires, if it pins one name (lets lists skip a scan).
  std::string exactName() const;
  std::string exactNamespace() const;

 private:
  std::vector<Term> terms_;
};

// The value of a dotted field path rendered the way field selectors compare it ("" if absent).
std::string fieldValue(const Json& obj, const std::string& path);

// Fields each built-in resource supports in field selectors (beyond metadata.name/namespace).
std::vector<std::string> selectableFields(const std::string& group, const std::string& plural);

}  // namespace podium::api
