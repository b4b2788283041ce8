#pragma once

// A child process the node agent owns (containerd, the registry). It dies with its parent
// (PR_SET_PDEATHSIG), writes its output to a log file, and is stopped by PID: SIGTERM, then
// SIGKILL after a grace period.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "podium/common/expected.h"

namespace podium::node {

class ChildProcess {
 public:
  // `stdinFd` >= 0 becomes the child's standard input (else /dev/null).
  static Expected<std::unique_ptr<ChildProcess>, std::string> spawn(
      const std::vector<std::string>& argv, const std::string& logFile, int stdinFd = -1);
  ~ChildProcess();  // stop(5s)

  pid_t pid() const { return pid_; }
  bool running();
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status.
  int stop(std::chrono::milliseconds grace);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  bool reaped_ = false;
  int status_ = 0;
};

// Runs a command to completion; returns its exit code and combined output.
struct CommandResult {
  int exitCode = -1;
  std::string output;
};
CommandResult runCommand(const std::vector<std::string>& argv,
                         std::chrono::seconds timeout = std::chrono::seconds(120));

// Polls `ready` every 20 ms until it returns true or `timeout` passes.
bool waitUntil(const std::function<bool()>& ready, std::chrono::milliseconds timeout);

}  // namespace podium::node
