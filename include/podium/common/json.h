#pragma once

// JSON and YAML documents as nlohmann::json values. All parsers here take untrusted input:
// they never throw and report a message that says where the input went wrong.

#include <stdexcept>

// nlohmann::json checks some preconditions (e.g. const operator[] on a missing key) with an
// assert that is undefined behaviour in release builds. Make them exceptions instead, which the
// API's handlers turn into an error response rather than a crash.
#ifndef JSON_ASSERT
#define JSON_ASSERT(x)                                                 \
  do {                                                                 \
    if (!(x)) throw std::logic_error("json precondition failed: " #x); \
  } while (0)
#endif
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "podium/common/expected.h"

namespace podium {

using Json = nlohmann::json;

namespace json {

struct ParseResult {
  Json value;
  // Keys that appeared twice in the same object, as "path.to.key" (the later value wins).
  std::vector<std::string> duplicates;
};

// Parses one JSON document. Nesting deeper than 512 levels is refused.
Expected<ParseResult, std::string> parse(std::string_view text);
// Parses one YAML document (YAML 1.2 core schema: plain true/false/null/numbers are typed,
// quoted scalars stay strings). An empty document gives null.
Expected<ParseResult, std::string> parseYaml(std::string_view text);
// Splits a multi-document YAML stream ("---" separators) and parses each non-empty document.
Expected<std::vector<Json>, std::string> parseYamlStream(std::string_view text);

// Renders a value as block-style YAML the way kubectl prints objects (keys sorted).
std::string toYaml(const Json& value);

// Compact JSON without throwing on invalid UTF-8 (bytes are replaced).
std::string dump(const Json& value);

// Typed field reads that never throw: the default when `obj` is not an object, the key is
// absent, or the value has another type (untrusted documents reach all of these).
std::string str(const Json& obj, std::string_view key, std::string_view dflt = "");
int64_t integer(const Json& obj, std::string_view key, int64_t dflt = 0);
bool boolean(const Json& obj, std::string_view key, bool dflt = false);

// Returns the value at a dotted path of object keys, or nullptr.
const Json* find(const Json& value, std::initializer_list<std::string_view> path);
// The value at a path of object keys, or a null value (never throws, never inserts).
const Json& at(const Json& value, std::initializer_list<std::string_view> path);
// String at path or empty.
std::string getString(const Json& value, std::initializer_list<std::string_view> path);

// The JSON merge patch (RFC 7386) that turns `from` into `to`: the members that changed, null
// for those removed; unchanged members are left out (so it is small when little changed). A
// merge patch cannot set a null, so null members of `to` come out removed.
Json mergePatchBetween(const Json& from, const Json& to);

}  // namespace json
}  // namespace podium
