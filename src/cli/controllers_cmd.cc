// `podium controllers --server URL ...`: the control loops of a cluster (the controllers, the
// scheduler and GitOps) against an API server elsewhere, as kube-controller-manager and
// kube-scheduler run beside kube-apiserver. The server then runs with --no-controllers.
#include <signal.h>

#include <filesystem>
#include <iostream>

#include "control_plane.h"
#include "flags.h"
#include "podium/cli/commands.h"
#include "podium/client/remote_client.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"

namespace podium::cli {

namespace {
const char* kControllersUsage =
    R"(Usage: podium controllers --server URL (--token FILE | --client-cert FILE --client-key FILE) [flags]

Runs the cluster's controllers, scheduler and GitOps (Argo CD Applications) against the API
server at URL, for a server started with --no-controllers.

Flags:
  --server URL[,URL...] the API server ("https://10.0.0.1:6443"), or several servers of the
                        cluster: requests go to one and move on when it cannot be reached
  --token FILE          file holding a bearer token for the API (the server's DATA/tls/admin.token)
  --client-cert FILE, --client-key FILE
                        instead of a token: client credentials the server's CA signed
  --ca-file FILE        the cluster CA (the server's DATA/tls/ca.crt); without it the server's
                        certificate is not verified
  --data-dir DIR        where GitOps keeps its repository mirrors (default
                        /var/lib/podium-controllers)
  --gitops-poll-interval MS
                        how often Applications are refreshed from git (default 3000)
  --leader-elect        run only while holding the Lease kube-system/podium-controllers, so that
                        several instances (and servers) can stand by for each other
  --leader-elect-lease-duration MS
                        how long a leader that stopped renewing keeps the Lease (default 3000)
  --node-monitor-grace-period DURATION
                        how long a node's Lease may go unrenewed before it is Ready=Unknown and
                        tainted unreachable (default 20s; its pods go when their toleration does)
  --cluster-cidr CIDR   the pod range nodes without a --pod-cidr of their own get a block of
                        (default 10.42.0.0/16)
  --node-cidr-mask-size BITS
                        the size of each node's block (default 24)
  --log-level LEVEL     debug, info, warn or error
)";
}  // namespace

int controllersCommand(const std::vector<std::string>& args) {
  Flags flags({"server", "token", "client-cert", "client-key", "ca-file", "data-dir",
               "gitops-poll-interval", "log-level", "leader-elect-lease-duration", "cluster-cidr",
               "node-cidr-mask-size", "node-monitor-grace-period"},
              {"leader-elect", "help"});
  if (auto err = flags.parse(args); !err.empty()) {
    std::cerr << "podium controllers: " << err << "\n\n" << kControllersUsage;
    return 2;
  }
  if (flags.has("help")) {
    std::cout << kControllersUsage;
    return 0;
  }
  client::RemoteOptions ro;
  if (auto err = readApiCredentials(flags, &ro); !flags.has("server") || !err.empty()) {
    std::cerr << "podium controllers: " << (flags.has("server") ? err : "--server is required")
              << "\n\n"
              << kControllersUsage;
    return 2;
  }
  if (auto err = applyLogLevel(flags); !err.empty()) {
    std::cerr << "podium controllers: " << err << "\n";
    return 2;
  }
  ControlPlaneOptions cpo;
  if (auto err = readControlPlaneFlags(flags, &cpo); !err.empty()) {
    std::cerr << "podium controllers: " << err << "\n";
    return 2;
  }
  cpo.dataDir =
      std::filesystem::absolute(flags.get("data-dir").value_or("/var/lib/podium-controllers"))
          .lexically_normal()
          .string();
  std::error_code ec;
  std::filesystem::create_directories(cpo.dataDir, ec);
  if (auto err = lockDataDir(cpo.dataDir); !err.empty()) {
    std::cerr << "podium controllers: " << err << "\n";
    return 1;
  }
  sigset_t set = blockStopSignals();
  ro.server = *flags.get("server");
  ro.caFile = flags.get("ca-file").value_or("");
  auto connect = [&ro](const std::string& manager) -> Expected<client::ClientPtr, std::string> {
    client::RemoteOptions o = ro;
    o.fieldManager = manager;
    return client::newRemoteClient(o);
  };
  auto cp = ControlPlane::start(connect, cpo);
  if (!cp) {
    std::cerr << "podium controllers: " << cp.error() << "\n";
    return 1;
  }
  std::cout << "podium controllers: running against " << ro.server << "\n" << std::flush;
  int sig = 0;
  sigwait(&set, &sig);
  PODIUM_LOG(Info) << "signal " << sig << ": shutting down";
  (*cp)->stop();
  return 0;
}

}  // namespace podium::cli
