#include "podium/node/images.h"

#include <filesystem>
#include <fstream>

#include "podium/common/http_client.h"
#include "podium/common/log.h"
#include "podium/common/strings.h"
#include "podium/node/process.h"

namespace podium::node {

ImageRef parseImageRef(const std::string& name) {
  ImageRef ref;
  std::string rest = name;
  auto at = rest.find('@');
  if (at != std::string::npos) rest = rest.substr(0, at);
  auto slash = rest.find('/');
  if (slash != std::string::npos) {
    std::string first = rest.substr(0, slash);
    if (first.find('.') != std::string::npos || first.find(':') != std::string::npos ||
        first == "localhost") {
      ref.registry = first;
      rest = rest.substr(slash + 1);
    }
  }
  auto colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
    ref.tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  } else {
    ref.tag = "latest";
  }
  if ((ref.registry.empty() || ref.registry == "docker.io") && rest.find('/') == std::string::npos)
    rest = "library/" + rest;
  if (ref.registry == "docker.io" || ref.registry == "index.docker.io") ref.registry.clear();
  ref.repository = rest;
  return ref;
}

bool registryHas(const std::string& registry, const ImageRef& ref) {
  auto colon = registry.rfind(':');
  if (colon == std::string::npos) return false;
  auto port = strings::parseInt(registry.substr(colon + 1));
  if (!port) return false;
  auto r = net::httpGet(registry.substr(0, colon), static_cast<int>(*port),
                        "/v2/" + ref.repository + "/manifests/" + ref.tag, std::chrono::seconds(2),
                        {{"Accept",
                          "application/vnd.oci.image.manifest.v1+json, "
                          "application/vnd.docker.distribution.manifest.v2+json"}});
  return r && r->status == 200;
}

namespace {

// The last "STEP n/m: ..." line buildah printed before it failed ("[1/2] STEP 3/4: ..." in a
// multi-stage build), and its own error line.
void whereItFailed(const std::string& log, BuildResult* r) {
  for (const auto& line : strings::split(log, '\n')) {
    size_t at = line.find("STEP ");
    if (at != std::string::npos && (at == 0 || (line[0] == '[' && at == line.find("] ") + 2)))
      r->step = line;
    if (line.rfind("Error: ", 0) == 0 || line.rfind("error ", 0) == 0) r->error = line;
  }
  if (r->step.empty()) r->step = "build";
  if (r->error.empty()) r->error = "buildah bud failed";
}

}  // namespace

BuildResult buildAndPush(const BuildOptions& o) {
  namespace fs = std::filesystem;
  BuildResult r;
  auto setupError = [&r](std::string why) {
    r.step = "setup";
    r.error = std::move(why);
    return r;
  };
  if (o.tag.empty()) return setupError("an image name (-t NAME:TAG) is required");
  std::error_code ec;
  if (!fs::is_directory(o.contextDir, ec))
    return setupError("build context " + o.contextDir + " is not a directory");
  std::string dockerfile = o.dockerfile.empty() ? o.contextDir + "/Dockerfile" : o.dockerfile;
  if (!fs::exists(dockerfile, ec)) return setupError("no Dockerfile at " + dockerfile);
  ImageRef ref = parseImageRef(o.tag);
  // Whatever registry the name carries, the image goes to the cluster registry: the node pulls
  // every registry's images from there (registry.istio.io/x/y:1 is served as x/y:1).
  std::string target = o.registry + "/" + ref.str();
  fs::create_directories(o.storageDir, ec);
  // Short names in FROM lines resolve through the cluster registry, as docker.io would.
  std::string conf = o.storageDir + "/registries.conf";
  {
    std::ofstream f(conf, std::ios::trunc);
    f << "unqualified-search-registries = [\"docker.io\"]\nshort-name-mode = \"permissive\"\n"
      << "[[registry]]\nprefix = \"docker.io\"\nlocation = \"" << o.registry
      << "\"\ninsecure = true\n"
      << "[[registry]]\nlocation = \"" << o.registry << "\"\ninsecure = true\n";
  }
  std::vector<std::string> storage = {
      "--registries-conf",    conf,        "--root",
      o.storageDir + "/root", "--runroot", o.storageDir + "/runroot",
      "--storage-driver",     "vfs"};
  std::vector<std::string> bud = {"buildah"};
  bud.insert(bud.end(), storage.begin(), storage.end());
  std::vector<std::string> budArgs = {"bud",      "--isolation", "chroot", "--layers=false", "-f",
                                      dockerfile, "-t",          target,   o.contextDir};
  bud.insert(bud.end(), budArgs.begin(), budArgs.end());
  auto built = runCommand(bud, std::chrono::seconds(900));
  r.log = built.output;
  if (built.exitCode != 0) {
    whereItFailed(built.output, &r);
    return r;
  }
  std::vector<std::string> push = {"buildah"};
  push.insert(push.end(), storage.begin(), storage.end());
  std::vector<std::string> pushArgs = {"push", "--tls-verify=false", "-q", target,
                                       "docker://" + target};
  push.insert(push.end(), pushArgs.begin(), pushArgs.end());
  auto pushed = runCommand(push, std::chrono::seconds(300));
  r.log += pushed.output;
  if (pushed.exitCode != 0) {
    r.step = "push";
    r.error = "buildah push failed: " + std::string(strings::trim(pushed.output));
    return r;
  }
  PODIUM_LOG(Info) << "built and pushed " << target;
  r.ok = true;
  r.pushed = target;
  return r;
}

}  // namespace podium::node
