#pragma once

// Kubernetes' rules for names, keys and values (apimachinery's validation of metadata), for
// every caller that names objects: each returns "" when `s` is valid, else Kubernetes'
// explanation ("a lowercase RFC 1123 subdomain must consist of ...").

#include <string>

namespace podium::api::validation {

std::string dns1123Subdomain(const std::string& s);
std::string dns1123Label(const std::string& s);
std::string dns1035Label(const std::string& s);
std::string qualifiedName(const std::string& s);
std::string labelValue(const std::string& s);
std::string pathSegmentName(const std::string& s);

}  // namespace podium::api::validation
