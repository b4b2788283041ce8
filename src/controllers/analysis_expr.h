#pragma once

// The condition language of Argo Rollouts' successCondition/failureCondition (a subset of
// expr-lang, which Argo Rollouts uses): numbers, strings, true/false/nil, `result` (the
// measurement: a number, or a list of them), indexing (`result[0]`), fields (`result.x`),
// arithmetic (+ - * / %), comparisons (== != < <= > >=), `&&`/`and`, `||`/`or`, `!`/`not`,
// parentheses, and the functions len, isNaN, isInf, default, asInt, asFloat.

#include <string>

#include "podium/common/expected.h"
#include "podium/common/json.h"

namespace podium::controllers {

// Evaluates `expr` with `result` bound; an error for a malformed expression or a type mismatch
// (a comparison of a list with a number, an index out of range).
Expected<bool, std::string> evaluateCondition(const std::string& expr, const Json& result);

}  // namespace podium::controllers
