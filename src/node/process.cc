#include "podium/node/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <thread>

namespace podium::node {

namespace {
std::vector<char*> cArgs(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

void resetSignals() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
}
}  // namespace

Expected<std::unique_ptr<ChildProcess>, std::string> ChildProcess::spawn(
    const std::vector<std::string>& argv, const std::string& logFile, int stdinFd) {
  if (argv.empty()) return Unexpected(std::string("empty command"));
  int logFd = ::open(logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logFd < 0) return Unexpected("open " + logFile + ": " + strerror(errno));
  auto args = cArgs(argv);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    ::close(logFd);
    return Unexpected(std::string("fork: ") + strerror(errno));
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    resetSignals();
    setpgid(0, 0);
    int in = stdinFd >= 0 ? stdinFd : ::open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(logFd, 1);
    dup2(logFd, 2);
    execvp(args[0], args.data());
    dprintf(2, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  ::close(logFd);
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid));
}

ChildProcess::~ChildProcess() { stop(std::chrono::seconds(5)); }

bool ChildProcess::running() {
  if (reaped_) return false;
  int st;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = st;
    return false;
  }
  return r == 0;
}

int ChildProcess::stop(std::chrono::milliseconds grace) {
  if (!running()) return status_;
  kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) return status_;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid_, SIGKILL);
  int st = 0;
  waitpid(pid_, &st, 0);
  reaped_ = true;
  status_ = st;
  return st;
}

CommandResult runCommand(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  CommandResult res;
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    res.output = std::string("pipe: ") + strerror(errno);
    return res;
  }
  auto args = cArgs(argv);
  pid_t pid = fork();
  if (pid < 0) {
    res.output = std::string("fork: ") + strerror(errno);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return res;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    resetSignals();
    int in = ::open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    execvp(args[0], args.data());
    dprintf(2, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  ::close(pipefd[1]);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      kill(pid, SIGKILL);
      res.output += "\n(timed out)";
      break;
    }
    struct pollfd p = {pipefd[0], POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) continue;
    ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n <= 0) break;
    if (res.output.size() < 1 << 20) res.output.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  res.exitCode = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return res;
}

bool waitUntil(const std::function<bool()>& ready, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (ready()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace podium::node
