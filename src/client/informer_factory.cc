#include "podium/client/informer_factory.h"

namespace podium::client {

Informer& InformerFactory::informer(const Resource& r) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = r.group + "/" + r.version + "/" + r.plural;
  auto& slot = informers_[key];
  if (!slot) {
    slot = std::make_unique<Informer>(client_, r, "", ListOptions{}, resync_);
    if (started_) slot->start();
  }
  return *slot;
}

void InformerFactory::start() {
  std::lock_guard<std::mutex> lock(mu_);
  started_ = true;
  for (auto& [k, inf] : informers_) inf->start();
}

bool InformerFactory::waitForSync(std::chrono::milliseconds timeout) {
  std::vector<Informer*> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [k, inf] : informers_) all.push_back(inf.get());
  }
  for (auto* inf : all)
    if (!inf->waitForSync(timeout)) return false;
  return true;
}

void InformerFactory::stop() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [k, inf] : informers_) inf->stop();
}

}  // namespace podium::client
