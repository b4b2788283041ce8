// `podium app list|get|diff|history|sync|rollback|wait|create|delete`, in the style of
// `argocd app`: Argo CD
// Applications through the Kubernetes API (the server's data directory gives its address and
// credentials, or --server/--token/--ca-file as for `podium agent`).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iomanip>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "flags.h"
#include "podium/api/tls.h"
#include "podium/cli/commands.h"
#include "podium/client/remote_client.h"
#include "podium/common/strings.h"
#include "podium/common/time.h"
#include "remote.h"

namespace podium::cli {

namespace {

const client::Resource kApps{"argoproj.io", "v1alpha1", "applications"};

const char* kAppUsage = R"(Usage: podium app COMMAND [NAME] [flags]

Commands, as `argocd app` has them:
  list                      the Applications: sync and health status, revision, repository
  get NAME                  one Application and its resources
  diff NAME                 what differs between git and the cluster, as a unified diff of
                            each changed resource (exit 1 when something differs; the tool is
                            $KUBECTL_EXTERNAL_DIFF, else diff -u)
  history NAME              its syncs (ID, date, revision)
  sync NAME                 syncs it now to its target revision (--revision R, --prune) and
                            shows the resources as they are synced (--async: just ask)
  rollback NAME ID          syncs it to the revision of history ID, turning auto-sync off as
                            Argo CD does (turn it on again in the Application's spec)
  wait NAME                 until it is Synced and Healthy (--timeout SECONDS, default 300)
  create NAME               a new Application: --repo URL --path DIR --dest-namespace NS
                            [--revision R] [--dest-server URL | --dest-name NAME] [--project P]
                            [--sync-policy automated|none] [--auto-prune] [--self-heal]
                            [--allow-empty] [--sync-option OPT]... [--directory-recurse]
                            [--upsert]; or -f FILE (an Application manifest)
  delete NAME               deletes it and, with --cascade (the default), what it deployed
                            (--cascade=false leaves that; --propagation-policy foreground|
                            background)

Flags:
  -n, --namespace NS        the Applications' namespace (default argocd)
  -o, --output json|yaml    the objects themselves (list, get)
  --data-dir DIR            the server's data directory, for its address and credentials
                            (default $PODIUM_DATA_DIR, else /var/lib/podium)
  --server URL, --token FILE | --client-cert FILE --client-key FILE, --ca-file FILE
                            the API server and credentials instead
)";

std::string get(const Json& o, std::initializer_list<std::string_view> path,
                const std::string& dflt = "") {
  std::string v = json::getString(o, path);
  return v.empty() ? dflt : v;
}

// Calls `step` every `every` until it returns the command's exit code, or --timeout (default
// 300 s) passes: nullopt then.
std::optional<int> pollFor(const Flags& flags, std::chrono::milliseconds every,
                           const std::function<std::optional<int>()>& step) {
  int64_t timeout = strings::parseInt(flags.get("timeout").value_or("300")).value_or(300);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto rc = step()) return rc;
    std::this_thread::sleep_for(every);
  }
  return std::nullopt;
}

// Shows a requested sync as it runs (each resource's result as it comes, as `argocd app sync`
// does) until it ends; 0 when it succeeded. `before`: the operationState before the request.
int followSync(client::Client& k, const std::string& ns, const std::string& name,
               const std::string& before, const Flags& flags) {
  std::set<std::string> shown;
  std::string lastMessage;
  auto row = [](const std::vector<std::string>& cells) {
    static const size_t widths[] = {21, 8, 12, 12, 24, 12, 10, 0};
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i)
      line += i + 1 < cells.size() && cells[i].size() < widths[i]
                  ? cells[i] + std::string(widths[i] - cells[i].size(), ' ')
                  : cells[i] + (i + 1 < cells.size() ? " " : "");
    std::cout << line << "\n" << std::flush;
  };
  row({"TIMESTAMP", "GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HOOK", "MESSAGE"});
  auto rc = pollFor(flags, std::chrono::milliseconds(200), [&]() -> std::optional<int> {
    auto a = k.get(kApps, ns, name);
    if (!a) return std::cerr << "podium app sync: " << a.error().message() << "\n", 1;
    const Json& op = json::at(*a, {"status", "operationState"});
    if (json::dump(op) != before) {
      for (const auto& r : json::at(op, {"syncResult", "resources"})) {
        std::string key = json::str(r, "kind") + "/" + json::str(r, "namespace") + "/" +
                          json::str(r, "name") + "/" + json::str(r, "status") + "/" +
                          json::str(r, "hookPhase");
        if (!shown.insert(key).second) continue;
        row({timefmt::rfc3339(std::chrono::system_clock::now()), json::str(r, "group"),
             json::str(r, "kind"), json::str(r, "namespace"), json::str(r, "name"),
             json::str(r, "status"), json::str(r, "hookPhase"), json::str(r, "message")});
      }
      std::string phase = json::str(op, "phase");
      if (phase == "Running" && json::str(op, "message") != lastMessage) {
        lastMessage = json::str(op, "message");
        std::cout << "  ... " << lastMessage << "\n" << std::flush;
      }
      if (!json::find(*a, {"operation"}) && phase != "Running" && !phase.empty()) {
        std::cout << "\nName:          " << ns << "/" << name << "\n"
                  << "Operation:     Sync\n"
                  << "Sync Revision: " << json::getString(op, {"syncResult", "revision"}) << "\n"
                  << "Phase:         " << phase << "\n"
                  << "Message:       " << json::str(op, "message") << "\n";
        return phase == "Succeeded" ? 0 : 1;
      }
    }
    return std::nullopt;
  });
  if (rc) return *rc;
  std::cerr << "podium app sync: timed out waiting for the sync to end\n";
  return 1;
}

constexpr const char* kFinalizer = "resources-finalizer.argocd.argoproj.io";

// Writes `text` to a new temporary file; returns its path ("" on failure).
std::string tempFile(const std::string& text) {
  char path[] = "/tmp/podium-diff-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return "";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok ? path : "";
}

// `podium app diff`: each modified resource's live state (the fields git sets) against git's,
// through diff -u or $KUBECTL_EXTERNAL_DIFF. 0: no difference, 1: some, 2: an error.
int diffCommand(const client::RemoteOptions& o, const std::string& ns, const std::string& name) {
  auto res = client::getJson(o, "/api/v1/applications/" + strings::urlEncode(name) +
                                    "/managed-resources?appNamespace=" + strings::urlEncode(ns));
  if (!res) return std::cerr << "podium app diff: " << res.error().message() << "\n", 2;
  const char* external = std::getenv("KUBECTL_EXTERNAL_DIFF");
  bool differs = false;
  for (const auto& item : json::at(*res, {"items"})) {
    if (!json::boolean(item, "modified")) continue;
    differs = true;
    // Argo CD's header: "===== GROUP/KIND NAMESPACE/NAME ======" (core kinds: "/ConfigMap").
    std::cout << "\n===== " << json::str(item, "group") << "/" << json::str(item, "kind") << " "
              << json::str(item, "namespace") << "/" << json::str(item, "name") << " ======\n"
              << std::flush;
    auto yamlOf = [](const std::string& text) {
      auto v = json::parse(text);
      return v && !v->value.is_null() ? json::toYaml(v->value) : std::string();
    };
    std::string live = tempFile(yamlOf(json::str(item, "normalizedLiveState")));
    std::string target = tempFile(yamlOf(json::str(item, "targetState")));
    if (live.empty() || target.empty()) return std::cerr << "podium app diff: no /tmp\n", 2;
    std::string cmd = external && *external
                          ? std::string(external) + " " + live + " " + target
                          : "diff -u --label live --label git " + live + " " + target;
    int rc = std::system(cmd.c_str());
    (void)rc;  // diff's own status says "different", which we know
    std::remove(live.c_str());
    std::remove(target.c_str());
  }
  return differs ? 1 : 0;
}

// `podium app create`: the Application from -f FILE, or from the flags as `argocd app create`
// takes them.
Expected<Json, std::string> applicationFromFlags(const Flags& flags, const std::string& name,
                                                 const std::string& ns) {
  if (auto file = flags.get("file")) {
    auto text = api::tls::readFile(*file);
    if (!text) return Unexpected(*file + ": " + text.error());
    auto doc = json::parseYaml(*text);
    if (!doc || !doc->value.is_object()) return Unexpected(*file + ": not a YAML object");
    Json app = doc->value;
    if (json::str(app, "kind") != "Application")
      return Unexpected(*file + ": kind is \"" + json::str(app, "kind") + "\", not Application");
    if (json::getString(app, {"metadata", "namespace"}).empty()) app["metadata"]["namespace"] = ns;
    return app;
  }
  for (const char* required : {"repo", "dest-namespace"})
    if (!flags.get(required)) return Unexpected(std::string("--") + required + " is required");
  Json source = {{"repoURL", *flags.get("repo")},
                 {"path", flags.get("path").value_or(".")},
                 {"targetRevision", flags.get("revision").value_or("HEAD")}};
  if (flags.has("directory-recurse")) source["directory"]["recurse"] = true;
  Json dest = {{"namespace", *flags.get("dest-namespace")}};
  if (auto n = flags.get("dest-name"))
    dest["name"] = *n;
  else
    dest["server"] = flags.get("dest-server").value_or("https://kubernetes.default.svc");
  Json spec = {{"project", flags.get("project").value_or("default")},
               {"source", source},
               {"destination", dest}};
  std::string policy = flags.get("sync-policy").value_or("none");
  if (policy == "automated" || policy == "auto" || policy == "automatic") {
    spec["syncPolicy"]["automated"] = {{"prune", flags.has("auto-prune")},
                                       {"selfHeal", flags.has("self-heal")},
                                       {"allowEmpty", flags.has("allow-empty")}};
  } else if (policy != "none" && policy != "manual") {
    return Unexpected("--sync-policy is automated or none, not " + policy);
  }
  for (const auto& o : flags.getAll("sync-option")) spec["syncPolicy"]["syncOptions"].push_back(o);
  return Json{{"apiVersion", "argoproj.io/v1alpha1"},
              {"kind", "Application"},
              {"metadata", {{"name", name}, {"namespace", ns}}},
              {"spec", spec}};
}

}  // namespace

int appCommand(const std::vector<std::string>& args) {
  std::vector<std::string> rest = args;
  for (auto& a : rest) {
    if (a == "-n") a = "--namespace";
    if (a == "-o") a = "--output";
    if (a == "-f") a = "--file";
  }
  Flags flags({"namespace",   "output",      "data-dir",    "server",    "token",
               "client-cert", "client-key",  "ca-file",     "revision",  "timeout",
               "repo",        "path",        "dest-server", "dest-name", "dest-namespace",
               "project",     "sync-policy", "sync-option", "file",      "propagation-policy"},
              {"prune", "help", "async", "auto-prune", "self-heal", "allow-empty",
               "directory-recurse", "upsert", "cascade", "wait"});
  if (auto err = flags.parse(rest);
      !err.empty() || flags.positional().empty() || flags.has("help")) {
    if (!err.empty()) std::cerr << "podium app: " << err << "\n\n";
    std::cerr << kAppUsage;
    return flags.has("help") ? 0 : 2;
  }
  const auto& pos = flags.positional();
  std::string cmd = pos[0];
  std::string ns = flags.get("namespace").value_or("argocd");
  std::string output = flags.get("output").value_or("");
  auto conn = connection(flags, "podium-app");
  auto c = conn ? client::newRemoteClient(*conn) : Unexpected(conn.error());
  if (!c) {
    std::cerr << "podium app: " << c.error() << "\n";
    return 1;
  }
  client::Client& k = **c;
  auto need = [&](size_t n) {
    if (pos.size() >= n) return true;
    std::cerr << "podium app " << cmd << ": missing arguments\n\n" << kAppUsage;
    return false;
  };
  auto fetch = [&](const std::string& name) -> std::optional<Json> {
    auto a = k.get(kApps, ns, name);
    if (!a) {
      std::cerr << "podium app: " << a.error().message() << "\n";
      return std::nullopt;
    }
    return *a;
  };
  if (cmd == "list") {
    auto list = k.list(kApps, ns);
    if (!list) return std::cerr << "podium app: " << list.error().message() << "\n", 1;
    if (!output.empty()) {
      Json items = Json::array();
      for (const auto& a : list->items) items.push_back(*a);
      print({{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}}, output);
      return 0;
    }
    std::vector<std::vector<std::string>> rows = {{"NAME", "NAMESPACE", "STATUS", "HEALTH",
                                                   "SYNCPOLICY", "REVISION", "REPO", "PATH",
                                                   "TARGET"}};
    for (const auto& a : list->items)
      rows.push_back({get(*a, {"metadata", "name"}), get(*a, {"spec", "destination", "namespace"}),
                      get(*a, {"status", "sync", "status"}, "Unknown"),
                      get(*a, {"status", "health", "status"}, "Unknown"),
                      json::find(*a, {"spec", "syncPolicy", "automated"}) ? "Auto" : "Manual",
                      get(*a, {"status", "sync", "revision"}).substr(0, 7),
                      get(*a, {"spec", "source", "repoURL"}), get(*a, {"spec", "source", "path"}),
                      get(*a, {"spec", "source", "targetRevision"}, "HEAD")});
    table(rows);
    return 0;
  }
  if (cmd == "create") {
    if (pos.size() < 2 && !flags.has("file")) return need(2), 2;
    auto app = applicationFromFlags(flags, pos.size() > 1 ? pos[1] : "", ns);
    if (!app) return std::cerr << "podium app create: " << app.error() << "\n", 2;
    std::string appNs = json::getString(*app, {"metadata", "namespace"});
    std::string appName = json::getString(*app, {"metadata", "name"});
    auto made = k.create(kApps, appNs, *app);
    if (!made && made.error().code() == 409 && flags.has("upsert")) {
      auto cur = k.get(kApps, appNs, appName);
      if (cur) {
        (*cur)["spec"] = (*app)["spec"];
        made = k.update(kApps, appNs, *cur);
      }
    }
    if (!made) return std::cerr << "podium app create: " << made.error().message() << "\n", 1;
    std::cout << "application '" << appName << "' created\n";
    return 0;
  }
  if (!need(2)) return 2;
  std::string name = pos[1];
  if (cmd == "diff") return diffCommand(*conn, ns, name);
  if (cmd == "delete") {
    auto a = fetch(name);
    if (!a) return 1;
    // Argo CD's cascade is the Application's finalizer: the controller deletes what the app
    // deployed before the Application goes.
    bool cascade = flags.get("cascade").value_or("true") != "false";
    std::string policy = flags.get("propagation-policy").value_or("foreground");
    if (policy != "foreground" && policy != "background")
      return std::cerr << "podium app delete: --propagation-policy is foreground or background\n",
             2;
    Json finalizers = Json::array();
    for (const auto& f : json::at(*a, {"metadata", "finalizers"}))
      if (!(f.is_string() && f.get<std::string>().rfind(kFinalizer, 0) == 0))
        finalizers.push_back(f);
    if (cascade)
      finalizers.push_back(std::string(kFinalizer) + (policy == "background" ? "/background" : ""));
    auto p = k.patch(kApps, ns, name, {{"metadata", {{"finalizers", finalizers}}}});
    if (!p) return std::cerr << "podium app delete: " << p.error().message() << "\n", 1;
    auto d = k.remove(kApps, ns, name);
    if (!d) return std::cerr << "podium app delete: " << d.error().message() << "\n", 1;
    std::cout << "application '" << name << "' deleted" << (cascade ? " with its resources" : "")
              << "\n";
    if (!flags.has("wait")) return 0;
    auto gone = pollFor(flags, std::chrono::milliseconds(250), [&]() -> std::optional<int> {
      auto cur = k.get(kApps, ns, name);
      if (!cur && cur.error().code() == 404) return 0;
      return std::nullopt;
    });
    if (gone) return *gone;
    return std::cerr << "podium app delete: timed out waiting for " << name << " to go\n", 1;
  }
  if (cmd == "get") {
    auto a = fetch(name);
    if (!a) return 1;
    if (!output.empty()) return print(*a, output), 0;
    std::cout << "Name:          " << ns << "/" << name << "\n"
              << "Repo:          " << get(*a, {"spec", "source", "repoURL"}) << "\n"
              << "Target:        " << get(*a, {"spec", "source", "targetRevision"}, "HEAD") << "\n"
              << "Path:          " << get(*a, {"spec", "source", "path"}) << "\n"
              << "Sync Status:   " << get(*a, {"status", "sync", "status"}, "Unknown") << " to "
              << get(*a, {"status", "sync", "revision"}).substr(0, 7) << "\n"
              << "Health Status: " << get(*a, {"status", "health", "status"}, "Unknown") << "\n";
    for (const auto& cond : json::at(*a, {"status", "conditions"}))
      std::cout << "Condition:     " << json::str(cond, "type") << ": "
                << json::str(cond, "message") << "\n";
    std::cout << "\n";
    std::vector<std::vector<std::string>> rows = {
        {"GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH"}};
    for (const auto& r : json::at(*a, {"status", "resources"}))
      rows.push_back({json::str(r, "group"), json::str(r, "kind"), json::str(r, "namespace"),
                      json::str(r, "name"), json::str(r, "status"), get(r, {"health", "status"})});
    table(rows);
    return 0;
  }
  if (cmd == "history") {
    auto a = fetch(name);
    if (!a) return 1;
    std::vector<std::vector<std::string>> rows = {{"ID", "DATE", "REVISION"}};
    for (const auto& h : json::at(*a, {"status", "history"}))
      rows.push_back({std::to_string(json::integer(h, "id")), json::str(h, "deployedAt"),
                      json::str(h, "revision")});
    table(rows);
    return 0;
  }
  if (cmd == "sync" || cmd == "rollback") {
    auto a = fetch(name);
    if (!a) return 1;
    std::string revision = flags.get("revision").value_or("");
    Json patch = Json::object();
    if (cmd == "rollback") {
      if (!need(3)) return 2;
      auto id = strings::parseInt(pos[2]);
      for (const auto& h : json::at(*a, {"status", "history"}))
        if (id && json::integer(h, "id") == *id) revision = json::str(h, "revision");
      if (revision.empty())
        return std::cerr << "podium app rollback: no history ID " << pos[2] << "\n", 1;
      // Argo CD's rule: a rolled-back app does not auto-sync (it would undo the rollback).
      patch["spec"]["syncPolicy"]["automated"] = nullptr;
    }
    patch["operation"] = {{"sync", {{"revision", revision}, {"prune", flags.has("prune")}}},
                          {"initiatedBy", {{"username", "podium-app"}}}};
    std::string before = json::dump(json::at(*a, {"status", "operationState"}));
    auto r = k.patch(kApps, ns, name, patch);
    if (!r) return std::cerr << "podium app: " << r.error().message() << "\n", 1;
    std::cout << "application '" << name << "': " << cmd << " to "
              << (revision.empty() ? get(*a, {"spec", "source", "targetRevision"}, "HEAD")
                                   : revision)
              << " requested\n";
    if (flags.has("async")) return 0;
    return followSync(k, ns, name, before, flags);
  }
  if (cmd == "wait") {
    std::string last;
    auto rc = pollFor(flags, std::chrono::milliseconds(250), [&]() -> std::optional<int> {
      auto a = fetch(name);
      if (!a) return 1;
      std::string state = get(*a, {"status", "sync", "status"}, "Unknown") + "/" +
                          get(*a, {"status", "health", "status"}, "Unknown");
      if (state != last) std::cout << name << ": " << state << "\n" << std::flush;
      last = state;
      if (state == "Synced/Healthy" && !json::find(*a, {"operation"})) return 0;
      return std::nullopt;
    });
    if (rc) return *rc;
    std::cerr << "podium app wait: timed out (" << last << ")\n";
    return 1;
  }
  std::cerr << "podium app: unknown command " << cmd << "\n\n" << kAppUsage;
  return 2;
}

}  // namespace podium::cli
