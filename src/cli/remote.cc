// What the client subcommands (`podium app`, `podium rollout`) share: how they reach the API
// server, and how they print tables and objects.
#include "remote.h"

#include <iostream>

#include "podium/api/tls.h"
#include "podium/common/strings.h"

namespace podium::cli {

Expected<client::RemoteOptions, std::string> connection(const Flags& flags,
                                                        const std::string& fieldManager) {
  client::RemoteOptions o;
  o.fieldManager = fieldManager;
  std::string dir = serverDataDir(flags);
  if (auto s = flags.get("server")) {
    o.server = *s;
    if (auto err = readApiCredentials(flags, &o); !err.empty()) return Unexpected(err);
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
  return o;
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

}  // namespace podium::cli
