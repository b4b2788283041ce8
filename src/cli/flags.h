#pragma once

// A small "--name value" / "--name=value" / "--flag" parser for the subcommands.

#include <signal.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "podium/client/remote_client.h"

namespace podium::cli {

class Flags {
 public:
  // `valued` flags take a value; `switches` do not. Unknown flags are an error.
  Flags(std::set<std::string> valued, std::set<std::string> switches)
      : valued_(std::move(valued)), switches_(std::move(switches)) {}

  // Returns an error message, or "" on success.
  std::string parse(const std::vector<std::string>& args);
  std::optional<std::string> get(const std::string& name) const;
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  // Every value of a flag given more than once, in order.
  std::vector<std::string> getAll(const std::string& name) const {
    auto it = all_.find(name);
    return it == all_.end() ? std::vector<std::string>{} : it->second;
  }
  const std::vector<std::string>& positional() const { return positional_; }
  // Reads --name as a port into *port if given (0 only when `zeroAllowed`); returns an error
  // message ("" when absent or valid).
  std::string port(const std::string& name, uint16_t* port, bool zeroAllowed = true) const;

 private:
  std::set<std::string> valued_, switches_;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<std::string>> all_;
  std::vector<std::string> positional_;
};

// The API credentials of a client of a remote server: --token FILE (a bearer token), or
// --client-cert FILE with --client-key FILE (a node's system:node:NAME certificate from
// `podium credentials node`). Returns an error message ("" on success).
std::string readApiCredentials(const Flags& flags, client::RemoteOptions* options);

// The server's data directory a client command (app, credentials) reads: --data-dir, else
// $PODIUM_DATA_DIR, else /var/lib/podium.
std::string serverDataDir(const Flags& flags);

// Applies --log-level if given; returns an error message ("" on success).
std::string applyLogLevel(const Flags& flags);

// Takes an exclusive lock on DIR/lock for this process's life, so that two processes never share
// a data directory; returns an error message ("" on success).
std::string lockDataDir(const std::string& dir);

// Blocks SIGINT and SIGTERM in this thread and the threads it starts (call before starting
// any) and ignores SIGPIPE; returns the set for sigwait.
sigset_t blockStopSignals();

}  // namespace podium::cli
