// The image builder: the write-back's text edits, GitRepo's commit and push against real
// repositories made with git's command line, and the ImageBuild controller with a fake client
// and a builder that records what it was asked (the real buildah run is the e2e test's).

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "../support/fake_client.h"
#include "gitops/image_build.h"
#include "gitops/image_writeback.h"
#include "gitops/repo.h"

namespace podium::gitops {
namespace {

namespace fs = std::filesystem;

// --- the edits ---------------------------------------------------------------------------------

TEST(WriteBack, PlainYamlChangesOnlyTheTagOfThatImage) {
  std::string in =
      "# the app\n"
      "spec:\n"
      "  containers:\n"
      "  - name: app\n"
      "    image: my-docker-hub/golang-app:v1.0.0   # bumped by CI\n"
      "  - name: side\n"
      "    image: \"busybox:1.36\"\n"
      "---\n"
      "  - image: 'docker.io/my-docker-hub/golang-app@sha256:abc'\n";
  auto out = setImageTag(in, WriteBackTarget::Yaml, "my-docker-hub/golang-app", "3f2a1b0");
  ASSERT_TRUE(out) << out.error();
  EXPECT_EQ(out->oldTag, "v1.0.0");
  EXPECT_EQ(out->content,
            "# the app\n"
            "spec:\n"
            "  containers:\n"
            "  - name: app\n"
            "    image: my-docker-hub/golang-app:3f2a1b0   # bumped by CI\n"
            "  - name: side\n"
            "    image: \"busybox:1.36\"\n"
            "---\n"
            "  - image: 'docker.io/my-docker-hub/golang-app:3f2a1b0'\n");
  auto none = setImageTag(in, WriteBackTarget::Yaml, "other/app", "x");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().find("other/app"), std::string::npos);
  EXPECT_EQ(currentImageTag(in, WriteBackTarget::Yaml, "my-docker-hub/golang-app"), "v1.0.0");
}

TEST(WriteBack, KustomizeImagesEntry) {
  std::string in =
      "resources:\n- deployment.yaml\nimages:\n- name: nginx\n  newTag: \"1.25\"\n"
      "- name: my/app  # ours\n  newName: registry/my/app\n  newTag: v1 # pinned\n"
      "namePrefix: dev-\n";
  auto out = setImageTag(in, WriteBackTarget::Kustomize, "my/app", "v2");
  ASSERT_TRUE(out) << out.error();
  EXPECT_EQ(out->oldTag, "v1");
  EXPECT_EQ(out->content,
            "resources:\n- deployment.yaml\nimages:\n- name: nginx\n  newTag: \"1.25\"\n"
            "- name: my/app  # ours\n  newName: registry/my/app\n  newTag: v2 # pinned\n"
            "namePrefix: dev-\n");
  // An entry without newTag gets one; an image without an entry gets one; a file without
  // images: gets the list.
  EXPECT_EQ(setImageTag("images:\n  - name: my/app\n", WriteBackTarget::Kustomize, "my/app", "v3")
                ->content,
            "images:\n  - name: my/app\n    newTag: v3\n");
  EXPECT_EQ(setImageTag("images:\n- name: a\n  newTag: x\nfoo: 1\n", WriteBackTarget::Kustomize,
                        "my/app", "v3")
                ->content,
            "images:\n- name: a\n  newTag: x\n- name: my/app\n  newTag: v3\nfoo: 1\n");
  EXPECT_EQ(setImageTag("resources: []\n", WriteBackTarget::Kustomize, "my/app", "v3")->content,
            "resources: []\nimages:\n- name: my/app\n  newTag: v3\n");
}

TEST(WriteBack, HelmValuesAtAKeyPath) {
  std::string in =
      "replicaCount: 2\nimage:\n  repository: my/app  # the app\n  tag: \"v1.0.0\"  # CI\n"
      "sidecar:\n  image:\n    tag: v9\n";
  auto out = setImageTag(in, WriteBackTarget::Helm, "my/app", "v1.0.1");
  ASSERT_TRUE(out) << out.error();
  EXPECT_EQ(out->oldTag, "v1.0.0");
  EXPECT_EQ(out->content,
            "replicaCount: 2\nimage:\n  repository: my/app  # the app\n  tag: \"v1.0.1\"  # CI\n"
            "sidecar:\n  image:\n    tag: v9\n");
  EXPECT_EQ(setImageTag(in, WriteBackTarget::Helm, "x", "v10", "sidecar.image.tag")->content,
            "replicaCount: 2\nimage:\n  repository: my/app  # the app\n  tag: \"v1.0.0\"  # CI\n"
            "sidecar:\n  image:\n    tag: v10\n");
  auto missing = setImageTag(in, WriteBackTarget::Helm, "x", "v", "app.image.tag");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("app.image.tag"), std::string::npos);
}

TEST(WriteBack, NextSemverAndImageNames) {
  EXPECT_EQ(nextSemver("v1.2.3"), "v1.2.4");
  EXPECT_EQ(nextSemver("1.0"), "1.0.1");
  EXPECT_EQ(nextSemver("latest"), "v0.1.0");
  EXPECT_EQ(nextSemver(""), "v0.1.0");
  EXPECT_TRUE(sameImage("nginx", "docker.io/library/nginx"));
  EXPECT_FALSE(sameImage("my/app", "my/app2"));
}

// --- repositories ------------------------------------------------------------------------------

// An origin (bare, as a git host keeps it) with a source branch and a deploy branch, and a
// working clone to commit in.
class Origin : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("podium-imagebuild-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "work");
    sh("git init -q --bare -b development " + (root_ / "origin.git").string());
    git("init -q -b development && git remote add origin " + (root_ / "origin.git").string());
    write("main.cc", "// version 1.0.0\n");
    write("Dockerfile", "FROM scratch\n");
    git("add -A && git commit -q -m source && git push -q origin development");
    git("checkout -q --orphan argo-dev && git rm -q -rf .");
    write("manifests/rollout.yaml", kManifest);
    git("add -A && git commit -q -m manifests && git push -q origin argo-dev");
    git("checkout -q development");
  }
  void TearDown() override { fs::remove_all(root_); }
  static constexpr const char* kManifest =
      "kind: Rollout  # the seed's app\nspec:\n  template:\n    spec:\n      containers:\n"
      "      - name: app\n        image: my-docker-hub/golang-app:v1.0.0\n";
  void write(const std::string& rel, const std::string& text) {
    fs::create_directories((root_ / "work" / rel).parent_path());
    std::ofstream(root_ / "work" / rel) << text;
  }
  static void sh(const std::string& cmd) {
    std::string full =
        "GIT_AUTHOR_NAME=dev GIT_AUTHOR_EMAIL=dev@x GIT_COMMITTER_NAME=dev "
        "GIT_COMMITTER_EMAIL=dev@x sh -c '" +
        cmd + "' >/dev/null 2>&1";
    ASSERT_EQ(std::system(full.c_str()), 0) << cmd;
  }
  void git(const std::string& args) { sh("cd " + (root_ / "work").string() + " && git " + args); }
  std::string out(const std::string& gitArgs) {
    std::string file = (root_ / "out").string();
    sh("git --git-dir=" + (root_ / "origin.git").string() + " " + gitArgs + " > " + file);
    std::ifstream f(file);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }
  std::string tip(const std::string& branch) {
    std::string s = out("rev-parse " + branch);
    return s.substr(0, s.find('\n'));
  }
  std::string url() const { return "file://" + (root_ / "origin.git").string(); }
  fs::path root_;
};

TEST_F(Origin, CommitsOneFileAndPushesOnlyFastForwards) {
  auto repo = GitRepo::open(url(), (root_ / "cache").string());
  ASSERT_TRUE(repo) << repo.error();
  ASSERT_TRUE((*repo)->fetch());
  std::string base = *(*repo)->resolve("argo-dev");
  EXPECT_EQ(*(*repo)->readFile(base, "manifests/rollout.yaml"), kManifest);
  EXPECT_FALSE((*repo)->readFile(base, "manifests/none.yaml"));
  auto c =
      (*repo)->commitFile(base, "manifests/rollout.yaml", "changed\n", {"bot", "bot@x"}, "bump");
  ASSERT_TRUE(c) << c.error();
  bool moved = true;
  ASSERT_TRUE((*repo)->push(*c, "argo-dev", {}, &moved));
  EXPECT_FALSE(moved);
  EXPECT_EQ(tip("argo-dev"), *c);
  EXPECT_EQ(out("log -1 --format=%an/%ae/%s argo-dev"), "bot/bot@x/bump\n");
  EXPECT_EQ(out("show argo-dev:manifests/rollout.yaml"), "changed\n");
  // Someone else pushes; a commit made on the old tip is refused as moved, nothing overwritten.
  git("fetch -q origin && git checkout -q argo-dev && git reset -q --hard origin/argo-dev");
  write("other.txt", "x");
  git("add -A && git commit -q -m other && git push -q origin argo-dev");
  std::string theirs = tip("argo-dev");
  auto stale = (*repo)->commitFile(*c, "manifests/rollout.yaml", "mine\n", {"bot", "bot@x"}, "m");
  ASSERT_TRUE(stale);
  auto refused = (*repo)->push(*stale, "argo-dev", {}, &moved);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(moved) << refused.error();
  EXPECT_EQ(tip("argo-dev"), theirs);
}

TEST_F(Origin, ACheckedOutBranchOfANonBareRemoteIsRefused) {
  auto repo = GitRepo::open("file://" + (root_ / "work").string(), (root_ / "cache").string());
  ASSERT_TRUE(repo);
  ASSERT_TRUE((*repo)->fetch());
  std::string base = *(*repo)->resolve("development");
  auto c = (*repo)->commitFile(base, "main.cc", "x\n", {"bot", "bot@x"}, "m");
  ASSERT_TRUE(c);
  bool moved = false;
  auto r = (*repo)->push(*c, "development", {}, &moved);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("bare"), std::string::npos) << r.error();
}

// --- the controller ----------------------------------------------------------------------------

class ImageBuildTest : public Origin {
 protected:
  Json imageBuild(const std::string& tagScheme = "commit") {
    return {{"apiVersion", "podium.dev/v1alpha1"},
            {"kind", "ImageBuild"},
            {"metadata", {{"name", "golang-app"}, {"namespace", "argocd"}, {"generation", 1}}},
            {"spec",
             {{"source", {{"repoURL", url()}, {"branch", "development"}}},
              {"image", "my-docker-hub/golang-app"},
              {"tagScheme", tagScheme},
              {"writeBack", {{"branch", "argo-dev"}, {"path", "manifests/rollout.yaml"}}}}}};
  }
  // A controller over the fake API holding `ib`, building with `builder`.
  std::unique_ptr<ImageBuilds> controller(const Json& ib, ImageBuilder builder) {
    fake_.add(kImageBuilds, ib);
    opts_.dataDir = (root_ / "data").string();
    opts_.clock = &clock_;
    opts_.imageBuilder = std::move(builder);
    sources_ = std::make_unique<Sources>(fake_, opts_.dataDir);
    return std::make_unique<ImageBuilds>(fake_, *sources_, opts_);
  }
  Json status() { return (*fake_.object(kImageBuilds, "argocd", "golang-app"))["status"]; }
  // A builder that records each job and what its context held.
  ImageBuilder recorder(bool ok = true) {
    return [this, ok](const ImageBuildJob& job) {
      std::lock_guard<std::mutex> lock(mu_);
      std::ifstream f(job.contextDir + "/main.cc");
      jobs_.push_back({job.image, std::string((std::istreambuf_iterator<char>(f)),
                                              std::istreambuf_iterator<char>())});
      if (!ok)
        return ImageBuildOutcome{false, "", "STEP 3/5: RUN g++ main.cc",
                                 "Error: building at STEP \"RUN g++\": exit status 1",
                                 "main.cc:1: error: expected ';'\n"};
      return ImageBuildOutcome{true, "127.0.0.1:5000/" + job.image, "", "", "built\n"};
    };
  }
  testing::FakeClock clock_;
  testing::FakeClient fake_{clock_};
  GitOpsOptions opts_;
  std::unique_ptr<Sources> sources_;
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> jobs_;  // (image, main.cc)
};

TEST_F(ImageBuildTest, ACommitIsBuiltOnceAndItsTagCommittedOnTheDeployBranch) {
  auto c = controller(imageBuild(), recorder());
  write("main.cc", "// version 2.0.0\n");
  git("commit -q -am \"version 2.0.0\" && git push -q origin development");
  std::string src = tip("development"), deploy = tip("argo-dev");
  EXPECT_FALSE(c->process("argocd/golang-app").failed());
  ASSERT_EQ(jobs_.size(), 1u);
  EXPECT_EQ(jobs_[0].first, "my-docker-hub/golang-app:" + src.substr(0, 7));
  EXPECT_EQ(jobs_[0].second, "// version 2.0.0\n");  // built from that commit
  // One new commit on argo-dev, by the bot, naming the source commit, changing only the tag.
  EXPECT_EQ(tip("argo-dev^"), deploy);
  EXPECT_EQ(out("log -1 --format=%an argo-dev"), "podium-image-builder\n");
  EXPECT_NE(out("log -1 --format=%B argo-dev").find(src), std::string::npos);
  EXPECT_EQ(out("diff --stat " + deploy + " argo-dev"),
            " manifests/rollout.yaml | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)\n");
  EXPECT_NE(out("show argo-dev:manifests/rollout.yaml").find("golang-app:" + src.substr(0, 7)),
            std::string::npos);
  Json s = status();
  EXPECT_EQ(s["phase"], "Succeeded");
  EXPECT_EQ(s["lastCommit"], src);
  ASSERT_EQ(s["builds"].size(), 1u);
  EXPECT_EQ(s["builds"][0]["tag"], src.substr(0, 7));
  EXPECT_EQ(s["builds"][0]["subject"], "version 2.0.0");
  EXPECT_EQ(s["builds"][0]["writeBackCommit"], tip("argo-dev"));
  EXPECT_EQ(s["builds"][0]["log"], "built\n");
  EXPECT_TRUE(s["builds"][0].contains("durationSeconds"));
  // Asked again about the same commit: nothing is built or committed.
  EXPECT_FALSE(c->process("argocd/golang-app").failed());
  EXPECT_EQ(jobs_.size(), 1u);
  EXPECT_EQ(tip("argo-dev^"), deploy);
}

TEST_F(ImageBuildTest, AFailedBuildBumpsNothingAndNamesItsStep) {
  auto c = controller(imageBuild(), recorder(false));
  std::string deploy = tip("argo-dev");
  EXPECT_FALSE(c->process("argocd/golang-app").failed());
  ASSERT_EQ(jobs_.size(), 1u);
  EXPECT_EQ(tip("argo-dev"), deploy);
  Json s = status();
  EXPECT_EQ(s["phase"], "Failed");
  EXPECT_EQ(s["builds"][0]["step"], "STEP 3/5: RUN g++ main.cc");
  EXPECT_NE(json::str(s, "message").find("STEP 3/5"), std::string::npos);
  EXPECT_EQ(s["builds"][0]["log"], "main.cc:1: error: expected ';'\n");
  // Not tried again for the same commit; a new commit is.
  EXPECT_FALSE(c->process("argocd/golang-app").failed());
  EXPECT_EQ(jobs_.size(), 1u);
  write("main.cc", "// fixed\n");
  git("commit -q -am fix && git push -q origin development");
  EXPECT_FALSE(c->process("argocd/golang-app").failed());
  EXPECT_EQ(jobs_.size(), 2u);
}

TEST_F(ImageBuildTest, QuickPushesBuildOnlyTheNewest) {
  auto c = controller(imageBuild(), recorder());
  for (const char* v : {"a", "b", "c"}) {
    write("main.cc", std::string("// ") + v + "\n");
    git(std::string("commit -q -am ") + v + " && git push -q origin development");
  }
  EXPECT_FALSE(c->process("argocd/golang-app").failed());
  ASSERT_EQ(jobs_.size(), 1u);
  EXPECT_EQ(jobs_[0].second, "// c\n");
}

TEST_F(ImageBuildTest, SemverCountsOnFromTheDeployedTag) {
  auto c = controller(imageBuild("semver"), recorder());
  EXPECT_FALSE(c->process("argocd/golang-app").failed());
  ASSERT_EQ(jobs_.size(), 1u);
  EXPECT_EQ(jobs_[0].first, "my-docker-hub/golang-app:v1.0.1");
  EXPECT_NE(out("show argo-dev:manifests/rollout.yaml").find("golang-app:v1.0.1"),
            std::string::npos);
}

TEST_F(ImageBuildTest, WhatCannotBeBuiltIsSaidInTheStatus) {
  Json bad = imageBuild();
  bad["spec"]["writeBack"]["target"] = "jsonnet";
  auto c = controller(bad, recorder());
  EXPECT_FALSE(c->process("argocd/golang-app").failed());
  EXPECT_TRUE(jobs_.empty());
  EXPECT_EQ(status()["phase"], "Error");
  EXPECT_NE(json::str(status(), "message").find("spec.writeBack.target"), std::string::npos);

  Json missingLine = imageBuild();
  missingLine["metadata"]["name"] = "other";
  missingLine["spec"]["image"] = "someone/else";
  fake_.add(kImageBuilds, missingLine);
  // A write-back with nothing to edit fails at that step, before building; the branch untouched.
  std::string deploy = tip("argo-dev");
  auto c2 = std::make_unique<ImageBuilds>(fake_, *sources_, opts_);
  EXPECT_FALSE(c2->process("argocd/other").failed());
  Json s = (*fake_.object(kImageBuilds, "argocd", "other"))["status"];
  EXPECT_TRUE(jobs_.empty());
  EXPECT_EQ(s["builds"][0]["step"], "write-back");
  EXPECT_NE(json::str(s["builds"][0], "message").find("someone/else"), std::string::npos);
  EXPECT_EQ(tip("argo-dev"), deploy);
}

TEST_F(ImageBuildTest, AServerWithoutABuilderRefusesImageBuilds) {
  auto c = controller(imageBuild(), nullptr);
  EXPECT_FALSE(c->process("argocd/golang-app").failed());
  EXPECT_EQ(status()["phase"], "Error");
  EXPECT_NE(json::str(status(), "message").find("builds no images"), std::string::npos);
}

}  // namespace
}  // namespace podium::gitops
