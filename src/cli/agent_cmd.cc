// `podium agent --server URL --token FILE`: a node of a cluster whose API server runs on
// another machine (or in another `podium server`): the node agent with its own containerd,
// talking to the API over HTTPS, and the node's endpoints for logs, exec and port-forward.
#include <signal.h>

#include <filesystem>
#include <iostream>
#include <tuple>

#include "flags.h"
#include "node_setup.h"
#include "podium/api/tls.h"
#include "podium/cli/commands.h"
#include "podium/client/remote_client.h"
#include "podium/common/log.h"
#include "podium/common/net.h"
#include "podium/common/strings.h"
#include "podium/node/node_api.h"

namespace podium::cli {

namespace {
const char* kAgentUsage =
    R"(Usage: podium agent --server URL (--token FILE | --client-cert FILE --client-key FILE) [flags]

Runs a node of the cluster served at URL: registers the Node, runs containerd and the pods the
scheduler binds here, and serves the node's logs/exec/port-forward endpoints to the API server.
Needs root.

Flags:
  --server URL[,URL...] the API server ("https://10.0.0.1:6443"), or several servers of the
                        cluster: the agent uses one and moves on when it cannot reach it
  --token FILE          file holding a bearer token for the API (the server's DATA/tls/admin.token)
  --client-cert FILE, --client-key FILE
                        instead of a token: the node's own credentials (`podium credentials
                        node NAME` on the server); the API then gives this node mesh
                        certificates for its own pods only
  --ca-file FILE        the cluster CA (the server's DATA/tls/ca.crt); without it the server's
                        certificate is not verified
  --data-dir DIR        this node's state (default /var/lib/podium-agent)
  --node-name NAME      default: the host name
  --node-ip IP          the address the API server reaches this node on (default: the first
                        non-loopback IPv4 address)
  --pod-cidr CIDR       this node's pod addresses (default: the range the server allocates to
                        the node from its --cluster-cidr)
  --cluster-cidr CIDR   every node's pods, which this node's pods reach (default 10.42.0.0/16)
  --registry HOST:PORT  the cluster registry (default: the server's host, port 5000)
  --port PORT           port of the node's endpoints (default 10250)
  --ingress-http-port PORT, --ingress-https-port PORT
                        this node's ingress listeners for Istio Gateways and Ingresses, as on
                        the server's node (default 80 and 443; 0: none)
  --workload-cert-ttl SECONDS
                        lifetime asked for mesh workload certificates, renewed at half of it
                        (default 86400; the server caps it)
  --log-level LEVEL     debug, info, warn or error
)";
}  // namespace

int agentCommand(const std::vector<std::string>& args) {
  Flags flags({"server", "token", "client-cert", "client-key", "ca-file", "data-dir", "node-name",
               "node-ip", "pod-cidr", "cluster-cidr", "registry", "port", "ingress-http-port",
               "ingress-https-port", "log-level", "workload-cert-ttl"},
              {"help"});
  if (auto err = flags.parse(args); !err.empty()) {
    std::cerr << "podium agent: " << err << "\n\n" << kAgentUsage;
    return 2;
  }
  if (flags.has("help")) {
    std::cout << kAgentUsage;
    return 0;
  }
  client::RemoteOptions ro;
  if (auto err = readApiCredentials(flags, &ro); !flags.has("server") || !err.empty()) {
    std::cerr << "podium agent: " << (flags.has("server") ? err : "--server is required") << "\n\n"
              << kAgentUsage;
    return 2;
  }
  if (auto err = applyLogLevel(flags); !err.empty()) {
    std::cerr << "podium agent: " << err << "\n";
    return 2;
  }
  uint16_t port = 10250;
  node::AgentOptions ao;
  ao.ingressHttpPort = 80;
  ao.ingressHttpsPort = 443;
  for (auto [flag, p, zero] : {std::tuple{"port", &port, false},
                               {"ingress-http-port", &ao.ingressHttpPort, true},
                               {"ingress-https-port", &ao.ingressHttpsPort, true}})
    if (auto err = flags.port(flag, p, zero); !err.empty()) {
      std::cerr << "podium agent: " << err << "\n";
      return 2;
    }
  std::string server = *flags.get("server");
  std::string serverHost =
      server.substr(server.find("://") == std::string::npos ? 0 : server.find("://") + 3);
  serverHost = serverHost.substr(0, serverHost.find_first_of(":/"));
  std::string dataDir =
      std::filesystem::absolute(flags.get("data-dir").value_or("/var/lib/podium-agent"))
          .lexically_normal()
          .string();
  std::error_code ec;
  std::filesystem::create_directories(dataDir, ec);
  if (auto err = lockDataDir(dataDir); !err.empty()) {
    std::cerr << "podium agent: " << err << "\n";
    return 1;
  }

  sigset_t set = blockStopSignals();

  ro.server = server;
  ro.caFile = flags.get("ca-file").value_or("");
  ro.fieldManager = "kubelet";
  auto client = client::newRemoteClient(ro);
  if (!client) {
    std::cerr << "podium agent: " << client.error() << "\n";
    return 1;
  }
  ao.dataDir = dataDir + "/node";
  ao.nodeName = flags.get("node-name").value_or("");
  ao.nodeIp = flags.get("node-ip").value_or("");
  ao.podCidr = flags.get("pod-cidr").value_or("");
  if (auto c = flags.get("cluster-cidr")) ao.clusterCidr = *c;
  for (const std::string& cidr : {ao.podCidr, ao.clusterCidr})
    if (!cidr.empty() && (!net::Cidr::parse(cidr) || cidr.find('/') == std::string::npos)) {
      std::cerr << "podium agent: " << cidr << " is not an IPv4 range A.B.C.D/N\n";
      return 2;
    }
  ao.registry = flags.get("registry").value_or(serverHost + ":5000");
  ao.sandboxImage = ao.registry + "/" + kPauseImage;
  ao.kubeletPort = port;
  ao.controlPlane = false;
  if (auto t = flags.get("workload-cert-ttl")) {
    auto n = strings::parseInt(*t);
    if (!n || *n < 10) {
      std::cerr << "podium agent: --workload-cert-ttl must be a number of seconds (10 or more)\n";
      return 2;
    }
    ao.workloadCertTtl = std::chrono::seconds(*n);
  }
  if (auto p = ensurePauseImage(ao.registry, dataDir); !p) {
    std::cerr << "podium agent: " << p.error() << "\n";
    return 1;
  }
  auto agent = node::startAgent(**client, ao);
  if (!agent) {
    std::cerr << "podium agent: " << agent.error() << "\n";
    return 1;
  }
  // The node's endpoints, over TLS with a certificate of its own.
  std::string nodeIp = (*agent)->nodeIp();
  auto pki =
      api::tls::ensureClusterPki(dataDir + "/tls", {nodeIp, "127.0.0.1"}, {(*agent)->nodeName()});
  if (!pki) {
    std::cerr << "podium agent: " << pki.error() << "\n";
    (*agent)->stop(true);
    return 1;
  }
  auto handler = node::newNodeApi(**agent, **client, {ro.token});
  api::HttpServerOptions ho;
  ho.address = nodeIp;
  ho.port = port;
  ho.certFile = pki->serverCert;
  ho.keyFile = pki->serverKey;
  ho.workerThreads = 16;
  auto http = api::startHttpServer(ho, *handler);
  if (!http) {
    std::cerr << "podium agent: " << http.error() << "\n";
    (*agent)->stop(true);
    return 1;
  }
  std::cout << "podium agent: node " << (*agent)->nodeName() << " joined " << server
            << " (endpoints on " << nodeIp << ":" << port << ")\n"
            << std::flush;
  int sig = 0;
  sigwait(&set, &sig);
  PODIUM_LOG(Info) << "signal " << sig << ": shutting down";
  (*http)->stop();
  (*agent)->stop(true);
  return 0;
}

}  // namespace podium::cli
