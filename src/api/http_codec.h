#pragma once

// The API's HTTP encodings: content negotiation (JSON, YAML and protobuf bodies; Table and
// PartialObjectMetadata answers), Status errors, and the query parameters of lists and writes.

#include <map>
#include <string>
#include <vector>

#include "podium/api/http.h"
#include "podium/api/resources.h"
#include "podium/api/storage.h"

namespace podium::api {

inline constexpr const char* kJson = "application/json";
inline constexpr const char* kTableType = "application/json;as=Table;v=v1;g=meta.k8s.io";

// One entry of an Accept header: "application/json;as=Table;v=v1" -> type and parameters.
struct MediaType {
  std::string type;
  std::map<std::string, std::string> params;
};
std::vector<MediaType> parseAccept(const std::string& accept);

// What the client asked to get back.
enum class Shape { Object, Table, PartialMetadata };
Shape wantedShape(const HttpRequest& req);

HttpResponse jsonResponse(int status, const Json& body, const HttpRequest& req,
                          const std::string& contentType = kJson);
HttpResponse errorResponse(const ApiError& e, const HttpRequest& req);
void addWarnings(HttpResponse& r, const std::vector<std::string>& warnings);
Json partialMetadata(const Json& obj);

// A write's body (JSON, YAML or protobuf) as an object, with its decoding warnings.
Expected<Json, ApiError> decodeWriteBody(const HttpRequest& req, const ResourceSet& set,
                                         const WriteOptions& o, std::vector<std::string>* warnings);
// fieldManager, dryRun, fieldValidation and force from the query.
Expected<WriteOptions, ApiError> writeOptions(const HttpRequest& req, bool isPatch, bool isApply);
ListOptions listOptions(const HttpRequest& req);

}  // namespace podium::api
