#pragma once

// The cluster's image registry: Debian's docker-registry (distribution 2.8), run and supervised
// by the server with its data in the data directory, serving plain HTTP on loopback (or on the
// address the nodes of other machines pull from).

#include <memory>
#include <string>

#include "podium/common/expected.h"
#include "podium/node/process.h"

namespace podium::node {

struct RegistryOptions {
  std::string dataDir;  // the registry keeps DATA/registry/{config.yml,data,log}
  uint16_t port = 5000;
  std::string address = "127.0.0.1";  // where it listens ("0.0.0.0": every address)
};

class Registry {
 public:
  static Expected<std::unique_ptr<Registry>, std::string> start(const RegistryOptions& options);
  ~Registry();
  // HOST:PORT of the registry as this machine reaches it.
  std::string address() const { return host_ + ":" + std::to_string(port_); }
  uint16_t port() const { return port_; }
  void stop();

 private:
  std::unique_ptr<ChildProcess> process_;
  std::string host_;
  uint16_t port_ = 0;
};

}  // namespace podium::node
