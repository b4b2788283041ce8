#include "namespace.h"

namespace podium::controllers {

namespace res = client::resources;

namespace {
// How often a namespace being emptied is looked at again while its objects go.
constexpr std::chrono::milliseconds kRecheck{250};
}  // namespace

NamespaceController::NamespaceController(client::InformerFactory& f, int workers)
    : Controller("namespace", f.client(), f.clock(), workers),
      namespaces_(f.informer(res::kNamespaces)) {
  auto enqueue = [this](const ObjectPtr& o) {
    if (isDeleting(*o)) queue().add(nameOf(*o));
  };
  namespaces_.addHandlers(
      {enqueue, [enqueue](const ObjectPtr&, const ObjectPtr& n) { enqueue(n); }, nullptr});
}

SyncResult NamespaceController::sync(const std::string& name) {
  ObjectPtr ns = namespaces_.get("", name);
  if (!ns || !isDeleting(*ns)) return SyncResult::ok();
  SyncResult result = SyncResult::ok();
  size_t remaining = 0;
  for (const auto& r : client_.namespacedResources()) {
    auto items = client_.list(r, name);
    if (!items) {
      result.merge(SyncResult::of(items, "list " + r.plural));
      continue;
    }
    for (const auto& item : items->items) {
      ++remaining;
      if (isDeleting(*item)) continue;
      client::DeleteOptions d;
      d.propagationPolicy = "Background";
      d.preconditionUid = uidOf(*item);
      auto del = client_.remove(r, name, nameOf(*item), d);
      if (del && !isDeleting(*del)) --remaining;  // gone at once
      // 409: replaced by another object of the same name meanwhile (seen next time round).
      result.merge(SyncResult::of(del, "delete " + r.plural + " " + nameOf(*item), {404, 409}));
    }
  }
  if (remaining > 0 || result.failed()) return result.merge(SyncResult::after(kRecheck));
  auto cur = client_.get(res::kNamespaces, "", name);
  if (!cur) return SyncResult::of(cur, "get namespace");
  Json obj = *cur;
  obj["spec"]["finalizers"] = Json::array();
  return SyncResult::of(client_.update(res::kNamespaces, "", obj, "finalize"),
                        "finalize namespace " + name);
}

}  // namespace podium::controllers
