#pragma once

// The image builder: a Controller whose key is a `podium.dev/v1alpha1` ImageBuild. A sync asks
// the source repository which commit its branch names; a commit not yet acted on is checked
// out, built and pushed (GitOpsOptions::imageBuilder) with a unique tag, and the tag is
// committed on the deploy branch by a bot author, editing only the image line
// (image_writeback.h). One ImageBuild is built by one worker at a time, so builds never
// interleave, never run twice for one commit, and a commit pushed while another builds is
// superseded by a newer one before its turn comes.

#include <string>
#include <vector>

#include "app.h"
#include "podium/client/controller.h"
#include "podium/client/events.h"
#include "podium/client/informer.h"
#include "podium/gitops/app_controller.h"
#include "sources.h"

namespace podium::gitops {

inline const Resource kImageBuilds{"podium.dev", "v1alpha1", "imagebuilds"};

class ImageBuilds : public client::Controller {
 public:
  // Its workers start with start().
  ImageBuilds(client::Client& client, Sources& sources, const GitOpsOptions& options);
  ~ImageBuilds() override { stop(); }
  void stop();
  // Queues the ImageBuilds whose source branch moved since last asked (the ref watcher's turn).
  void checkRefs();
  // Queues those following `branch` of one of `urls` (a push webhook); their keys.
  std::vector<std::string> pushed(const std::vector<std::string>& urls, const std::string& branch);

 protected:
  client::SyncResult sync(const std::string& key) override;

 private:
  struct Build;
  // Builds `commit` of the ImageBuild `obj` and writes its outcome into `status`.
  void build(const Json& obj, const std::string& commit, Json& status);
  // Writes status (again on a fresh copy when the object changed meanwhile); the written object.
  Expected<Json, std::string> writeStatus(const Json& obj, const Json& status);

  Sources& sources_;
  GitOpsOptions opts_;
  client::Informer builds_;
  client::EventRecorder events_;
  RefWatch refs_;  // checkRefs()'s (one caller: the GitOps ref watcher)
  std::mutex mu_;  // guards built_
  // What each ImageBuild last built ("commit@generation"): its status says so too, but the
  // cache may not show that status yet when the next sync comes.
  std::map<std::string, std::string> built_;
};

}  // namespace podium::gitops
