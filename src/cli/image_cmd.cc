// `podium image build -t NAME:TAG [-f Dockerfile] DIR`: builds with buildah and pushes to the
// cluster registry, where the node's containerd pulls from.
#include <filesystem>
#include <iostream>

#include "flags.h"
#include "podium/cli/commands.h"
#include "podium/node/images.h"

namespace podium::cli {

namespace {
const char* kImageUsage = R"(Usage: podium image build -t NAME:TAG [flags] DIR

Builds DIR/Dockerfile with buildah and pushes the image to the cluster registry, where pods
find it by the same name (short names such as my-docker-hub/app:v1 resolve there as docker.io).

Flags:
  -t, --tag NAME:TAG    the image's name
  -f, --file FILE       the Dockerfile (default DIR/Dockerfile)
  --registry HOST:PORT  the cluster registry (default 127.0.0.1:5000)
  --data-dir DIR        the server's data directory, for buildah's storage (default /var/lib/podium)
)";
}  // namespace

int imageCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] != "build") {
    std::cerr << kImageUsage;
    return args.size() == 1 && (args[0] == "--help" || args[0] == "help") ? 0 : 2;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  for (auto& a : rest) {
    if (a == "-t") a = "--tag";
    if (a == "-f") a = "--file";
  }
  Flags flags({"tag", "file", "registry", "data-dir"}, {"help"});
  if (auto err = flags.parse(rest); !err.empty()) {
    std::cerr << "podium image build: " << err << "\n\n" << kImageUsage;
    return 2;
  }
  if (flags.has("help")) {
    std::cout << kImageUsage;
    return 0;
  }
  if (flags.positional().size() != 1 || !flags.has("tag")) {
    std::cerr << "podium image build: need -t NAME:TAG and one build directory\n\n" << kImageUsage;
    return 2;
  }
  node::BuildOptions b;
  b.contextDir = std::filesystem::absolute(flags.positional()[0]).lexically_normal().string();
  b.dockerfile = flags.get("file").value_or("");
  b.tag = *flags.get("tag");
  b.registry = flags.get("registry").value_or("127.0.0.1:5000");
  b.storageDir =
      std::filesystem::absolute(flags.get("data-dir").value_or("/var/lib/podium")).string() +
      "/buildah";
  auto built = node::buildAndPush(b);
  if (!built.ok) {
    std::cerr << built.log << "podium image build: " << built.step << ": " << built.error << "\n";
    return 1;
  }
  std::cout << "pushed " << built.pushed << "\n";
  return 0;
}

}  // namespace podium::cli
