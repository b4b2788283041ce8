// ControllerRevisions: how StatefulSets and DaemonSets keep the pod templates they have run, as
// `kubectl rollout history` and `kubectl rollout undo` read and apply them. A revision is named
// <owner>-<hash>, is controlled by its owner, carries the owner's selector labels and the
// template hash label, and holds the template as the strategic merge patch
// {"spec":{"template":{..., "$patch":"replace"}}} that `kubectl rollout undo` sends back.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "util.h"

namespace podium::controllers {

inline constexpr const char* kRevisionHashLabel = "controller-revision-hash";

// The owner's revisions (controlled by it), oldest revision number first.
std::vector<ObjectPtr> ownedRevisions(const client::Informer& revisions, const Json& owner);

// Makes sure the revision of the owner's current template (named <owner>-<hash>) exists and is
// the newest: created with the next number or, when an older template comes back (a rollback),
// renumbered as the newest, as Kubernetes does. Returns its name.
Expected<std::string, std::string> ensureRevision(client::Client& client,
                                                  const client::Informer& revisions,
                                                  const Json& owner, const std::string& hash);

// Deletes the owner's revisions beyond spec.revisionHistoryLimit (default 10), oldest first,
// never one named in `live` (those pods still run).
SyncResult pruneRevisions(client::Client& client, const client::Informer& revisions,
                          const Json& owner, const std::set<std::string>& live);

// The pod template a revision holds, without the patch directive; null if it holds none.
Json revisionTemplate(const Json& revision);

}  // namespace podium::controllers
