#include "patch.h"

#include <algorithm>

#include "podium/common/strings.h"

namespace podium::api {

std::optional<PatchType> patchTypeFor(const std::string& contentType) {
  std::string ct = strings::toLower(contentType.substr(0, contentType.find(';')));
  ct = std::string(strings::trim(ct));
  if (ct == "application/json-patch+json") return PatchType::JsonPatch;
  if (ct == "application/merge-patch+json") return PatchType::MergePatch;
  if (ct == "application/strategic-merge-patch+json") return PatchType::StrategicMerge;
  if (ct == "application/apply-patch+yaml" || ct == "application/apply-patch+json" ||
      ct == "application/apply-patch+cbor")
    return PatchType::Apply;
  return std::nullopt;
}

namespace {

ApiError unprocessable(const std::string& message) { return ApiError(422, "Invalid", message); }

Expected<Json, ApiError> parseBody(const std::string& body) {
  auto parsed = json::parse(body);
  if (!parsed) return Unexpected(ApiError::badRequest("error decoding patch: " + parsed.error()));
  return std::move(parsed->value);
}

}  // namespace

Expected<Json, ApiError> applyJsonPatch(const Json& original, const std::string& body) {
  auto patch = parseBody(body);
  if (!patch) return Unexpected(patch.error());
  if (!patch->is_array())
    return Unexpected(ApiError::badRequest(
        "json: cannot unmarshal object into Go value of type jsonpatch.Patch"));
  for (const auto& op : *patch) {
    if (!op.is_object() || !op.contains("op") || !op["op"].is_string())
      return Unexpected(ApiError::badRequest("json patch operation is missing \"op\""));
    std::string name = op["op"].get<std::string>();
    if (name != "add" && name != "remove" && name != "replace" && name != "move" &&
        name != "copy" && name != "test")
      return Unexpected(unprocessable("Unexpected kind: " + name));
    if (!op.contains("path") || !op["path"].is_string())
      return Unexpected(unprocessable("operation " + name + " is missing path"));
  }
  try {
    return original.patch(*patch);
  } catch (const Json::exception& e) {
    std::string what = e.what();
    auto pos = what.find("] ");
    if (pos != std::string::npos) what = what.substr(pos + 2);
    if (what.find("unsuccessful: ") != std::string::npos)
      what =
          "testing value " + what.substr(what.find("unsuccessful: ") + 14) + " failed: test failed";
    return Unexpected(unprocessable(what));
  }
}

Expected<Json, ApiError> applyMergePatch(const Json& original, const std::string& body) {
  auto patch = parseBody(body);
  if (!patch) return Unexpected(patch.error());
  if (!patch->is_object())
    return Unexpected(ApiError::badRequest("merge patch must be a JSON object"));
  Json out = original;
  out.merge_patch(*patch);
  return out;
}

// ----------------------------------------------------------------------------- strategic merge

namespace {

using schema::Field;
using schema::Kind;
using schema::Type;

constexpr const char* kPatch = "$patch";
constexpr const char* kRetainKeys = "$retainKeys";
constexpr const char* kSetOrderPrefix = "$setElementOrder/";
constexpr const char* kDeletePrimitivePrefix = "$deleteFromPrimitiveList/";

bool isDirectiveKey(const std::string& k) { return !k.empty() && k[0] == '$'; }

// Removes directives from a value being added wholesale (no original to merge with).
Json stripDirectives(const Json& v) {
  if (v.is_object()) {
    Json out = Json::object();
    for (const auto& item : v.items()) {
      if (isDirectiveKey(item.key())) continue;
      if (item.value().is_null()) continue;
      out[item.key()] = stripDirectives(item.value());
    }
    return out;
  }
  if (v.is_array()) {
    Json out = Json::array();
    for (const auto& item : v) {
      if (item.is_object() && item.contains(kPatch)) {
        std::string d = item[kPatch].is_string() ? item[kPatch].get<std::string>() : "";
        if (d == "delete") continue;
      }
      out.push_back(stripDirectives(item));
    }
    return out;
  }
  return v;
}

class Merger {
 public:
  Expected<Json, std::string> mergeObject(const Json& original, const Json& patch, const Type* type,
                                          const std::string& path) {
    Json out = original.is_object() ? original : Json::object();
    if (patch.contains(kPatch)) {
      std::string d = patch[kPatch].is_string() ? patch[kPatch].get<std::string>() : "";
      if (d == "replace") {
        Json copy = patch;
        copy.erase(kPatch);
        return stripDirectives(copy);
      }
      if (d == "delete") return Json();  // caller removes
      if (d != "merge") return Unexpected(path + ": unknown patch type: " + d);
    }
    // $deleteFromPrimitiveList/<field>
    for (const auto& item : patch.items()) {
      if (item.key().rfind(kDeletePrimitivePrefix, 0) != 0) continue;
      std::string field = item.key().substr(strlen(kDeletePrimitivePrefix));
      if (!item.value().is_array()) return Unexpected(path + "." + item.key() + ": must be a list");
      if (out.contains(field) && out[field].is_array()) {
        Json kept = Json::array();
        for (const auto& v : out[field]) {
          bool drop = false;
          for (const auto& d : item.value()) drop = drop || d == v;
          if (!drop) kept.push_back(v);
        }
        out[field] = kept;
      }
    }
    for (const auto& item : patch.items()) {
      const std::string& key = item.key();
      if (isDirectiveKey(key)) continue;
      const Field* f = (type && type->kind == Kind::Object) ? type->field(key) : nullptr;
      const Type* ft = f ? f->type : (type && type->kind == Kind::Map ? type->elem : nullptr);
      std::string child = path.empty() ? key : path + "." + key;
      if (item.value().is_null()) {
        out.erase(key);
        continue;
      }
      if (!out.contains(key) || out[key].is_null()) {
        if (item.value().is_object() && item.value().contains(kPatch) &&
            item.value()[kPatch] == "delete")
          continue;
        out[key] = stripDirectives(item.value());
        continue;
      }
      auto merged = mergeValue(out[key], item.value(), ft, f, child);
      if (!merged) return merged;
      if (merged->is_null())
        out.erase(key);
      else
        out[key] = std::move(*merged);
    }
    // $setElementOrder/<field>: reorder list items to the order the patch author sees.
    for (const auto& item : patch.items()) {
      if (item.key().rfind(kSetOrderPrefix, 0) != 0) continue;
      std::string field = item.key().substr(strlen(kSetOrderPrefix));
      if (!out.contains(field) || !out[field].is_array() || !item.value().is_array()) continue;
      const Field* f = (type && type->kind == Kind::Object) ? type->field(field) : nullptr;
      out[field] = reorder(out[field], item.value(), f ? f->mergeKey : "");
    }
    if (patch.contains(kRetainKeys)) {
      const Json& keep = patch[kRetainKeys];
      if (!keep.is_array()) return Unexpected(path + ".$retainKeys: must be a list");
      for (auto it = out.begin(); it != out.end();) {
        bool retained = false;
        for (const auto& k : keep)
          retained = retained || (k.is_string() && k.get<std::string>() == it.key());
        if (!retained)
          it = out.erase(it);
        else
          ++it;
      }
    }
    return out;
  }

 private:
  Expected<Json, std::string> mergeValue(const Json& original, const Json& patch, const Type* type,
                                         const Field* field, const std::string& path) {
    if (patch.is_object() && original.is_object() &&
        (!type || type->kind == Kind::Object || type->kind == Kind::Map)) {
      if (type && type->kind == Kind::Map && type->elem && type->elem->kind != Kind::Object &&
          type->elem->kind != Kind::Map) {
        // map[string]scalar: plain key-wise merge with null deletion.
        return mergeObject(original, patch, type, path);
      }
      return mergeObject(original, patch, type, path);
    }
    if (patch.is_array() && original.is_array() && field && type && type->kind == Kind::List) {
      if (!field->mergeKey.empty())
        return mergeKeyedList(original, patch, type->elem, field->mergeKey, path);
      if (field->mergeSet) return mergePrimitiveList(original, patch);
    }
    return stripDirectives(patch);
  }

  Expected<Json, std::string> mergeKeyedList(const Json& original, const Json& patch,
                                             const Type* elem, const std::string& key,
                                             const std::string& path) {
    // A {"$patch": "replace"} element replaces the whole list with the other elements.
    for (const auto& p : patch)
      if (p.is_object() && p.contains(kPatch) && p[kPatch] == "replace") {
        Json out = Json::array();
        for (const auto& q : patch)
          if (!(q.is_object() && q.contains(kPatch))) out.push_back(stripDirectives(q));
        return out;
      }
    Json out = original;
    for (const auto& p : patch) {
      if (!p.is_object()) return Unexpected(path + ": list item is not an object");
      if (!p.contains(key)) {
        if (p.contains(kPatch)) continue;
        return Unexpected(path + ": map: " + json::dump(p) +
                          " does not contain declared merge key: " + key);
      }
      auto it = std::find_if(out.begin(), out.end(), [&](const Json& o) {
        return o.is_object() && o.contains(key) && o[key] == p[key];
      });
      bool del = p.contains(kPatch) && p[kPatch] == "delete";
      if (del) {
        if (it != out.end()) out.erase(it);
        continue;
      }
      if (it == out.end()) {
        out.push_back(stripDirectives(p));
      } else {
        auto merged = mergeObject(*it, p, elem, path + "[" + key + "=" + json::dump(p[key]) + "]");
        if (!merged) return merged;
        if (merged->is_null())
          out.erase(it);
        else
          *it = std::move(*merged);
      }
    }
    return out;
  }

  Json mergePrimitiveList(const Json& original, const Json& patch) {
    Json out = original;
    for (const auto& v : patch)
      if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
    return out;
  }

  // Items named in `order` first, in that order; the rest keep their relative order after.
  Json reorder(const Json& list, const Json& order, const std::string& key) {
    auto matches = [&](const Json& item, const Json& o) {
      if (key.empty()) return item == o;
      return item.is_object() && o.is_object() && item.contains(key) && o.contains(key) &&
             item[key] == o[key];
    };
    Json out = Json::array();
    std::vector<bool> used(list.size(), false);
    for (const auto& o : order)
      for (size_t i = 0; i < list.size(); ++i)
        if (!used[i] && matches(list[i], o)) {
          out.push_back(list[i]);
          used[i] = true;
          break;
        }
    for (size_t i = 0; i < list.size(); ++i)
      if (!used[i]) out.push_back(list[i]);
    return out;
  }
};

}  // namespace

Expected<Json, std::string> strategicMerge(const Json& original, const Json& patch,
                                           const schema::Type* type) {
  if (!patch.is_object())
    return Unexpected(std::string("strategic merge patch must be a JSON object"));
  Merger m;
  return m.mergeObject(original, patch, type, "");
}

Expected<Json, ApiError> applyStrategicMergePatch(const Json& original, const std::string& body,
                                                  const schema::Type* type) {
  auto patch = parseBody(body);
  if (!patch) return Unexpected(patch.error());
  auto merged = strategicMerge(original, *patch, type);
  if (!merged) return Unexpected(unprocessable(merged.error()));
  return std::move(*merged);
}

}  // namespace podium::api
