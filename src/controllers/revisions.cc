#include "revisions.h"

#include <algorithm>

namespace podium::controllers {

namespace res = client::resources;

std::vector<ObjectPtr> ownedRevisions(const client::Informer& revisions, const Json& owner) {
  std::vector<ObjectPtr> out;
  for (const auto& cr : revisions.list(namespaceOf(owner))) {
    const Json* ref = controllerOf(*cr);
    if (ref && json::str(*ref, "uid") == uidOf(owner)) out.push_back(cr);
  }
  std::sort(out.begin(), out.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
    return json::integer(*a, "revision", 0) < json::integer(*b, "revision", 0);
  });
  return out;
}

Expected<std::string, std::string> ensureRevision(client::Client& client,
                                                  const client::Informer& revisions,
                                                  const Json& owner, const std::string& hash) {
  std::string ns = namespaceOf(owner);
  std::string name = nameOf(owner) + "-" + hash;
  auto owned = ownedRevisions(revisions, owner);
  int64_t newest = owned.empty() ? 0 : json::integer(*owned.back(), "revision", 0);
  auto mine = std::find_if(owned.begin(), owned.end(),
                           [&](const ObjectPtr& cr) { return nameOf(*cr) == name; });
  if (mine != owned.end()) {
    if (mine + 1 == owned.end()) return name;
    Json renumbered = **mine;  // an older template is back: it becomes the newest revision
    renumbered["revision"] = newest + 1;
    auto put = client.update(res::kControllerRevisions, ns, renumbered);
    if (!put && put.error().code() != 409)
      return Unexpected("revision " + name + ": " + put.error().message());
    return name;
  }
  const Json& tmpl = at(owner, {"spec", "template"});
  const Json& selector = at(owner, {"spec", "selector", "matchLabels"});
  Json labels = selector.is_object() ? selector : Json::object();
  labels[kRevisionHashLabel] = hash;
  Json data = {{"spec", {{"template", tmpl}}}};
  data["spec"]["template"]["$patch"] = "replace";
  Json cr = {{"apiVersion", "apps/v1"},
             {"kind", "ControllerRevision"},
             {"metadata",
              {{"name", name},
               {"namespace", ns},
               {"labels", labels},
               {"ownerReferences", Json::array({controllerRef(owner)})}}},
             {"data", data},
             {"revision", newest + 1}};
  auto made = client.create(res::kControllerRevisions, ns, cr);
  if (!made && made.error().code() != 409)
    return Unexpected("revision " + name + ": " + made.error().message());
  return name;
}

SyncResult pruneRevisions(client::Client& client, const client::Informer& revisions,
                          const Json& owner, const std::set<std::string>& live) {
  auto owned = ownedRevisions(revisions, owner);
  int64_t limit =
      std::max<int64_t>(0, json::integer(at(owner, {"spec"}), "revisionHistoryLimit", 10));
  std::vector<ObjectPtr> history;  // revisions no pod runs and no status names
  for (const auto& cr : owned)
    if (!live.count(nameOf(*cr))) history.push_back(cr);
  SyncResult result = SyncResult::ok();
  for (size_t i = 0; i + static_cast<size_t>(limit) < history.size(); ++i) {
    auto gone = client.remove(res::kControllerRevisions, namespaceOf(owner), nameOf(*history[i]));
    result.merge(SyncResult::of(gone, "delete revision " + nameOf(*history[i])));
  }
  return result;
}

Json revisionTemplate(const Json& revision) {
  const Json& t = at(revision, {"data", "spec", "template"});
  if (!t.is_object()) return Json();
  Json out = t;
  out.erase("$patch");
  return out;
}

}  // namespace podium::controllers
