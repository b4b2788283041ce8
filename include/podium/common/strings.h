#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podium::strings {

std::vector<std::string> split(std::string_view s, char sep);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
std::string_view trim(std::string_view s);
std::string toLower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);

// Percent-decoding for URL paths and query values ('+' is a space only in queries).
std::string urlDecode(std::string_view s, bool plusIsSpace);
std::string urlEncode(std::string_view s);

// Go's strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False; nullopt otherwise.
std::optional<bool> parseBool(std::string_view s);

// Parses a whole base-10 integer; nullopt on any junk, overflow or empty input.
std::optional<int64_t> parseInt(std::string_view s);

std::string base64Encode(std::string_view data);
// Standard alphabet with padding (what JSON []byte fields use); nullopt on malformed input.
std::optional<std::string> base64Decode(std::string_view text);
std::string base64UrlEncode(std::string_view data);  // no padding
std::optional<std::string> base64UrlDecode(std::string_view text);

// Whether `s` is non-empty and all lowercase hexadecimal digits (trace and span ids, commits).
bool isLowerHex(std::string_view s);

// Random 128-bit UUID (version 4) in canonical form.
std::string uuid4();
// `n` random lowercase alphanumerics from Kubernetes' generateName alphabet
// ("bcdfghjklmnpqrstvwxz2456789").
std::string randomSuffix(size_t n);

}  // namespace podium::strings
