// podium-proxy: the node proxy alone (what the node agent runs; `podium proxy` is the same).
// The data plane links no API server, store or client.
#include <string>
#include <vector>

#include "podium/proxy/proxy.h"

int main(int argc, char** argv) {
  return podium::proxy::proxyCommand(std::vector<std::string>(argv + 1, argv + argc));
}
