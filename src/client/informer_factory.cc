#include "podium/client/informer_factory.h"

namespace podium::client {

Informer& InformerFactory::informer(const Resource& r) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = r.group + "/" + r.version + "/" + r.plural;
  auto& slot = informers_[key];
  if (!slot) {
    InformerOptions o;
    o.resync = resync_;
    o.clock = &clock_;
    slot = std::make_unique<Informer>(client_, r, std::move(o));
  }
  return *slot;
}

void InformerFactory::start() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [k, inf] : informers_) inf->start();
}

std::vector<Informer*> InformerFactory::informers() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Informer*> all;
  for (auto& [k, inf] : informers_) all.push_back(inf.get());
  return all;
}

bool InformerFactory::waitForSync(std::chrono::milliseconds timeout) {
  for (auto* inf : informers())
    if (inf->started() && !inf->waitForSync(timeout)) return false;
  return true;
}

void InformerFactory::stop() {
  for (auto* inf : informers()) inf->stop();
}

}  // namespace podium::client
