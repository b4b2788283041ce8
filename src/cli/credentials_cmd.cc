// `podium credentials node NAME`: a node's own API credentials, a client certificate for
// system:node:NAME (group system:nodes) signed by the cluster CA in the server's data directory,
// for `podium agent --client-cert/--client-key` on that node. The API gives a node mesh
// certificates only for the pods bound to it, so a node never holds another node's workload keys.
#include <sys/stat.h>

#include <filesystem>
#include <iostream>

#include "flags.h"
#include "podium/api/names.h"
#include "podium/api/tls.h"
#include "podium/cli/commands.h"
#include "podium/common/strings.h"

namespace podium::cli {

namespace {

const char* kCredentialsUsage = R"(Usage: podium credentials node NAME [flags]

Writes NAME.crt and NAME.key: a client certificate for the node NAME (user system:node:NAME,
group system:nodes), signed by the cluster CA, for `podium agent --client-cert NAME.crt
--client-key NAME.key`.

Flags:
  --data-dir DIR   the server's data directory, whose CA signs (default $PODIUM_DATA_DIR, else
                   /var/lib/podium)
  --out DIR        where to write the two files (default DATA/tls/nodes)
  --days N         validity (default 365)
)";

}  // namespace

int credentialsCommand(const std::vector<std::string>& args) {
  Flags flags({"data-dir", "out", "days"}, {"help"});
  std::string err = flags.parse(args);
  const auto& pos = flags.positional();
  if (flags.has("help")) return std::cout << kCredentialsUsage, 0;
  if (!err.empty() || pos.size() != 2 || pos[0] != "node") {
    std::cerr << (err.empty() ? "" : "podium credentials: " + err + "\n\n") << kCredentialsUsage;
    return 2;
  }
  const std::string& name = pos[1];
  // A node name is a DNS subdomain (RFC 1123), as the API checks it: it becomes a user name.
  if (std::string why = api::validation::dns1123Subdomain(name); !why.empty()) {
    std::cerr << "podium credentials: \"" << name << "\" is not a valid node name: " << why << "\n";
    return 2;
  }
  auto days = strings::parseInt(flags.get("days").value_or("365"));
  if (!days || *days < 1 || *days > 3650) {
    std::cerr << "podium credentials: --days must be between 1 and 3650\n";
    return 2;
  }
  std::string dir = serverDataDir(flags);
  auto caCert = api::tls::readFile(dir + "/tls/ca.crt");
  auto caKey = api::tls::readFile(dir + "/tls/ca.key");
  if (!caCert || !caKey) {
    std::cerr << "podium credentials: no cluster CA in " << dir << "/tls (give --data-dir)\n";
    return 1;
  }
  api::tls::CertRequest req;
  req.commonName = "system:node:" + name;
  req.organizations = {"system:nodes"};
  req.clientAuth = true;
  req.validDays = static_cast<int>(*days);
  auto kp = api::tls::issue({*caCert, *caKey}, req);
  if (!kp) {
    std::cerr << "podium credentials: " << kp.error() << "\n";
    return 1;
  }
  std::string out = flags.get("out").value_or(dir + "/tls/nodes");
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  ::chmod(out.c_str(), 0700);
  if (auto w = api::tls::writeFileAtomic(out + "/" + name + ".key", kp->keyPem, 0600); !w) {
    std::cerr << "podium credentials: " << w.error() << "\n";
    return 1;
  }
  if (auto w = api::tls::writeFileAtomic(out + "/" + name + ".crt", kp->certPem, 0644); !w) {
    std::cerr << "podium credentials: " << w.error() << "\n";
    return 1;
  }
  std::cout << out << "/" << name << ".crt\n" << out << "/" << name << ".key\n";
  return 0;
}

}  // namespace podium::cli
