#include "http_codec.h"

#include <algorithm>
#include <functional>

#include "podium/common/strings.h"
#include "protobuf.h"

namespace podium::api {

// ---- content negotiation ------------------------------------------------------------------------

std::vector<MediaType> parseAccept(const std::string& accept) {
  std::vector<MediaType> out;
  for (const auto& part : strings::split(accept, ',')) {
    auto fields = strings::split(part, ';');
    MediaType m;
    m.type = strings::toLower(strings::trim(fields[0]));
    for (size_t i = 1; i < fields.size(); ++i) {
      auto kv = strings::split(fields[i], '=');
      if (kv.size() == 2)
        m.params[std::string(strings::trim(kv[0]))] = std::string(strings::trim(kv[1]));
    }
    if (!m.type.empty()) out.push_back(std::move(m));
  }
  return out;
}

Shape wantedShape(const HttpRequest& req) {
  for (const auto& m : parseAccept(req.header("accept"))) {
    auto as = m.params.find("as");
    if (as == m.params.end()) {
      if (m.type == kJson || m.type == "*/*" || m.type == "application/*") return Shape::Object;
      continue;
    }
    if (as->second == "Table") return Shape::Table;
    if (as->second == "PartialObjectMetadata" || as->second == "PartialObjectMetadataList")
      return Shape::PartialMetadata;
  }
  return Shape::Object;
}

HttpResponse jsonResponse(int status, const Json& body, const HttpRequest& req,
                          const std::string& contentType) {
  HttpResponse r;
  r.status = status;
  r.setHeader("Content-Type", contentType);
  r.setHeader("Cache-Control", "no-cache, private");
  r.body = strings::parseBool(req.param("pretty")).value_or(false)
               ? body.dump(4, ' ', false, Json::error_handler_t::replace)
               : json::dump(body);
  r.body += "\n";
  return r;
}

namespace {

// Members of `obj` named in `order` first, in that order, then any others (sorted).
std::string ordered(const Json& obj, std::initializer_list<const char*> order,
                    const std::function<std::string(const std::string&, const Json&)>& value) {
  std::string out = "{";
  auto add = [&](const std::string& k, const Json& v) {
    out += (out.size() > 1 ? "," : "") + json::dump(Json(k)) + ":" + value(k, v);
  };
  for (const char* k : order)
    if (auto it = obj.find(k); it != obj.end()) add(k, *it);
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (std::find_if(order.begin(), order.end(), [&](const char* k) { return it.key() == k; }) ==
        order.end())
      add(it.key(), it.value());
  return out + "}";
}

// A Status as Kubernetes writes it: metav1.Status's fields in their Go order (kind, apiVersion,
// metadata, status, message, reason, details, code), and StatusDetails' and StatusCause's too —
// clients that print or compare a body see what they would see from Kubernetes.
std::string statusBody(const Json& status) {
  auto plain = [](const std::string&, const Json& v) { return json::dump(v); };
  auto cause = [&](const Json& c) {
    return c.is_object() ? ordered(c, {"reason", "message", "field"}, plain) : json::dump(c);
  };
  auto details = [&](const std::string& k, const Json& v) -> std::string {
    if (k != "causes" || !v.is_array()) return json::dump(v);
    std::string out = "[";
    for (const auto& c : v) out += (out.size() > 1 ? "," : "") + cause(c);
    return out + "]";
  };
  return ordered(
      status, {"kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"},
      [&](const std::string& k, const Json& v) {
        if (k != "details" || !v.is_object()) return json::dump(v);
        return ordered(v, {"name", "group", "kind", "uid", "causes", "retryAfterSeconds"}, details);
      });
}

}  // namespace

HttpResponse errorResponse(const ApiError& e, const HttpRequest& req) {
  if (strings::parseBool(req.param("pretty")).value_or(false))
    return jsonResponse(e.code(), e.toStatus(), req);
  HttpResponse r = jsonResponse(e.code(), Json::object(), req);
  r.body = statusBody(e.toStatus()) + "\n";
  return r;
}

void addWarnings(HttpResponse& r, const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) {
    std::string escaped;
    for (char c : w) {
      if (c == '"' || c == '\\') escaped += '\\';
      escaped += c;
    }
    r.headers.emplace_back("Warning", "299 - \"" + escaped + "\"");
  }
}

Json partialMetadata(const Json& obj) {
  return {{"kind", "PartialObjectMetadata"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", obj.contains("metadata") ? obj["metadata"] : Json::object()}};
}

// ---- request decoding ---------------------------------------------------------------------------

namespace {

struct Decoded {
  Json object;
  std::vector<std::string> duplicates;
};

Expected<Decoded, ApiError> decodeBody(const HttpRequest& req, const ResourceSet& set) {
  std::string ct = strings::toLower(
      strings::trim(req.header("content-type").substr(0, req.header("content-type").find(';'))));
  Decoded d;
  if (ct == "application/vnd.kubernetes.protobuf") {
    auto obj = decodeProtobufObject(
        req.body,
        [&set](const std::string& apiVersion, const std::string& kind) -> const schema::Type* {
          std::string group, version = apiVersion;
          if (auto slash = apiVersion.find('/'); slash != std::string::npos) {
            group = apiVersion.substr(0, slash);
            version = apiVersion.substr(slash + 1);
          }
          auto r = set.findKind(group, version, kind);
          return r && !r->custom ? r->schema : nullptr;
        });
    if (!obj) return Unexpected(ApiError::badRequest(obj.error()));
    d.object = std::move(*obj);
    return d;
  }
  if (ct.empty() || ct == kJson) {
    auto parsed = json::parse(req.body);
    if (!parsed) return Unexpected(ApiError::badRequest("error decoding JSON: " + parsed.error()));
    d.object = std::move(parsed->value);
    d.duplicates = std::move(parsed->duplicates);
    return d;
  }
  if (ct == "application/yaml" || ct == "application/x-yaml" || ct == "text/yaml") {
    auto parsed = json::parseYaml(req.body);
    if (!parsed) return Unexpected(ApiError::badRequest("error decoding YAML: " + parsed.error()));
    d.object = std::move(parsed->value);
    d.duplicates = std::move(parsed->duplicates);
    return d;
  }
  return Unexpected(ApiError::unsupportedMediaType(
      "the body of the request was in an unknown format - accepted media types include: "
      "application/json, application/yaml, application/vnd.kubernetes.protobuf"));
}

// The body of a create or update, with duplicate fields refused (Strict) or reported (Warn).
}  // namespace

Expected<Json, ApiError> decodeWriteBody(const HttpRequest& req, const ResourceSet& set,
                                         const WriteOptions& opts,
                                         std::vector<std::string>* warnings) {
  auto body = decodeBody(req, set);
  if (!body) return Unexpected(body.error());
  if (!body->duplicates.empty()) {
    std::vector<std::string> parts;
    for (const auto& d : body->duplicates) parts.push_back("duplicate field \"" + d + "\"");
    if (opts.fieldValidation == FieldValidation::Strict)
      return Unexpected(
          ApiError::badRequest("strict decoding error: " + strings::join(parts, ", ")));
    if (opts.fieldValidation == FieldValidation::Warn) *warnings = parts;
  }
  return std::move(body->object);
}

Expected<WriteOptions, ApiError> writeOptions(const HttpRequest& req, bool isPatch, bool isApply) {
  WriteOptions o;
  std::string dry = req.param("dryRun");
  if (!dry.empty()) {
    if (dry != "All")
      return Unexpected(
          ApiError::badRequest("Invalid dry run value: " + dry + ": supported values: \"All\""));
    o.dryRun = true;
  }
  o.fieldManager = req.param("fieldManager");
  if (o.fieldManager.size() > 128)
    return Unexpected(ApiError::invalid(
        "", "Options", "", {FieldError::tooLong("fieldManager", o.fieldManager, 128)}));
  if (o.fieldManager.empty() && !isApply) {
    std::string ua = req.header("user-agent");
    o.fieldManager = ua.substr(0, std::min(ua.find('/'), size_t{128}));
    if (o.fieldManager.empty()) o.fieldManager = "unknown";
  }
  std::string fv = req.param("fieldValidation");
  if (fv.empty() || fv == "Warn")
    o.fieldValidation = FieldValidation::Warn;
  else if (fv == "Strict")
    o.fieldValidation = FieldValidation::Strict;
  else if (fv == "Ignore")
    o.fieldValidation = FieldValidation::Ignore;
  else
    return Unexpected(ApiError::badRequest("fieldValidation parameter unsupported: " + fv));
  std::string force = req.param("force");
  if (!force.empty()) {
    if (!isPatch || !isApply)
      return Unexpected(ApiError::badRequest("Force flag must only be set for apply patches"));
    auto f = strings::parseBool(force);
    if (!f) return Unexpected(ApiError::badRequest("invalid force value: " + force));
    o.force = *f;
  }
  return o;
}

ListOptions listOptions(const HttpRequest& req) {
  ListOptions o;
  o.labelSelector = req.param("labelSelector");
  o.fieldSelector = req.param("fieldSelector");
  if (auto l = strings::parseInt(req.param("limit")); l && *l > 0) o.limit = *l;
  o.continueToken = req.param("continue");
  o.resourceVersion = req.param("resourceVersion");
  o.resourceVersionMatch = req.param("resourceVersionMatch");
  return o;
}

}  // namespace podium::api
