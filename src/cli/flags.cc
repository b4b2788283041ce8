#include "flags.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cstdlib>

#include "podium/api/tls.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"

namespace podium::cli {

std::string Flags::parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0 || a == "--") {
      positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool hasValue = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      hasValue = true;
    }
    if (switches_.count(name)) {
      if (hasValue && value != "true" && value != "false")
        return "flag --" + name + " takes no value";
      values_[name] = hasValue ? value : "true";
      continue;
    }
    if (!valued_.count(name)) return "unknown flag: --" + name;
    if (!hasValue) {
      if (i + 1 >= args.size()) return "flag --" + name + " needs a value";
      value = args[++i];
    }
    values_[name] = value;
    all_[name].push_back(value);
  }
  return "";
}

std::string Flags::port(const std::string& name, uint16_t* port, bool zeroAllowed) const {
  auto v = get(name);
  if (!v) return "";
  auto n = strings::parseInt(*v);
  if (!n || *n < (zeroAllowed ? 0 : 1) || *n > 65535) return "--" + name + " must be a port number";
  *port = static_cast<uint16_t>(*n);
  return "";
}

std::optional<std::string> Flags::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string readApiCredentials(const Flags& flags, client::RemoteOptions* o) {
  if (auto cert = flags.get("client-cert")) {
    auto key = flags.get("client-key");
    if (!key) return "--client-cert needs --client-key";
    o->certFile = *cert;
    o->keyFile = *key;
    return "";
  }
  auto file = flags.get("token");
  if (!file) return "give --token FILE, or --client-cert FILE and --client-key FILE";
  auto t = api::tls::readFile(*file);
  if (!t) return "--token: " + t.error();
  o->token = std::string(strings::trim(*t));
  return "";
}

std::string serverDataDir(const Flags& flags) {
  const char* env = std::getenv("PODIUM_DATA_DIR");
  return flags.get("data-dir").value_or(env ? env : "/var/lib/podium");
}

std::string applyLogLevel(const Flags& flags) {
  auto lvl = flags.get("log-level");
  if (!lvl) return "";
  log::Level l;
  if (!log::parseLevel(*lvl, &l)) return "--log-level must be debug, info, warn or error";
  log::setLevel(l);
  return "";
}

std::string lockDataDir(const std::string& dir) {
  // The descriptor stays open (and locked) until the process exits.
  int fd = ::open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0)
    return "the data directory " + dir + " is in use by another podium process";
  return "";
}

sigset_t blockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

}  // namespace podium::cli
