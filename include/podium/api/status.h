#pragma once

// Kubernetes Status errors, worded as kube-apiserver words them (apimachinery's
// pkg/api/errors and pkg/util/validation/field), so clients print familiar messages.

#include <string>
#include <vector>

#include "podium/common/json.h"

namespace podium::api {

// One validation failure at a field path ("spec.template.spec.containers[0].image").
struct FieldError {
  enum class Type {
    Required,
    Invalid,
    NotSupported,
    Forbidden,
    Duplicate,
    TooLong,
    TooMany,
    NotFound,
    TypeInvalid
  };
  Type type = Type::Invalid;
  std::string field;
  Json value;  // the offending value (Invalid, NotSupported, ...)
  std::string detail;
  std::vector<std::string> supported;  // NotSupported: the allowed values

  static FieldError required(std::string field, std::string detail = "");
  static FieldError invalid(std::string field, Json value, std::string detail);
  static FieldError notSupported(std::string field, Json value, std::vector<std::string> supported);
  static FieldError forbidden(std::string field, std::string detail);
  static FieldError duplicate(std::string field, Json value);
  static FieldError tooLong(std::string field, Json value, size_t max);
  static FieldError typeInvalid(std::string field, Json value, std::string detail);

  std::string reason() const;      // "FieldValueInvalid", ...
  std::string typeString() const;  // "Invalid value", ...
  std::string body() const;        // "Invalid value: -1: must be greater than or equal to 0"
  std::string str() const;         // "spec.replicas: Invalid value: -1: must be ..."
};
using FieldErrors = std::vector<FieldError>;

// Go's %#v-like rendering of a JSON value, as field errors print it ("abc" quoted, 3 bare).
std::string renderValue(const Json& v);

class ApiError {
 public:
  ApiError() = default;
  ApiError(int code, std::string reason, std::string message, Json details = nullptr)
      : code_(code),
        reason_(std::move(reason)),
        message_(std::move(message)),
        details_(std::move(details)) {}

  int code() const { return code_; }
  const std::string& reason() const { return reason_; }
  const std::string& message() const { return message_; }
  const Json& details() const { return details_; }
  Json toStatus() const;

  // `resource` is the qualified resource ("deployments.apps"); `group` its group.
  static ApiError notFound(const std::string& group, const std::string& resource,
                           const std::string& name);
  static ApiError alreadyExists(const std::string& group, const std::string& resource,
                                const std::string& name);
  static ApiError conflict(const std::string& group, const std::string& resource,
                           const std::string& name, const std::string& why);
  static ApiError conflictModified(const std::string& group, const std::string& resource,
                                   const std::string& name);
  // `kind` is the qualified kind ("Deployment.apps").
  static ApiError invalid(const std::string& group, const std::string& kind,
                          const std::string& name, const FieldErrors& errors);
  static ApiError badRequest(std::string message);
  static ApiError unauthorized();
  static ApiError forbidden(std::string message);
  static ApiError methodNotAllowed(std::string message);
  static ApiError notAcceptable(std::string message);
  static ApiError unsupportedMediaType(std::string message);
  static ApiError expired(std::string message);
  static ApiError tooLarge(std::string message);
  static ApiError timeout(std::string message);
  static ApiError internal(std::string message);
  static ApiError serviceUnavailable(std::string message);

 private:
  int code_ = 500;
  std::string reason_ = "InternalError";
  std::string message_;
  Json details_;
};

// A Status reporting success (what DELETE returns for some resources).
Json successStatus(const Json& details);

}  // namespace podium::api
