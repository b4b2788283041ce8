#include "podium/api/status.h"

#include "podium/common/strings.h"

namespace podium::api {

FieldError FieldError::required(std::string field, std::string detail) {
  FieldError e;
  e.type = Type::Required;
  e.field = std::move(field);
  e.detail = std::move(detail);
  return e;
}
FieldError FieldError::invalid(std::string field, Json value, std::string detail) {
  FieldError e;
  e.type = Type::Invalid;
  e.field = std::move(field);
  e.value = std::move(value);
  e.detail = std::move(detail);
  return e;
}
FieldError FieldError::notSupported(std::string field, Json value,
                                    std::vector<std::string> supported) {
  FieldError e;
  e.type = Type::NotSupported;
  e.field = std::move(field);
  e.value = std::move(value);
  e.supported = std::move(supported);
  return e;
}
FieldError FieldError::forbidden(std::string field, std::string detail) {
  FieldError e;
  e.type = Type::Forbidden;
  e.field = std::move(field);
  e.detail = std::move(detail);
  return e;
}
FieldError FieldError::duplicate(std::string field, Json value) {
  FieldError e;
  e.type = Type::Duplicate;
  e.field = std::move(field);
  e.value = std::move(value);
  return e;
}
FieldError FieldError::tooLong(std::string field, Json value, size_t max) {
  FieldError e;
  e.type = Type::TooLong;
  e.field = std::move(field);
  e.value = std::move(value);
  e.detail = "may not be more than " + std::to_string(max) + " bytes";
  return e;
}
FieldError FieldError::typeInvalid(std::string field, Json value, std::string detail) {
  FieldError e;
  e.type = Type::TypeInvalid;
  e.field = std::move(field);
  e.value = std::move(value);
  e.detail = std::move(detail);
  return e;
}

std::string FieldError::reason() const {
  switch (type) {
    case Type::Required:
      return "FieldValueRequired";
    case Type::Invalid:
      return "FieldValueInvalid";
    case Type::NotSupported:
      return "FieldValueNotSupported";
    case Type::Forbidden:
      return "FieldValueForbidden";
    case Type::Duplicate:
      return "FieldValueDuplicate";
    case Type::TooLong:
      return "FieldValueTooLong";
    case Type::TooMany:
      return "FieldValueTooMany";
    case Type::NotFound:
      return "FieldValueNotFound";
    case Type::TypeInvalid:
      return "FieldValueTypeInvalid";
  }
  return "FieldValueInvalid";
}

std::string FieldError::typeString() const {
  switch (type) {
    case Type::Required:
      return "Required value";
    case Type::Invalid:
      return "Invalid value";
    case Type::NotSupported:
      return "Unsupported value";
    case Type::Forbidden:
      return "Forbidden";
    case Type::Duplicate:
      return "Duplicate value";
    case Type::TooLong:
      return "Too long";
    case Type::TooMany:
      return "Too many";
    case Type::NotFound:
      return "Not found";
    case Type::TypeInvalid:
      return "Invalid value";
  }
  return "Invalid value";
}

std::string renderValue(const Json& v) {
  if (v.is_string()) return v.dump();
  if (v.is_null()) return "null";
  if (v.is_object()) {
    bool allStrings = true;
    for (const auto& item : v.items()) allStrings = allStrings && item.value().is_string();
    if (allStrings) {
      std::string out = "map[string]string{";
      bool first = true;
      for (const auto& item : v.items()) {
        if (!first) out += ", ";
        first = false;
        out += Json(item.key()).dump() + ":" + item.value().dump();
      }
      return out + "}";
    }
  }
  return json::dump(v);
}

std::string FieldError::body() const {
  std::string out = typeString();
  switch (type) {
    case Type::Required:
    case Type::Forbidden:
    case Type::TooMany:
      break;
    case Type::NotSupported: {
      out += ": " + renderValue(value);
      if (!supported.empty()) {
        std::vector<std::string> quoted;
        for (const auto& s : supported) quoted.push_back(Json(s).dump());
        out += ": supported values: " + strings::join(quoted, ", ");
      }
      return out;
    }
    default:
      out += ": " + renderValue(value);
  }
  if (!detail.empty()) out += ": " + detail;
  return out;
}

std::string FieldError::str() const { return field.empty() ? body() : field + ": " + body(); }

Json ApiError::toStatus() const {
  Json s = {{"kind", "Status"},    {"apiVersion", "v1"},  {"metadata", Json::object()},
            {"status", "Failure"}, {"message", message_}, {"reason", reason_},
            {"code", code_}};
  if (!details_.is_null()) s["details"] = details_;
  if (reason_.empty()) s.erase("reason");
  return s;
}

namespace {
Json nameDetails(const std::string& group, const std::string& resource, const std::string& name) {
  // details.kind carries the plural resource name, as upstream does.
  std::string plural = resource.substr(0, resource.find('.'));
  Json d = {{"name", name}, {"kind", plural}};
  if (!group.empty()) d["group"] = group;
  return d;
}
}  // namespace

ApiError ApiError::notFound(const std::string& group, const std::string& resource,
                            const std::string& name) {
  return ApiError(404, "NotFound", resource + " \"" + name + "\" not found",
                  nameDetails(group, resource, name));
}
ApiError ApiError::alreadyExists(const std::string& group, const std::string& resource,
                                 const std::string& name) {
  return ApiError(409, "AlreadyExists", resource + " \"" + name + "\" already exists",
                  nameDetails(group, resource, name));
}
ApiError ApiError::conflict(const std::string& group, const std::string& resource,
                            const std::string& name, const std::string& why) {
  return ApiError(409, "Conflict",
                  "Operation cannot be fulfilled on " + resource + " \"" + name + "\": " + why,
                  nameDetails(group, resource, name));
}
ApiError ApiError::conflictModified(const std::string& group, const std::string& resource,
                                    const std::string& name) {
  return conflict(group, resource, name,
                  "the object has been modified; please apply your changes to the latest version "
                  "and try again");
}
ApiError ApiError::invalid(const std::string& group, const std::string& kind,
                           const std::string& name, const FieldErrors& errors) {
  std::string msg = kind + " \"" + name + "\" is invalid: ";
  if (errors.size() == 1) {
    msg += errors[0].str();
  } else {
    std::vector<std::string> parts;
    for (const auto& e : errors) parts.push_back(e.str());
    msg += "[" + strings::join(parts, ", ") + "]";
  }
  Json causes = Json::array();
  for (const auto& e : errors)
    causes.push_back({{"reason", e.reason()}, {"message", e.body()}, {"field", e.field}});
  std::string bareKind = kind.substr(0, kind.find('.'));
  Json d = {{"name", name}, {"kind", bareKind}, {"causes", causes}};
  if (!group.empty()) d["group"] = group;
  return ApiError(422, "Invalid", msg, d);
}
ApiError ApiError::badRequest(std::string message) {
  return ApiError(400, "BadRequest", std::move(message));
}
ApiError ApiError::unauthorized() { return ApiError(401, "Unauthorized", "Unauthorized"); }
ApiError ApiError::forbidden(std::string message) {
  return ApiError(403, "Forbidden", std::move(message));
}
ApiError ApiError::methodNotAllowed(std::string message) {
  return ApiError(405, "MethodNotAllowed", std::move(message));
}
ApiError ApiError::notAcceptable(std::string message) {
  return ApiError(406, "NotAcceptable", std::move(message));
}
ApiError ApiError::unsupportedMediaType(std::string message) {
  return ApiError(415, "UnsupportedMediaType", std::move(message));
}
ApiError ApiError::expired(std::string message) {
  return ApiError(410, "Expired", std::move(message));
}
ApiError ApiError::tooLarge(std::string message) {
  return ApiError(413, "RequestEntityTooLarge", std::move(message));
}
ApiError ApiError::timeout(std::string message) {
  return ApiError(504, "Timeout", std::move(message));
}
ApiError ApiError::internal(std::string message) {
  return ApiError(500, "InternalError", "Internal error occurred: " + message);
}
ApiError ApiError::serviceUnavailable(std::string message) {
  return ApiError(503, "ServiceUnavailable", std::move(message));
}

Json successStatus(const Json& details) {
  Json s = {{"kind", "Status"},
            {"apiVersion", "v1"},
            {"metadata", Json::object()},
            {"status", "Success"}};
  if (!details.is_null()) s["details"] = details;
  return s;
}

}  // namespace podium::api
