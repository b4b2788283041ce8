#pragma once

// Building images with buildah and naming them the way containerd resolves them through the
// cluster registry (which stands in for docker.io).

#include <string>

#include "podium/common/expected.h"

namespace podium::node {

// Where NAME:TAG lives in the cluster registry: short Docker Hub names map into the registry
// as docker.io would ("nginx" -> "library/nginx:latest", "me/app:v1" -> "me/app:v1"); names
// with a registry host keep it. Returns {registry host or "", repository:tag}.
struct ImageRef {
  std::string registry;    // "" = the cluster registry (docker.io mirror)
  std::string repository;  // "library/nginx"
  std::string tag;         // "latest"
  std::string str() const { return repository + ":" + tag; }
};
ImageRef parseImageRef(const std::string& name);

// True if `registry` ("127.0.0.1:5000") serves ref's manifest.
bool registryHas(const std::string& registry, const ImageRef& ref);

struct BuildOptions {
  std::string contextDir;
  std::string dockerfile;  // default: contextDir/Dockerfile
  std::string tag;         // NAME:TAG as users write it
  std::string registry;    // "127.0.0.1:5000"
  std::string storageDir;  // buildah's storage (DATA/buildah)
};

struct BuildResult {
  bool ok = false;
  std::string pushed;  // the pushed reference ("127.0.0.1:5000/me/app:v1")
  std::string step;    // what failed: "STEP 3/5: RUN make" (the Dockerfile's), "push", "setup"
  std::string error;   // why ("" when ok)
  std::string log;     // buildah's output
};

// Builds with buildah (vfs storage, chroot isolation) and pushes to the registry.
BuildResult buildAndPush(const BuildOptions& options);

}  // namespace podium::node
