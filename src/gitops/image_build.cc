#include "image_build.h"

#include <filesystem>

#include "image_writeback.h"
#include "podium/client/objects.h"
#include "podium/common/log.h"
#include "podium/common/time.h"

namespace podium::gitops {

using client::SyncResult;

namespace {

constexpr size_t kBuildsKept = 10;
constexpr size_t kLogKept = 4000;  // the end of each build's log, in its status

// An ImageBuild's spec, with its defaults.
struct Spec {
  std::string repo, branch, context, dockerfile, image, tagScheme;
  std::string writeRepo, writeBranch, writePath, helmKey;
  WriteBackTarget target = WriteBackTarget::Yaml;
  GitRepo::Author author;
};

Expected<Spec, std::string> specOf(const Json& obj) {
  const Json& spec = json::at(obj, {"spec"});
  Spec s;
  s.repo = json::getString(spec, {"source", "repoURL"});
  s.branch = json::getString(spec, {"source", "branch"});
  s.context = json::getString(spec, {"source", "context"});
  s.dockerfile = json::getString(spec, {"source", "dockerfile"});
  s.image = json::getString(spec, {"image"});
  s.tagScheme = json::getString(spec, {"tagScheme"});
  s.writeRepo = json::getString(spec, {"writeBack", "repoURL"});
  s.writeBranch = json::getString(spec, {"writeBack", "branch"});
  s.writePath = json::getString(spec, {"writeBack", "path"});
  s.helmKey = json::getString(spec, {"writeBack", "helmKey"});
  std::string target = json::getString(spec, {"writeBack", "target"});
  s.author.name = json::getString(spec, {"writeBack", "author", "name"});
  s.author.email = json::getString(spec, {"writeBack", "author", "email"});
  for (auto [field, value] : {std::pair{"spec.source.repoURL", &s.repo},
                              {"spec.source.branch", &s.branch},
                              {"spec.image", &s.image},
                              {"spec.writeBack.branch", &s.writeBranch},
                              {"spec.writeBack.path", &s.writePath}})
    if (value->empty()) return Unexpected(std::string(field) + ": Required value");
  size_t slash = s.image.rfind('/');
  if (s.image.find_first_of(":@", slash == std::string::npos ? 0 : slash) != std::string::npos)
    return Unexpected("spec.image: a name without a tag (\"" + s.image + "\")");
  if (s.tagScheme.empty()) s.tagScheme = "commit";
  if (s.tagScheme != "commit" && s.tagScheme != "semver")
    return Unexpected("spec.tagScheme: Unsupported value: \"" + s.tagScheme +
                      "\": supported values: \"commit\", \"semver\"");
  if (target.empty() || target == "yaml") {
    s.target = WriteBackTarget::Yaml;
  } else if (target == "kustomize") {
    s.target = WriteBackTarget::Kustomize;
  } else if (target == "helm") {
    s.target = WriteBackTarget::Helm;
  } else {
    return Unexpected("spec.writeBack.target: Unsupported value: \"" + target +
                      "\": supported values: \"yaml\", \"kustomize\", \"helm\"");
  }
  if (s.context.empty()) s.context = ".";
  if (s.dockerfile.empty()) s.dockerfile = "Dockerfile";
  if (s.writeRepo.empty()) s.writeRepo = s.repo;
  if (s.helmKey.empty()) s.helmKey = "image.tag";
  if (s.author.name.empty()) s.author.name = "podium-image-builder";
  if (s.author.email.empty()) s.author.email = "image-builder@podium.invalid";
  for (const std::string* p : {&s.context, &s.dockerfile, &s.writePath})
    if (p->find("..") != std::string::npos || (!p->empty() && (*p)[0] == '/'))
      return Unexpected("a path inside the repository is expected, not \"" + *p + "\"");
  return s;
}

std::string tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : "…" + s.substr(s.size() - n);
}

}  // namespace

ImageBuilds::ImageBuilds(client::Client& client, Sources& sources, const GitOpsOptions& options)
    : Controller("image-builds", client, *options.clock, 2),
      sources_(sources),
      opts_(options),
      builds_(client, kImageBuilds),
      events_(client, "podium-image-builder", "", *options.clock) {
  builds_.addHandlers(enqueueHandlers(false));
  builds_.start();
  if (!builds_.waitForSync(std::chrono::seconds(10)))
    PODIUM_LOG(Warn) << "image builds: the ImageBuilds cache did not sync in 10s";
}

void ImageBuilds::stop() {
  Controller::stop();
  builds_.stop();
}

void ImageBuilds::checkRefs() {
  std::vector<RefWatch::Item> items;
  for (const auto& b : builds_.list())
    items.push_back({client::Informer::keyOf(*b),
                     json::getString(*b, {"spec", "source", "repoURL"}),
                     json::getString(*b, {"spec", "source", "branch"}),
                     json::getString(*b, {"status", "lastCommit"})});
  for (const auto& k : refs_.moved(items, [this](const std::string&url, const std::string&rev) {
         if (rev.empty()) return std::string();
         auto c = sources_.remoteCommit(url, rev);
         return c ? *c : std::string();
       }))
    queue().add(k);
}

std::vector<std::string> ImageBuilds::pushed(const std::vector<std::string>& urls,
                                             const std::string& branch) {
  std::vector<std::string> out;
  for (const auto& b : builds_.list()) {
    if (json::getString(*b, {"spec", "source", "branch"}) != branch) continue;
    std::string repo = json::getString(*b, {"spec", "source", "repoURL"});
    for (const auto& u : urls)
      if (!u.empty() && sameRepository(u, repo)) {
        out.push_back(client::Informer::keyOf(*b));
        queue().add(out.back());
        break;
      }
  }
  return out;
}

SyncResult ImageBuilds::sync(const std::string& key) {
  auto [ns, name] = client::Informer::splitKey(key);
  auto cached = builds_.get(ns, name);
  if (!cached) return SyncResult::ok();
  const Json& obj = *cached;
  Json status = json::at(obj, {"status"}).is_object() ? obj.at("status") : Json::object();
  int64_t generation = json::integer(json::at(obj, {"metadata"}), "generation");
  auto spec = specOf(obj);
  std::string refusal = !spec ? spec.error()
                        : !opts_.imageBuilder
                            ? "this server builds no images: it runs no node agent "
                              "(buildah) — start `podium server` with one"
                            : "";
  if (!refusal.empty()) {
    status["phase"] = "Error";
    status["message"] = refusal;
    status["observedGeneration"] = generation;
    auto w = writeStatus(obj, status);
    return w ? SyncResult::ok() : SyncResult::retry(w.error());
  }
  auto commit = sources_.remoteCommit(spec->repo, spec->branch);
  if (!commit) {
    status["message"] = "cannot read " + spec->branch + " of " + spec->repo + ": " + commit.error();
    auto w = writeStatus(obj, status);
    if (!w) return SyncResult::retry(w.error());
    return SyncResult::after(opts_.pollInterval);
  }
  // Each commit is built once for a spec; a new commit (or a changed spec) builds again.
  std::string stamp = *commit + "@" + std::to_string(generation);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (built_[key] == stamp) return SyncResult::after(opts_.pollInterval);
  }
  // (A build this process did not start, shown as still Building, was cut short by a restart.)
  if (*commit == json::str(status, "lastCommit") &&
      generation == json::integer(status, "observedGeneration") &&
      json::str(status, "phase") != "Building")
    return SyncResult::after(opts_.pollInterval);
  {
    std::lock_guard<std::mutex> lock(mu_);
    built_[key] = stamp;
  }
  build(obj, *commit, status);
  return SyncResult::after(opts_.pollInterval);
}

void ImageBuilds::build(const Json& obj, const std::string& commit, Json& status) {
  Spec spec = *specOf(obj);
  std::string shortCommit = commit.substr(0, 7);
  auto started = clock_.now();
  auto startedMono = clock_.monotonic();
  Json entry = {
      {"commit", commit}, {"phase", "Building"}, {"startedAt", timefmt::rfc3339(started)}};
  Json builds = json::at(status, {"builds"}).is_array() ? status.at("builds") : Json::array();
  builds.insert(builds.begin(), entry);
  while (builds.size() > kBuildsKept) builds.erase(builds.end() - 1);
  status["builds"] = builds;
  status["phase"] = "Building";
  status["message"] = "building " + spec.branch + "@" + shortCommit;
  status["lastCommit"] = commit;
  status["observedGeneration"] = json::integer(json::at(obj, {"metadata"}), "generation");
  Json current = obj;
  if (auto w = writeStatus(current, status)) current = *w;

  // Each step fills `entry`; the first that fails names itself and ends the build.
  auto fail = [&](const std::string& step, const std::string& why, const std::string& log = "") {
    entry["phase"] = "Failed";
    entry["step"] = step;
    entry["message"] = why;
    if (!log.empty()) entry["log"] = tail(log, kLogKept);
  };
  namespace fs = std::filesystem;
  fs::path dir = fs::path(opts_.dataDir) / "gitops" / "builds" /
                 (json::getString(obj, {"metadata", "namespace"}) + "_" +
                  json::getString(obj, {"metadata", "name"}) + "_" + shortCommit);
  std::error_code ec;
  fs::remove_all(dir, ec);
  auto subject = sources_.checkout(spec.repo, commit, dir.string());
  std::string tag;
  if (!subject) {
    fail("checkout", subject.error());
  } else {
    entry["subject"] = *subject;
    // The write-back must have a line to edit before anything is built.
    auto file = sources_.readFile(spec.writeRepo, spec.writeBranch, spec.writePath);
    auto probe = file ? setImageTag(*file, spec.target, spec.image, "x", spec.helmKey)
                      : Expected<TagEdit, std::string>(Unexpected(file.error()));
    if (!probe)
      fail("write-back", probe.error() + " in " + spec.writePath + " on " + spec.writeBranch);
    else
      tag = spec.tagScheme == "semver" ? nextSemver(probe->oldTag) : shortCommit;
  }
  if (!entry.contains("step")) {
    entry["tag"] = tag;
    ImageBuildJob job{(dir / spec.context).string(),
                      (dir / spec.context / spec.dockerfile).string(), spec.image + ":" + tag};
    PODIUM_LOG(Info) << "image builds: building " << job.image << " from " << spec.branch << "@"
                     << shortCommit;
    auto buildStart = clock_.monotonic();
    ImageBuildOutcome out = opts_.imageBuilder(job);
    entry["buildSeconds"] = std::chrono::duration<double>(clock_.monotonic() - buildStart).count();
    if (!out.ok) {
      fail(out.step.empty() ? "build" : out.step, out.error, out.log);
    } else {
      entry["image"] = job.image;
      entry["log"] = tail(out.log, kLogKept);
      std::string message = "build: " + job.image + " from " + spec.branch + "@" + shortCommit +
                            "\n\n" + entry.value("subject", "") + "\n\nSource commit: " + commit +
                            "\nUpdates image " + spec.image + " in " + spec.writePath + ".\n";
      auto bumped = sources_.commitEdit(
          spec.writeRepo, spec.writeBranch, spec.writePath,
          [&](const std::string& content) -> Expected<std::string, std::string> {
            auto e = setImageTag(content, spec.target, spec.image, tag, spec.helmKey);
            if (!e) return Unexpected(e.error() + " in " + spec.writePath);
            return e->content;
          },
          spec.author, message);
      if (!bumped) {
        fail("write-back", bumped.error());
      } else {
        entry["phase"] = "Succeeded";
        entry["writeBackCommit"] = *bumped;
      }
    }
  }
  fs::remove_all(dir, ec);
  entry["finishedAt"] = timefmt::rfc3339(clock_.now());
  entry["durationSeconds"] =
      std::chrono::duration<double>(clock_.monotonic() - startedMono).count();
  bool ok = entry["phase"] == "Succeeded";
  status["builds"][0] = entry;
  status["phase"] = entry["phase"];
  status["message"] = ok ? "built " + json::str(entry, "image") +
                               (json::str(entry, "writeBackCommit").empty()
                                    ? "; " + spec.writePath + " already had it"
                                    : "; " + spec.writeBranch + " at " +
                                          json::str(entry, "writeBackCommit").substr(0, 7))
                         : json::str(entry, "step") + " failed: " + json::str(entry, "message");
  if (ok) status["latestImage"] = entry["image"];
  events_.record(current, ok ? "Normal" : "Warning", ok ? "Built" : "BuildFailed",
                 json::str(status, "message"));
  PODIUM_LOG(Info) << "image builds: " << json::str(status, "message");
  if (auto w = writeStatus(current, status); !w)
    PODIUM_LOG(Warn) << "image builds: status of " << client::Informer::keyOf(obj) << ": "
                     << w.error();
}

Expected<Json, std::string> ImageBuilds::writeStatus(const Json& obj, const Json& status) {
  if (json::at(obj, {"status"}) == status) return obj;
  Json next = obj;
  std::string ns = json::getString(obj, {"metadata", "namespace"});
  std::string name = json::getString(obj, {"metadata", "name"});
  for (int attempt = 0; attempt < 3; ++attempt) {
    next["status"] = status;
    auto w = client_.update(kImageBuilds, ns, next, "status");
    if (w) return *w;
    if (w.error().code() != 409) return Unexpected(w.error().message());
    auto fresh = client_.get(kImageBuilds, ns, name);
    if (!fresh) return Unexpected(fresh.error().message());
    next = *fresh;
  }
  return Unexpected("status of " + ns + "/" + name + " kept conflicting");
}

}  // namespace podium::gitops
