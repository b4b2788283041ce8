// Validation of PersistentVolume, PersistentVolumeClaim and StorageClass (Kubernetes'
// pkg/apis/core/validation and pkg/apis/storage/validation, the rules users meet).

#include <algorithm>

#include "podium/api/quantity.h"
#include "validation.h"

namespace podium::api {

using validation::at;
using validation::validateEnum;

namespace {

void accessModes(const Json& modes, const std::string& path, FieldErrors& errs) {
  if (!modes.is_array() || modes.empty()) {
    errs.push_back(FieldError::required(path));
    return;
  }
  for (size_t i = 0; i < modes.size(); ++i)
    validateEnum(modes[i], path + "[" + std::to_string(i) + "]",
                 {"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"}, errs);
}

void storageQuantity(const Json& v, const std::string& path, FieldErrors& errs) {
  if (v.is_null()) {
    errs.push_back(FieldError::required(path));
    return;
  }
  if (!v.is_string() && !v.is_number()) return;  // the schema check names the type
  auto q = parseQuantity(v.is_string() ? v.get<std::string>() : json::dump(v));
  if (!q || *q <= 0) errs.push_back(FieldError::invalid(path, v, "must be greater than zero"));
}

void validateVolume(const Json& pv, FieldErrors& errs) {
  const Json& spec = at(pv, "spec");
  storageQuantity(at(at(spec, "capacity"), "storage"), "spec.capacity[storage]", errs);
  accessModes(at(spec, "accessModes"), "spec.accessModes", errs);
  validateEnum(at(spec, "persistentVolumeReclaimPolicy"), "spec.persistentVolumeReclaimPolicy",
               {"Delete", "Recycle", "Retain"}, errs);
  validateEnum(at(spec, "volumeMode"), "spec.volumeMode", {"Block", "Filesystem"}, errs);
  bool host = !at(spec, "hostPath").is_null(), local = !at(spec, "local").is_null();
  if (!host && !local) {
    for (const char* other : {"nfs", "csi"})
      if (!at(spec, other).is_null()) {
        errs.push_back(
            FieldError::forbidden(std::string("spec.") + other,
                                  "this server mounts only hostPath and local persistent volumes"));
        return;
      }
    errs.push_back(FieldError::required("spec", "must specify a volume type"));
  } else if (host && local) {
    errs.push_back(FieldError::forbidden("spec.local", "may not specify more than 1 volume type"));
  }
  const char* source = host ? "hostPath" : "local";
  if ((host || local) && json::getString(spec, {source, "path"}).empty())
    errs.push_back(FieldError::required(std::string("spec.") + source + ".path"));
  if (local && at(spec, "nodeAffinity").is_null())
    errs.push_back(
        FieldError::required("spec.nodeAffinity", "Local volume requires node affinity"));
}

void validateClaim(const Json& pvc, const Json* old, FieldErrors& errs) {
  const Json& spec = at(pvc, "spec");
  accessModes(at(spec, "accessModes"), "spec.accessModes", errs);
  storageQuantity(json::at(spec, {"resources", "requests", "storage"}), "spec.resources[storage]",
                  errs);
  validateEnum(at(spec, "volumeMode"), "spec.volumeMode", {"Block", "Filesystem"}, errs);
  if (!old) return;
  // Once made, a claim's spec changes only in its requests and, while unset, its volume and
  // class (what the binder and the default class fill in).
  Json a = spec, b = at(*old, "spec");
  if (!a.is_object() || !b.is_object()) return;
  for (Json* s : {&a, &b}) s->erase("resources");
  if (json::str(b, "volumeName").empty()) a.erase("volumeName"), b.erase("volumeName");
  if (b.value("storageClassName", Json()).is_null())
    a.erase("storageClassName"), b.erase("storageClassName");
  if (a != b)
    errs.push_back(
        FieldError::forbidden("spec",
                              "spec is immutable after creation except resources.requests and "
                              "volumeAttributesClassName for bound claims"));
}

void validateStorageClass(const Json& sc, const Json* old, FieldErrors& errs) {
  if (json::str(sc, "provisioner").empty()) errs.push_back(FieldError::required("provisioner"));
  validateEnum(at(sc, "reclaimPolicy"), "reclaimPolicy", {"Delete", "Retain"}, errs);
  validateEnum(at(sc, "volumeBindingMode"), "volumeBindingMode",
               {"Immediate", "WaitForFirstConsumer"}, errs);
  if (!old) return;
  for (const char* f : {"provisioner", "parameters", "reclaimPolicy", "volumeBindingMode"})
    if (at(sc, f) != at(*old, f))
      errs.push_back(FieldError::forbidden(f, "updates to " + std::string(f) + " are forbidden."));
}

}  // namespace

void validateStorageKinds(const ResourceInfo& r, const Json& obj, const Json* old,
                          FieldErrors& errs) {
  if (r.plural == "persistentvolumes") validateVolume(obj, errs);
  if (r.plural == "persistentvolumeclaims") validateClaim(obj, old, errs);
  if (r.plural == "storageclasses") validateStorageClass(obj, old, errs);
}

}  // namespace podium::api
