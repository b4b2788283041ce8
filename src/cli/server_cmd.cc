#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <tuple>

#include "control_plane.h"
#include "flags.h"
#include "metrics_setup.h"
#include "node_setup.h"
#include "podium/api/server.h"
#include "podium/api/tls.h"
#include "podium/cli/commands.h"
#include "podium/client/local_client.h"
#include "podium/common/log.h"
#include "podium/common/net.h"
#include "podium/common/strings.h"
#include "podium/mesh/certificates.h"

namespace podium::cli {

namespace {
const char* kServerUsage = R"(Usage: podium server [flags]

Runs Podium on this machine: the Kubernetes API server, the controllers and scheduler, the
image registry and (unless --no-agent) the node agent with containerd.

Flags:
  --data-dir DIR        state, credentials and kubeconfig (default /var/lib/podium)
  --api-port PORT       HTTPS port of the Kubernetes API (default 6443)
  --address ADDR        address to listen on (default 127.0.0.1)
  --tls-san NAME[,NAME...]
                        more host names or IP addresses for the API's serving certificate (what
                        agents and kubectl on other machines dial)
  --service-cidr CIDR   ClusterIP range (default 10.43.0.0/16)
  --no-agent            run only the control plane (and the registry) on this machine
  --no-controllers      run no controllers, scheduler or GitOps here (`podium controllers`
                        runs them against this server from elsewhere)
  --registry-port PORT  port of the image registry (default 5000)
  --registry-address ADDR
                        address the image registry listens on (default 127.0.0.1; the nodes of
                        other machines pull from it)
  --node-name NAME      this node's name (default the host name)
  --pod-cidr CIDR       this node's pod addresses (default 10.42.0.0/24)
  --ingress-http-port PORT
                        the node's ingress listener for Istio Gateways and Ingresses (default 80;
                        0 turns it off)
  --ingress-https-port PORT
                        the same terminating TLS with the certificates Gateway servers and
                        Ingresses name (default 443; 0 turns it off)
  --trust-domain NAME   the mesh's SPIFFE trust domain (default cluster.local)
  --workload-cert-ttl SECONDS
                        lifetime of the mesh's workload certificates, renewed at half of it
                        (default 86400)
  --gitops-poll-interval MS
                        how often Argo CD Applications are refreshed from git, in milliseconds
                        (default 3000, plus up to a quarter of it as jitter)
  --datastore URL       keep the cluster's state on etcd: etcd://HOST:PORT[,HOST:PORT...] (several
                        servers may share one etcd); default: SQLite in DATA/db
  --datastore-cafile FILE, --datastore-certfile FILE, --datastore-keyfile FILE
                        TLS to etcd (its CA, and a client certificate and key)
  --bootstrap-secret-file FILE
                        on etcd: the secret the cluster's credentials are sealed with in the
                        datastore; a server joining with an empty DATA/tls takes them with the
                        first server's (its DATA/tls/bootstrap.secret, made on its first start)
  --leader-elect        run the controllers, scheduler and GitOps only while holding the Lease
                        kube-system/podium-controllers (on by default with --datastore)
  --leader-elect-lease-duration MS
                        how long a leader that stopped renewing keeps the Lease (default 3000)
  --node-monitor-grace-period DURATION
                        how long a node's Lease may go unrenewed before it is Ready=Unknown and
                        tainted unreachable (default 20s; its pods go when their toleration does)
  --cluster-cidr CIDR   the pod range nodes without a --pod-cidr of their own get a block of
                        (default 10.42.0.0/16)
  --node-cidr-mask-size BITS
                        the size of each node's block (default 24)
  --no-fsync            acknowledge writes before they reach the disk (survives kill -9, not power loss)
  --log-level LEVEL     debug, info, warn or error (default info)
  --watch-history EVENTS
                        recent changes kept for watches that resume (default 100000)
  --watch-bookmark-interval SECONDS
                        how often idle watches that allow bookmarks get one (default 60)
)";
}  // namespace

int serverCommand(const std::vector<std::string>& args) {
  Flags flags({"data-dir",
               "api-port",
               "address",
               "service-cidr",
               "log-level",
               "watch-bookmark-interval",
               "watch-history",
               "registry-port",
               "node-name",
               "pod-cidr",
               "ingress-http-port",
               "ingress-https-port",
               "workload-cert-ttl",
               "trust-domain",
               "gitops-poll-interval",
               "datastore",
               "datastore-cafile",
               "datastore-certfile",
               "datastore-keyfile",
               "bootstrap-secret-file",
               "leader-elect-lease-duration",
               "node-monitor-grace-period",
               "cluster-cidr",
               "node-cidr-mask-size",
               "tls-san",
               "registry-address"},
              {"no-agent", "no-controllers", "no-fsync", "leader-elect", "help"});
  if (auto err = flags.parse(args); !err.empty()) {
    std::cerr << "podium server: " << err << "\n\n" << kServerUsage;
    return 2;
  }
  if (flags.has("help")) {
    std::cout << kServerUsage;
    return 0;
  }
  if (auto err = applyLogLevel(flags); !err.empty()) {
    std::cerr << "podium server: " << err << "\n";
    return 2;
  }
  api::ServerOptions o;
  o.dataDir = flags.get("data-dir").value_or("/var/lib/podium");
  o.dataDir = std::filesystem::absolute(o.dataDir).lexically_normal().string();
  o.address = flags.get("address").value_or("127.0.0.1");
  if (auto sans = flags.get("tls-san"))
    for (const auto& san : strings::split(*sans, ','))
      if (!strings::trim(san).empty()) o.tlsSans.emplace_back(strings::trim(san));
  o.serviceCidr = flags.get("service-cidr").value_or(o.serviceCidr);
  o.fsyncEveryCommit = !flags.has("no-fsync");
  o.datastore = flags.get("datastore").value_or("");
  o.datastoreCaFile = flags.get("datastore-cafile").value_or("");
  o.datastoreCertFile = flags.get("datastore-certfile").value_or("");
  o.datastoreKeyFile = flags.get("datastore-keyfile").value_or("");
  if (auto f = flags.get("bootstrap-secret-file")) {
    auto secret = api::tls::readFile(*f);
    if (!secret || strings::trim(*secret).empty()) {
      std::cerr << "podium server: --bootstrap-secret-file: "
                << (secret ? "the file is empty" : secret.error()) << "\n";
      return 2;
    }
    o.bootstrapSecret = std::string(strings::trim(*secret));
  }
  if (auto b = flags.get("watch-bookmark-interval")) {
    auto n = strings::parseInt(*b);
    if (!n || *n < 1) {
      std::cerr
          << "podium server: --watch-bookmark-interval must be a positive number of seconds\n";
      return 2;
    }
    o.watchBookmarkInterval = std::chrono::seconds(*n);
  }
  if (auto h = flags.get("watch-history")) {
    auto n = strings::parseInt(*h);
    if (!n || *n < 1) {
      std::cerr << "podium server: --watch-history must be a positive number of events\n";
      return 2;
    }
    o.cacheHistoryEvents = static_cast<size_t>(*n);
  }

  NodeSetupOptions node;
  node.dataDir = o.dataDir;
  node.agent = !flags.has("no-agent");
  node.registryAddress = flags.get("registry-address").value_or(node.registryAddress);
  node.agentOptions.ingressHttpPort = 80;
  node.agentOptions.ingressHttpsPort = 443;
  for (auto [flag, port, zero] :
       {std::tuple{"api-port", &o.port, true},
        {"registry-port", &node.registryPort, false},
        {"ingress-http-port", &node.agentOptions.ingressHttpPort, true},
        {"ingress-https-port", &node.agentOptions.ingressHttpsPort, true}})
    if (auto err = flags.port(flag, port, zero); !err.empty()) {
      std::cerr << "podium server: " << err << "\n";
      return 2;
    }
  // The mesh CA (DATA/tls/mesh): its SPIFFE trust domain, and the longest workload
  // certificate lifetime it grants.
  std::string trustDomain = flags.get("trust-domain").value_or("cluster.local");
  std::chrono::seconds workloadCertMaxTtl{24 * 3600};
  if (auto t = flags.get("workload-cert-ttl")) {
    auto n = strings::parseInt(*t);
    if (!n || *n < 10) {
      std::cerr << "podium server: --workload-cert-ttl must be a number of seconds (10 or more)\n";
      return 2;
    }
    node.agentOptions.workloadCertTtl = std::chrono::seconds(*n);
    workloadCertMaxTtl = std::max(workloadCertMaxTtl, node.agentOptions.workloadCertTtl);
  }
  ControlPlaneOptions cpo;
  cpo.dataDir = o.dataDir;
  // Servers sharing an etcd take turns running the control loops.
  cpo.leaderElect = !o.datastore.empty();
  if (auto err = readControlPlaneFlags(flags, &cpo); !err.empty()) {
    std::cerr << "podium server: " << err << "\n";
    return 2;
  }
  // ImageBuilds build into this server's registry.
  cpo.imageBuilder = imageBuilder(
      (node.registryAddress == "0.0.0.0" ? std::string("127.0.0.1") : node.registryAddress) + ":" +
          std::to_string(node.registryPort),
      o.dataDir);
  node.agentOptions.nodeName = flags.get("node-name").value_or("");
  // This machine's node takes the cluster CIDR's first block unless told otherwise.
  if (auto cluster = net::Cidr::parse(cpo.controllers.clusterCidr);
      cluster && flags.has("cluster-cidr"))
    node.agentOptions.podCidr =
        net::formatIpv4(cluster->base) + "/" + std::to_string(cpo.controllers.nodeCidrMaskSize);
  node.agentOptions.podCidr = flags.get("pod-cidr").value_or(node.agentOptions.podCidr);
  if (!net::Cidr::parse(node.agentOptions.podCidr) ||
      node.agentOptions.podCidr.find('/') == std::string::npos) {
    std::cerr << "podium server: --pod-cidr must be an IPv4 range A.B.C.D/N\n";
    return 2;
  }
  node.agentOptions.serviceCidr = o.serviceCidr;
  if (!cpo.controllers.clusterCidr.empty())
    node.agentOptions.clusterCidr = cpo.controllers.clusterCidr;

  // Signals are taken synchronously by this thread; block them before any thread starts.
  sigset_t set = blockStopSignals();

  // One process per data directory: a second one would share the store and the node's state.
  std::error_code dirError;
  std::filesystem::create_directories(o.dataDir, dirError);
  if (auto err = lockDataDir(o.dataDir); !err.empty()) {
    std::cerr << "podium server: " << err << "\n";
    return 1;
  }
  auto server = api::startApiServer(o);
  if (!server) {
    std::cerr << "podium server: " << server.error() << "\n";
    return 1;
  }
  api::Storage& storage = (*server)->storage();
  // The mesh CA signs workload certificates through the API (serviceaccounts/certificate).
  auto ca = mesh::MeshCa::open(o.dataDir + "/tls/mesh", trustDomain);
  if (!ca) {
    std::cerr << "podium server: mesh CA: " << ca.error() << "\n";
    (*server)->stop();
    return 1;
  }
  if (auto shared = (*server)->publishCredentials(); !shared) {
    std::cerr << "podium server: " << shared.error() << "\n";
    (*server)->stop();
    return 1;
  }
  auto caClient = client::newLocalClient(storage, "podium-mesh-ca");
  storage.setCertificateIssuer(mesh::certificateIssuer(
      std::make_shared<mesh::MeshCa>(std::move(*ca)), *caClient, workloadCertMaxTtl));
  auto metrics = startServerMetrics(**server, o.dataDir);
  if (!metrics) {
    std::cerr << "podium server: " << metrics.error() << "\n";
    (*server)->stop();
    return 1;
  }
  std::unique_ptr<ControlPlane> controlPlane;
  if (flags.has("no-controllers")) {
    PODIUM_LOG(Info) << "this server runs no controllers, scheduler or GitOps (--no-controllers)";
  } else {
    auto cp = ControlPlane::start(
        [&storage](const std::string& manager) -> Expected<client::ClientPtr, std::string> {
          return client::newLocalClient(storage, manager);
        },
        cpo);
    if (!cp) {
      std::cerr << "podium server: " << cp.error() << "\n";
      (*server)->stop();
      return 1;
    }
    controlPlane = std::move(*cp);
    (*server)->setArgoCdHandler(
        [cp = controlPlane.get()](const api::HttpRequest& r) { return cp->serveArgoCd(r); });
  }
  auto nodeRuntime = startNode(**server, node);
  if (!nodeRuntime) {
    std::cerr << "podium server: " << nodeRuntime.error() << "\n";
    (*metrics)->stop();
    if (controlPlane) controlPlane->stop();
    (*server)->stop();
    return 1;
  }
  (*metrics)->setLocalAgent((*nodeRuntime)->agent());
  PODIUM_LOG(Info) << "API ready on https://" << o.address << ":" << (*server)->port();
  std::cout << "Podium API server is ready on https://" << o.address << ":" << (*server)->port()
            << "\n"
            << "Point kubectl at it with:\n"
            << "  export KUBECONFIG=" << (*server)->kubeconfigPath() << "\n"
            << "  kubectl get namespaces\n"
            << std::flush;
  int sig = 0;
  sigwait(&set, &sig);
  PODIUM_LOG(Info) << "signal " << sig << ": shutting down";
  (*metrics)->stop();
  (*nodeRuntime)->stop();
  if (controlPlane) controlPlane->stop();
  (*server)->stop();
  return 0;
}

int versionCommand(const std::vector<std::string>&) {
  std::cout << "podium v0.1.0 (Kubernetes API v1.32)\n";
  return 0;
}

}  // namespace podium::cli
