#include "podium/node/registry.h"

#include <filesystem>

#include "podium/api/tls.h"
#include "podium/common/http_client.h"
#include "podium/common/log.h"

namespace podium::node {

Expected<std::unique_ptr<Registry>, std::string> Registry::start(const RegistryOptions& o) {
  std::string dir = o.dataDir + "/registry";
  std::error_code ec;
  std::filesystem::create_directories(dir + "/data", ec);
  if (ec) return Unexpected("create " + dir + ": " + ec.message());
  std::string config =
      "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
      "storage:\n  filesystem:\n    rootdirectory: " +
      dir +
      "/data\n  delete:\n    enabled: true\n"
      "http:\n  addr: " +
      o.address + ":" + std::to_string(o.port) + "\n";
  if (auto w = api::tls::writeFileAtomic(dir + "/config.yml", config, 0644); !w)
    return Unexpected(w.error());
  // A registry left over from a previous run on this port answers already: reuse nothing, the
  // port must be ours.
  std::string host = o.address == "0.0.0.0" ? "127.0.0.1" : o.address;
  if (net::httpGet(host, o.port, "/v2/", std::chrono::milliseconds(200)))
    return Unexpected("port " + std::to_string(o.port) +
                      " is already serving; pick another with --registry-port");
  auto p =
      ChildProcess::spawn({"docker-registry", "serve", dir + "/config.yml"}, dir + "/registry.log");
  if (!p) return Unexpected("docker-registry: " + p.error());
  auto r = std::unique_ptr<Registry>(new Registry());
  r->process_ = std::move(*p);
  r->host_ = host;
  r->port_ = o.port;
  bool up = waitUntil(
      [&] {
        auto res = net::httpGet(host, o.port, "/v2/", std::chrono::milliseconds(200));
        return (res && res->status == 200) || !r->process_->running();
      },
      std::chrono::seconds(15));
  if (!up || !r->process_->running())
    return Unexpected("docker-registry did not come up on " + r->address() + " (see " + dir +
                      "/registry.log)");
  PODIUM_LOG(Info) << "image registry serving on " << o.address << ":" << o.port;
  return r;
}

Registry::~Registry() { stop(); }

void Registry::stop() {
  if (process_) process_->stop(std::chrono::seconds(5));
  process_.reset();
}

}  // namespace podium::node
