// A container's environment (service links, envFrom, env with $(VAR) references, fieldRef,
// resourceFieldRef, ConfigMap and Secret keys) and its volume mounts (emptyDir, hostPath,
// configMap, secret, downwardAPI, projected), resolved the way the kubelet does.
#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "agent_impl.h"
#include "podium/api/quantity.h"
#include "podium/common/strings.h"

namespace podium::node {

namespace res = client::resources;
namespace fs = std::filesystem;
using client::nameOf;
using client::namespaceOf;
using client::Resource;

std::string expandVars(const std::string& in, const std::map<std::string, std::string>& env) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '$' && i + 1 < in.size() && in[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (in[i] == '$' && i + 1 < in.size() && in[i + 1] == '(') {
      auto close = in.find(')', i + 2);
      if (close != std::string::npos) {
        auto it = env.find(in.substr(i + 2, close - i - 2));
        if (it != env.end()) {
          out += it->second;
          i = close;
          continue;
        }
      }
    }
    out += in[i];
  }
  return out;
}

namespace {

using Env = std::vector<std::pair<std::string, std::string>>;

std::string envName(const std::string& serviceName) {
  std::string out;
  for (char c : serviceName)
    out += c == '-' ? '_' : static_cast<char>(toupper(static_cast<unsigned char>(c)));
  return out;
}

// The docker-links style variables for one Service.
void serviceEnv(const Json& svc, Env& out) {
  std::string ip = json::getString(svc, {"spec", "clusterIP"});
  if (ip.empty() || ip == "None") return;
  const Json& ports = at(svc, {"spec", "ports"});
  if (!ports.is_array() || ports.empty()) return;
  std::string n = envName(nameOf(svc));
  auto portStr = [](const Json& p) { return std::to_string(json::integer(p, "port")); };
  out.emplace_back(n + "_SERVICE_HOST", ip);
  out.emplace_back(n + "_SERVICE_PORT", portStr(ports[0]));
  for (const auto& p : ports)
    if (!json::str(p, "name").empty())
      out.emplace_back(n + "_SERVICE_PORT_" + envName(json::str(p, "name")), portStr(p));
  std::string proto0 = strings::toLower(json::str(ports[0], "protocol", "TCP"));
  out.emplace_back(n + "_PORT", proto0 + "://" + ip + ":" + portStr(ports[0]));
  for (const auto& p : ports) {
    std::string proto = json::str(p, "protocol", "TCP");
    std::string prefix = n + "_PORT_" + portStr(p) + "_" + proto;
    out.emplace_back(prefix, strings::toLower(proto) + "://" + ip + ":" + portStr(p));
    out.emplace_back(prefix + "_PROTO", strings::toLower(proto));
    out.emplace_back(prefix + "_PORT", portStr(p));
    out.emplace_back(prefix + "_ADDR", ip);
  }
}

// metadata.labels['app'] style selectors, as the downward API takes them.
Expected<std::string, std::string> fieldValue(const Json& pod, const std::string& path,
                                              const std::string& nodeIp) {
  auto subscript = [&](const std::string& prefix, const char* field) -> std::optional<std::string> {
    if (path.rfind(prefix + "['", 0) != 0 || path.size() < prefix.size() + 4) return std::nullopt;
    std::string key = path.substr(prefix.size() + 2, path.size() - prefix.size() - 4);
    return json::getString(pod, {"metadata", field, key});
  };
  if (auto v = subscript("metadata.labels", "labels")) return *v;
  if (auto v = subscript("metadata.annotations", "annotations")) return *v;
  auto keyValues = [&](const char* field) {
    std::vector<std::string> lines;
    for (const auto& [k, v] : at(pod, {"metadata", field}).items())
      if (v.is_string()) lines.push_back(k + "=\"" + v.get<std::string>() + "\"");
    std::sort(lines.begin(), lines.end());
    return strings::join(lines, "\n");
  };
  if (path == "metadata.labels") return keyValues("labels");
  if (path == "metadata.annotations") return keyValues("annotations");
  if (path == "metadata.name") return nameOf(pod);
  if (path == "metadata.namespace") return namespaceOf(pod);
  if (path == "metadata.uid") return json::getString(pod, {"metadata", "uid"});
  if (path == "spec.nodeName") return json::getString(pod, {"spec", "nodeName"});
  if (path == "spec.serviceAccountName")
    return json::getString(pod, {"spec", "serviceAccountName"});
  if (path == "status.hostIP" || path == "status.hostIPs") return nodeIp;
  if (path == "status.podIP" || path == "status.podIPs")
    return json::getString(pod, {"status", "podIP"});
  return Unexpected("unsupported fieldRef fieldPath \"" + path + "\"");
}

Expected<std::string, std::string> resourceValue(const Json& pod, const Json& container,
                                                 const Json& ref) {
  std::string resource = json::str(ref, "resource");
  const Json* c = &container;
  std::string cname = json::str(ref, "containerName");
  if (!cname.empty())
    for (const auto& other : at(pod, {"spec", "containers"}))
      if (json::str(other, "name") == cname) c = &other;
  auto dot = resource.find('.');
  if (dot == std::string::npos)
    return Unexpected("unsupported resourceFieldRef resource \"" + resource + "\"");
  std::string kind = resource.substr(0, dot), name = resource.substr(dot + 1);
  if (kind != "limits" && kind != "requests")
    return Unexpected("unsupported resourceFieldRef resource \"" + resource + "\"");
  const Json& q = at(*c, {"resources", kind, name});
  double divisor = 1;
  if (ref.contains("divisor")) {
    auto d = api::parseQuantity(ref["divisor"].is_string()
                                    ? ref["divisor"].get<std::string>()
                                    : std::to_string(json::integer(ref, "divisor", 1)));
    if (d && *d > 0) divisor = *d;
  }
  double v;
  if (q.is_null()) {
    // Unset limits report the node's allocatable, as upstream does.
    if (kind == "requests") return std::string("0");
    if (name == "cpu")
      v = static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
    else if (name == "memory")
      v = static_cast<double>(sysconf(_SC_PHYS_PAGES)) *
          static_cast<double>(sysconf(_SC_PAGE_SIZE));
    else
      v = 0;
  } else {
    auto parsed = api::parseQuantity(q.is_string() ? q.get<std::string>() : q.dump());
    v = parsed.value_or(0);
  }
  return std::to_string(static_cast<int64_t>(std::ceil(v / divisor)));
}

}  // namespace

Expected<std::vector<std::pair<std::string, std::string>>, std::string> AgentImpl::environment(
    const Json& pod, const Json& container) {
  std::string ns = namespaceOf(pod);
  Env out;
  std::map<std::string, std::string> seen;
  auto set = [&](const std::string& k, const std::string& v) {
    seen[k] = v;
    for (auto& kv : out)
      if (kv.first == k) {
        kv.second = v;
        return;
      }
    out.emplace_back(k, v);
  };
  if (json::boolean(at(pod, {"spec"}), "enableServiceLinks", true)) {
    Env links;
    for (const auto& svc : services_->list(ns)) serviceEnv(*svc, links);
    if (ns != "default")
      if (auto k = services_->get("default", "kubernetes")) serviceEnv(*k, links);
    for (const auto& [k, v] : links) set(k, v);
  }
  auto fetch = [&](const Resource& r, const std::string& name) -> Expected<Json, std::string> {
    auto obj = client_.get(r, ns, name);
    if (!obj)
      return Unexpected(std::string(r.plural == "secrets" ? "secret" : "configmap") + " \"" + name +
                        "\" not found");
    return *obj;
  };
  auto dataOf = [](const Json& obj, bool secret) {
    std::map<std::string, std::string> data;
    for (const auto& [k, v] : at(obj, {"data"}).items()) {
      if (!v.is_string()) continue;
      if (secret)
        data[k] = strings::base64Decode(v.get<std::string>()).value_or("");
      else
        data[k] = v.get<std::string>();
    }
    if (!secret)
      for (const auto& [k, v] : at(obj, {"binaryData"}).items())
        if (v.is_string()) data[k] = strings::base64Decode(v.get<std::string>()).value_or("");
    return data;
  };
  for (const auto& from : at(container, {"envFrom"})) {
    std::string prefix = json::str(from, "prefix");
    bool secret = from.contains("secretRef");
    const Json& ref = secret ? from["secretRef"] : at(from, {"configMapRef"});
    auto obj = fetch(secret ? res::kSecrets : res::kConfigMaps, json::str(ref, "name"));
    if (!obj) {
      if (json::boolean(ref, "optional")) continue;
      return Unexpected(obj.error());
    }
    for (const auto& [k, v] : dataOf(*obj, secret)) set(prefix + k, v);
  }
  for (const auto& e : at(container, {"env"})) {
    std::string name = json::str(e, "name");
    if (e.contains("value") || !e.contains("valueFrom")) {
      set(name, expandVars(json::str(e, "value"), seen));
      continue;
    }
    const Json& from = e["valueFrom"];
    if (from.contains("fieldRef")) {
      auto v = fieldValue(pod, json::str(from["fieldRef"], "fieldPath"), opts_.nodeIp);
      if (!v) return Unexpected(v.error());
      set(name, *v);
    } else if (from.contains("resourceFieldRef")) {
      auto v = resourceValue(pod, container, from["resourceFieldRef"]);
      if (!v) return Unexpected(v.error());
      set(name, *v);
    } else if (from.contains("configMapKeyRef") || from.contains("secretKeyRef")) {
      bool secret = from.contains("secretKeyRef");
      const Json& ref = secret ? from["secretKeyRef"] : from["configMapKeyRef"];
      std::string objName = json::str(ref, "name"), key = json::str(ref, "key");
      auto obj = fetch(secret ? res::kSecrets : res::kConfigMaps, objName);
      if (!obj) {
        if (json::boolean(ref, "optional")) continue;
        return Unexpected(obj.error());
      }
      auto data = dataOf(*obj, secret);
      auto it = data.find(key);
      if (it == data.end()) {
        if (json::boolean(ref, "optional")) continue;
        return Unexpected("couldn't find key " + key + " in " +
                          (secret ? "Secret " : "ConfigMap ") + ns + "/" + objName);
      }
      set(name, it->second);
    }
  }
  return out;
}

namespace {

Expected<void, std::string> writeFile(const fs::path& path, const std::string& content, int mode) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << content;
  if (!f) return Unexpected("writing " + path.string() + " failed");
  f.close();
  chmod(path.c_str(), static_cast<mode_t>(mode));
  return {};
}

// Writes `data` (key -> bytes) as files, honouring `items` (key, path, mode) and defaultMode.
Expected<void, std::string> writeKeys(const fs::path& dir,
                                      const std::map<std::string, std::string>& data,
                                      const Json& items, int defaultMode, const std::string& what) {
  if (items.is_array() && !items.empty()) {
    for (const auto& item : items) {
      std::string key = json::str(item, "key");
      auto it = data.find(key);
      if (it == data.end())
        return Unexpected("configmap references non-existent config key: " + key + " (" + what +
                          ")");
      std::string rel = json::str(item, "path", key);
      if (rel.find("..") != std::string::npos || (!rel.empty() && rel[0] == '/'))
        return Unexpected("invalid path \"" + rel + "\" in " + what);
      if (auto r = writeFile(dir / rel, it->second,
                             static_cast<int>(json::integer(item, "mode", defaultMode)));
          !r)
        return r;
    }
    return {};
  }
  for (const auto& [k, v] : data)
    if (auto r = writeFile(dir / k, v, defaultMode); !r) return r;
  return {};
}

}  // namespace

Expected<std::vector<runtime::v1::Mount>, std::string> AgentImpl::mounts(const Json& pod,
                                                                         const Json& container) {
  std::string ns = namespaceOf(pod);
  std::string uid = json::getString(pod, {"metadata", "uid"});
  fs::path volumesDir = fs::path(podDir(uid)) / "volumes";
  std::map<std::string, const Json*> volumes;
  for (const auto& v : at(pod, {"spec", "volumes"})) volumes[json::str(v, "name")] = &v;

  auto objectData = [&](const Resource& r, const Json& source, const std::string& nameField,
                        bool secret,
                        std::map<std::string, std::string>* data) -> Expected<bool, std::string> {
    std::string name = json::str(source, nameField);
    auto obj = client_.get(r, ns, name);
    if (!obj) {
      if (json::boolean(source, "optional")) return false;
      return Unexpected(std::string(secret ? "secret" : "configmap") + " \"" + name +
                        "\" not found");
    }
    for (const auto& [k, v] : at(*obj, {"data"}).items())
      if (v.is_string())
        (*data)[k] = secret ? strings::base64Decode(v.get<std::string>()).value_or("")
                            : v.get<std::string>();
    for (const auto& [k, v] : at(*obj, {"binaryData"}).items())
      if (v.is_string()) (*data)[k] = strings::base64Decode(v.get<std::string>()).value_or("");
    return true;
  };
  auto downward = [&](const fs::path& dir, const Json& items,
                      int defaultMode) -> Expected<void, std::string> {
    for (const auto& item : items) {
      std::string value;
      if (item.contains("fieldRef")) {
        auto v = fieldValue(pod, json::str(item["fieldRef"], "fieldPath"), opts_.nodeIp);
        if (!v) return Unexpected(v.error());
        value = *v;
      } else if (item.contains("resourceFieldRef")) {
        auto v = resourceValue(pod, container, item["resourceFieldRef"]);
        if (!v) return Unexpected(v.error());
        value = *v;
      }
      if (auto r = writeFile(dir / json::str(item, "path"), value,
                             static_cast<int>(json::integer(item, "mode", defaultMode)));
          !r)
        return r;
    }
    return {};
  };
  // Materializes one volume on the host; returns its host path.
  auto prepare = [&](const std::string& name, const Json& v) -> Expected<std::string, std::string> {
    std::error_code ec;
    if (v.contains("hostPath")) {
      std::string path = json::str(v["hostPath"], "path");
      std::string type = json::str(v["hostPath"], "type");
      if (type == "DirectoryOrCreate")
        fs::create_directories(path, ec);
      else if (type == "FileOrCreate" && !fs::exists(path))
        std::ofstream(path).close();
      else if (type == "Directory" && !fs::is_directory(path))
        return Unexpected("hostPath type check failed: " + path + " is not a directory");
      else if (type == "File" && !fs::is_regular_file(path))
        return Unexpected("hostPath type check failed: " + path + " is not a file");
      return path;
    }
    if (v.contains("persistentVolumeClaim")) {
      std::string claimName = json::str(v["persistentVolumeClaim"], "claimName");
      auto claim = client_.get(res::kPersistentVolumeClaims, ns, claimName);
      if (!claim) return Unexpected("persistentvolumeclaim \"" + claimName + "\" not found");
      std::string pvName = json::getString(*claim, {"spec", "volumeName"});
      if (pvName.empty() || json::getString(*claim, {"status", "phase"}) != "Bound")
        return Unexpected("persistentvolumeclaim \"" + claimName + "\" is not bound");
      auto pv = client_.get(res::kPersistentVolumes, "", pvName);
      if (!pv) return Unexpected("persistentvolume \"" + pvName + "\" not found");
      const Json& spec = at(*pv, {"spec"});
      std::string path = json::getString(spec, {"hostPath", "path"});
      if (path.empty()) path = json::getString(spec, {"local", "path"});
      if (path.empty())
        return Unexpected("persistentvolume \"" + pvName + "\" has no hostPath or local path");
      std::string type = json::getString(spec, {"hostPath", "type"});
      if (type == "DirectoryOrCreate") fs::create_directories(path, ec);
      if (!fs::is_directory(path))
        return Unexpected("persistentvolume \"" + pvName + "\": " + path + " is not a directory");
      return path;
    }
    if (v.contains("emptyDir")) {
      fs::path dir = volumesDir / "empty-dir" / name;
      fs::create_directories(dir, ec);
      chmod(dir.c_str(), 0777);
      return dir.string();
    }
    fs::path dir = volumesDir / "files" / name;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    if (v.contains("configMap") || v.contains("secret")) {
      bool secret = v.contains("secret");
      const Json& src = secret ? v["secret"] : v["configMap"];
      std::map<std::string, std::string> data;
      auto found = objectData(secret ? res::kSecrets : res::kConfigMaps, src,
                              secret ? "secretName" : "name", secret, &data);
      if (!found) return Unexpected(found.error());
      auto r =
          writeKeys(dir, data, at(src, {"items"}),
                    static_cast<int>(json::integer(src, "defaultMode", 0644)), "volume " + name);
      if (!r) return Unexpected(r.error());
      return dir.string();
    }
    if (v.contains("downwardAPI")) {
      const Json& src = v["downwardAPI"];
      if (auto r = downward(dir, at(src, {"items"}),
                            static_cast<int>(json::integer(src, "defaultMode", 0644)));
          !r)
        return Unexpected(r.error());
      return dir.string();
    }
    if (v.contains("projected")) {
      const Json& src = v["projected"];
      int mode = static_cast<int>(json::integer(src, "defaultMode", 0644));
      for (const auto& s : at(src, {"sources"})) {
        if (s.contains("configMap") || s.contains("secret")) {
          bool secret = s.contains("secret");
          const Json& ref = secret ? s["secret"] : s["configMap"];
          std::map<std::string, std::string> data;
          auto found =
              objectData(secret ? res::kSecrets : res::kConfigMaps, ref, "name", secret, &data);
          if (!found) return Unexpected(found.error());
          if (auto r = writeKeys(dir, data, at(ref, {"items"}), mode, "volume " + name); !r)
            return Unexpected(r.error());
        } else if (s.contains("downwardAPI")) {
          if (auto r = downward(dir, at(s["downwardAPI"], {"items"}), mode); !r)
            return Unexpected(r.error());
        } else if (s.contains("serviceAccountToken")) {
          return Unexpected("volume " + name +
                            ": serviceAccountToken projections are not supported yet");
        }
      }
      return dir.string();
    }
    return Unexpected("volume " + name +
                      " has a type this node does not support (supported: emptyDir, hostPath, "
                      "persistentVolumeClaim, configMap, secret, downwardAPI, projected)");
  };

  std::vector<runtime::v1::Mount> out;
  bool etcHosts = !json::boolean(at(pod, {"spec"}), "hostNetwork");
  for (const auto& vm : at(container, {"volumeMounts"})) {
    std::string name = json::str(vm, "name");
    auto it = volumes.find(name);
    if (it == volumes.end())
      return Unexpected("unable to find volume \"" + name + "\" for volumeMount");
    auto host = prepare(name, *it->second);
    if (!host) return Unexpected(host.error());
    std::string hostPath = *host;
    std::string sub = json::str(vm, "subPath");
    if (!sub.empty()) {
      if (sub.find("..") != std::string::npos || sub[0] == '/')
        return Unexpected("invalid subPath \"" + sub + "\"");
      hostPath += "/" + sub;
      std::error_code ec;
      if (!fs::exists(hostPath)) fs::create_directories(hostPath, ec);
    }
    runtime::v1::Mount m;
    m.set_container_path(json::str(vm, "mountPath"));
    m.set_host_path(hostPath);
    m.set_readonly(json::boolean(vm, "readOnly") ||
                   json::boolean(at(*it->second, {"persistentVolumeClaim"}), "readOnly"));
    if (m.container_path() == "/etc/hosts") etcHosts = false;
    out.push_back(std::move(m));
  }
  if (etcHosts) {
    runtime::v1::Mount m;
    m.set_container_path("/etc/hosts");
    m.set_host_path(podDir(uid) + "/etc-hosts");
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace podium::node
