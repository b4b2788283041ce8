// `podium app list|get|history|sync|rollback|wait`, in the style of `argocd app`: Argo CD
// Applications through the Kubernetes API (the server's data directory gives its address and
// credentials, or --server/--token/--ca-file as for `podium agent`).
#include <chrono>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include "commands.h"
#include "flags.h"
#include "podium/api/tls.h"
#include "podium/client/remote_client.h"
#include "podium/common/strings.h"

namespace podium::cli {

namespace {

const client::Resource kApps{"argoproj.io", "v1alpha1", "applications"};

const char* kAppUsage = R"(Usage: podium app COMMAND [NAME] [flags]

Commands, as `argocd app` has them:
  list                      the Applications: sync and health status, revision, repository
  get NAME                  one Application and its resources
  history NAME              its syncs (ID, date, revision)
  sync NAME                 syncs it now to its target revision (--revision R, --prune)
  rollback NAME ID          syncs it to the revision of history ID, turning auto-sync off as
                            Argo CD does (turn it on again in the Application's spec)
  wait NAME                 until it is Synced and Healthy (--timeout SECONDS, default 300)

Flags:
  -n, --namespace NS        the Applications' namespace (default argocd)
  -o, --output json|yaml    the objects themselves (list, get)
  --data-dir DIR            the server's data directory, for its address and credentials
                            (default $PODIUM_DATA_DIR, else /var/lib/podium)
  --server URL, --token FILE, --ca-file FILE
                            the API server and credentials instead
)";

Expected<client::ClientPtr, std::string> connect(const Flags& flags) {
  client::RemoteOptions o;
  o.fieldManager = "podium-app";
  const char* envDir = std::getenv("PODIUM_DATA_DIR");
  std::string dir = flags.get("data-dir").value_or(envDir ? envDir : "/var/lib/podium");
  if (auto s = flags.get("server")) {
    o.server = *s;
    auto t = api::tls::readFile(flags.get("token").value_or(""));
    if (!t) return Unexpected("--token: " + t.error());
    o.token = std::string(strings::trim(*t));
    o.caFile = flags.get("ca-file").value_or("");
  } else {
    auto kc = api::tls::readFile(dir + "/kubeconfig.yaml");
    auto token = api::tls::readFile(dir + "/tls/admin.token");
    if (!kc || !token)
      return Unexpected("no server in " + dir + " (give --data-dir, or --server and --token)");
    auto doc = json::parseYaml(*kc);
    if (!doc) return Unexpected("unreadable " + dir + "/kubeconfig.yaml");
    for (const auto& c : json::at(doc->value, {"clusters"}))
      if (o.server.empty()) o.server = json::getString(c, {"cluster", "server"});
    o.token = std::string(strings::trim(*token));
    o.caFile = dir + "/tls/ca.crt";
  }
  return client::newRemoteClient(o);
}

std::string get(const Json& o, std::initializer_list<std::string_view> path,
                const std::string& dflt = "") {
  std::string v = json::getString(o, path);
  return v.empty() ? dflt : v;
}

void table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i)
      std::cout << (i + 1 < r.size()
                        ? std::string(r[i]) + std::string(width[i] - r[i].size() + 3, ' ')
                        : r[i]);
    std::cout << "\n";
  }
}

void print(const Json& obj, const std::string& output) {
  std::cout << (output == "yaml" ? json::toYaml(obj) : obj.dump(2) + "\n");
}

}  // namespace

int appCommand(const std::vector<std::string>& args) {
  std::vector<std::string> rest = args;
  for (auto& a : rest) {
    if (a == "-n") a = "--namespace";
    if (a == "-o") a = "--output";
  }
  Flags flags(
      {"namespace", "output", "data-dir", "server", "token", "ca-file", "revision", "timeout"},
      {"prune", "help"});
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
  auto c = connect(flags);
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
  if (!need(2)) return 2;
  std::string name = pos[1];
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
    auto r = k.patch(kApps, ns, name, patch);
    if (!r) return std::cerr << "podium app: " << r.error().message() << "\n", 1;
    std::cout << "application '" << name << "': " << cmd << " to "
              << (revision.empty() ? get(*a, {"spec", "source", "targetRevision"}, "HEAD")
                                   : revision)
              << " requested\n";
    return 0;
  }
  if (cmd == "wait") {
    int64_t timeout = strings::parseInt(flags.get("timeout").value_or("300")).value_or(300);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
    std::string last;
    while (std::chrono::steady_clock::now() < deadline) {
      auto a = fetch(name);
      if (!a) return 1;
      std::string state = get(*a, {"status", "sync", "status"}, "Unknown") + "/" +
                          get(*a, {"status", "health", "status"}, "Unknown");
      if (state != last) std::cout << name << ": " << state << "\n" << std::flush;
      last = state;
      if (state == "Synced/Healthy" && !json::find(*a, {"operation"})) return 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    std::cerr << "podium app wait: timed out (" << last << ")\n";
    return 1;
  }
  std::cerr << "podium app: unknown command " << cmd << "\n\n" << kAppUsage;
  return 2;
}

}  // namespace podium::cli
