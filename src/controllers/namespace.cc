#include "namespace.h"

#include "podium/common/log.h"

namespace podium::controllers {

namespace res = client::resources;

NamespaceController::NamespaceController(client::InformerFactory& f)
    : client_(f.client()),
      namespaces_(f.informer(res::kNamespaces)),
      workers_(
          "namespace", [this](const std::string& k) { return sync(k); }, 1) {
  auto enqueue = [this](const ObjectPtr& o) {
    if (isDeleting(*o)) workers_.queue().add(nameOf(*o));
  };
  namespaces_.addHandlers(
      {enqueue, [enqueue](const ObjectPtr&, const ObjectPtr& n) { enqueue(n); }, nullptr});
}

bool NamespaceController::sync(const std::string& name) {
  ObjectPtr ns = namespaces_.get("", name);
  if (!ns || !isDeleting(*ns)) return true;
  size_t remaining = 0;
  for (const auto& r : client_.namespacedResources()) {
    auto items = client_.list(r, name);
    if (!items) continue;
    for (const auto& item : items->items) {
      ++remaining;
      if (isDeleting(*item)) continue;
      client::DeleteOptions d;
      d.propagationPolicy = "Background";
      d.preconditionUid = uidOf(*item);
      auto del = client_.remove(r, name, nameOf(*item), d);
      if (del && !isDeleting(*del)) --remaining;  // gone at once
    }
  }
  if (remaining > 0) {
    workers_.queue().addAfter(name, std::chrono::milliseconds(250));
    return true;
  }
  auto cur = client_.get(res::kNamespaces, "", name);
  if (!cur) return cur.error().code() == 404;
  Json obj = *cur;
  obj["spec"]["finalizers"] = Json::array();
  auto r = client_.update(res::kNamespaces, "", obj, "finalize");
  if (!r && r.error().code() != 404) {
    PODIUM_LOG(Warn) << "finalize namespace " << name << ": " << r.error().message();
    return false;
  }
  return true;
}

}  // namespace podium::controllers
