// podium: one binary for the whole cluster; the first argument picks the part to run.
#include <iostream>
#include <string>
#include <vector>

#include "podium/cli/commands.h"
#include "podium/proxy/proxy.h"

namespace {
const char* kUsage = R"(Usage: podium <command> [flags]

Commands:
  server    run Podium on this machine (API server, controllers, registry, node agent)
  agent     run a node of a cluster whose API server is elsewhere
  controllers
            run the controllers, scheduler and GitOps against an API server elsewhere
  proxy     the node proxy (started by the node agent)
  image     build an image and push it to the cluster registry
  app       Argo CD Applications: list, get, diff, history, sync, rollback, wait, create, delete
  rollout   Argo Rollouts: list, get, promote, abort, retry, undo
  credentials
            a node's own API credentials (podium credentials node NAME)
  version   print the version

Run "podium <command> --help" for a command's flags.
)";
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "server") return podium::cli::serverCommand(args);
  if (cmd == "agent") return podium::cli::agentCommand(args);
  if (cmd == "controllers") return podium::cli::controllersCommand(args);
  if (cmd == "proxy") return podium::proxy::proxyCommand(args);
  if (cmd == "image") return podium::cli::imageCommand(args);
  if (cmd == "app") return podium::cli::appCommand(args);
  if (cmd == "rollout") return podium::cli::rolloutCommand(args);
  if (cmd == "credentials") return podium::cli::credentialsCommand(args);
  if (cmd == "version" || cmd == "--version") return podium::cli::versionCommand(args);
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    std::cout << kUsage;
    return 0;
  }
  std::cerr << "podium: unknown command \"" << cmd << "\"\n\n" << kUsage;
  return 2;
}
