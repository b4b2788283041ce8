#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gitops/diff.h"
#include "gitops/health.h"
#include "gitops/repo.h"

namespace podium::gitops {
namespace {

namespace fs = std::filesystem;

// A real repository made with git's command line: two branches and a tag.
class RepoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("podium-gitops-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "src");
    run("git init -q -b main");
    write("app/a.yaml", "kind: A\n");
    write("app/b.json", "{}");
    write("app/notes.txt", "not a manifest");
    write("app/sub/c.yml", "kind: C\n");
    run("git add -A && git commit -q -m first && git tag v1");
    run("git checkout -q -b deploy");
    write("app/a.yaml", "kind: A2\n");
    run("git commit -q -am second");
    run("git checkout -q main");
  }
  void TearDown() override { fs::remove_all(root_); }
  void write(const std::string& rel, const std::string& text) {
    fs::create_directories((root_ / "src" / rel).parent_path());
    std::ofstream(root_ / "src" / rel) << text;
  }
  void run(const std::string& cmd) {
    std::string full = "cd " + (root_ / "src").string() +
                       " && GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t "
                       "GIT_COMMITTER_EMAIL=t@t sh -c '" +
                       cmd + "' >/dev/null 2>&1";
    ASSERT_EQ(std::system(full.c_str()), 0) << cmd;
  }
  std::string sha(const std::string& rev) {
    std::string out = (root_ / "sha").string();
    run("git rev-parse " + rev + " > " + out);
    std::ifstream f(out);
    std::string s;
    f >> s;
    return s;
  }
  fs::path root_;
};

TEST_F(RepoTest, ResolvesRevisionsAndListsManifests) {
  auto repo = GitRepo::open("file://" + (root_ / "src").string(), (root_ / "cache").string());
  ASSERT_TRUE(repo) << repo.error();
  ASSERT_TRUE((*repo)->fetch());
  EXPECT_EQ(*(*repo)->resolve("HEAD"), sha("main"));
  EXPECT_EQ(*(*repo)->resolve(""), sha("main"));
  EXPECT_EQ(*(*repo)->resolve("deploy"), sha("deploy"));
  EXPECT_EQ(*(*repo)->resolve("v1"), sha("v1"));
  EXPECT_EQ(*(*repo)->resolve(sha("deploy").substr(0, 8)), sha("deploy"));
  EXPECT_FALSE((*repo)->resolve("no-such-branch"));
  EXPECT_EQ((*repo)->subject(sha("deploy")), "second");

  auto flat = (*repo)->files(sha("deploy"), "app", {});
  ASSERT_TRUE(flat) << flat.error();
  ASSERT_EQ(flat->size(), 2u);  // a.yaml, b.json: not the .txt, not the subdirectory
  EXPECT_EQ((*flat)[0].path, "app/a.yaml");
  EXPECT_EQ((*flat)[0].content, "kind: A2\n");
  DirectoryOptions rec;
  rec.recurse = true;
  EXPECT_EQ((*repo)->files(sha("main"), "app/", rec)->size(), 3u);
  rec.include = "*.yaml";
  EXPECT_EQ((*repo)->files(sha("main"), "app", rec)->size(), 1u);
  rec.include = "{*.yaml,*.yml}";
  EXPECT_EQ((*repo)->files(sha("main"), "app", rec)->size(), 2u);
  rec.include = "";
  rec.exclude = "sub/*";
  EXPECT_EQ((*repo)->files(sha("main"), "app", rec)->size(), 2u);
  EXPECT_FALSE((*repo)->files(sha("main"), "missing", {}));
  // A new commit is seen after the next fetch.
  write("app/d.yaml", "kind: D\n");
  run("git add -A && git commit -q -m third");
  ASSERT_TRUE((*repo)->fetch());
  EXPECT_EQ(*(*repo)->resolve("main"), sha("main"));
}

TEST_F(RepoTest, UnreachableRepositoriesFailCleanly) {
  auto repo = GitRepo::open("file://" + (root_ / "nowhere").string(), (root_ / "cache").string());
  ASSERT_TRUE(repo);
  auto f = (*repo)->fetch();
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().find("fetch"), std::string::npos);
}

TEST(Diff, OnlyWhatGitSetsIsCompared) {
  Json desired = Json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
    "metadata":{"name":"d","namespace":"n","labels":{"app":"x"}},
    "spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"c","image":"i:1"}]}}}})");
  Json live = desired;
  live["metadata"]["uid"] = "u";
  live["metadata"]["resourceVersion"] = "7";
  live["spec"]["strategy"] = {{"type", "RollingUpdate"}};  // a default
  live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent";
  live["status"] = {{"replicas", 3}};
  EXPECT_TRUE(contains(live, comparable(desired)));
  live["spec"]["replicas"] = 1;  // kubectl scale
  EXPECT_FALSE(contains(live, comparable(desired)));
  live["spec"]["replicas"] = 3.0;  // numbers compare as numbers
  EXPECT_TRUE(contains(live, comparable(desired)));
  live["spec"]["template"]["spec"]["containers"].push_back({{"name", "extra"}});
  EXPECT_FALSE(contains(live, comparable(desired)));
  Json secret = Json::parse(R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},
    "stringData":{"k":"hello"}})");
  Json stored = Json::parse(R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},
    "data":{"k":"aGVsbG8="},"type":"Opaque"})");
  EXPECT_TRUE(contains(stored, comparable(secret)));
}

TEST(Health, ArgoRolloutsByTheirPhase) {
  Json r = Json::parse(R"({"apiVersion":"argoproj.io/v1alpha1","kind":"Rollout",
    "metadata":{"generation":3},"status":{"observedGeneration":"3","phase":"Paused",
    "message":"CanaryPauseStep"}})");
  EXPECT_EQ(healthOf(r)->status, "Suspended");
  r["status"]["phase"] = "Degraded";
  r["status"]["message"] = "RolloutAborted: Rollout aborted update to revision 2";
  EXPECT_EQ(healthOf(r)->status, "Degraded");
  EXPECT_EQ(healthOf(r)->message, "RolloutAborted: Rollout aborted update to revision 2");
  r["status"]["phase"] = "Healthy";
  EXPECT_EQ(healthOf(r)->status, "Healthy");
  r["metadata"]["generation"] = 4;  // not yet seen by the controller
  EXPECT_EQ(healthOf(r)->status, "Progressing");
}

TEST(Health, ArgoCdRulesPerKind) {
  Json d = Json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":2},
    "spec":{"replicas":3},"status":{"observedGeneration":2,"replicas":3,"updatedReplicas":3,
    "availableReplicas":3}})");
  EXPECT_EQ(healthOf(d)->status, "Healthy");
  d["status"]["availableReplicas"] = 1;
  EXPECT_EQ(healthOf(d)->status, "Progressing");
  d["status"]["observedGeneration"] = 1;
  EXPECT_EQ(healthOf(d)->status, "Progressing");
  d["status"]["observedGeneration"] = 2;
  d["status"]["conditions"] = {{{"type", "Progressing"}, {"reason", "ProgressDeadlineExceeded"}}};
  EXPECT_EQ(healthOf(d)->status, "Degraded");
  d["spec"]["paused"] = true;
  EXPECT_EQ(healthOf(d)->status, "Suspended");
  Json pod = Json::parse(R"({"apiVersion":"v1","kind":"Pod","spec":{},"status":{"phase":"Running",
    "containerStatuses":[{"state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}})");
  EXPECT_EQ(healthOf(pod)->status, "Degraded");
  Json job = Json::parse(R"({"apiVersion":"batch/v1","kind":"Job",
    "status":{"conditions":[{"type":"Complete","status":"True"}]}})");
  EXPECT_EQ(healthOf(job)->status, "Healthy");
  Json lb = Json::parse(R"({"apiVersion":"v1","kind":"Service","spec":{"type":"LoadBalancer"}})");
  EXPECT_EQ(healthOf(lb)->status, "Progressing");
  EXPECT_EQ(healthOf(Json::parse(R"({"apiVersion":"v1","kind":"Service","spec":{}})"))->status,
            "Healthy");
  EXPECT_FALSE(healthOf(Json::parse(R"({"apiVersion":"v1","kind":"ConfigMap"})")));
  EXPECT_LT(healthRank("Healthy"), healthRank("Progressing"));
  EXPECT_LT(healthRank("Missing"), healthRank("Degraded"));
}

}  // namespace
}  // namespace podium::gitops

namespace podium::gitops {
namespace {

Json parsed(const std::string& text) { return json::parse(text)->value; }

TEST(IgnoreDifferences, JsonPointersAndJqPathsRemoveFields) {
  Json obj = parsed(R"({"spec":{"replicas":3,"template":{"spec":{"containers":[
      {"name":"app","image":"a:1"},{"name":"sidecar","image":"s:1"}]}}},
      "metadata":{"annotations":{"a/b":"x","keep":"y"}}})");
  Json o = obj;
  removePath(o, *parseJsonPointer("/spec/replicas"));
  EXPECT_FALSE(o["spec"].contains("replicas"));
  removePath(o, *parseJsonPointer("/metadata/annotations/a~1b"));
  EXPECT_EQ(o["metadata"]["annotations"], parsed(R"({"keep":"y"})"));
  o = obj;
  removePath(o, *parseJqPath(".spec.template.spec.containers[] | select(.name == \"sidecar\")"));
  ASSERT_EQ(o["spec"]["template"]["spec"]["containers"].size(), 1u);
  EXPECT_EQ(o["spec"]["template"]["spec"]["containers"][0]["name"], "app");
  o = obj;
  removePath(o, *parseJqPath(".spec.template.spec.containers[].image"));
  EXPECT_EQ(o["spec"]["template"]["spec"]["containers"][1], parsed(R"({"name":"sidecar"})"));
  o = obj;
  removePath(o, *parseJqPath(".metadata.annotations[\"a/b\"]"));
  EXPECT_FALSE(o["metadata"]["annotations"].contains("a/b"));
  removePath(o, *parseJqPath(".spec.template.spec.containers[0]"));
  EXPECT_EQ(o["spec"]["template"]["spec"]["containers"].size(), 1u);
  // A path to nothing changes nothing.
  o = obj;
  removePath(o, *parseJqPath(".spec.nothing.here"));
  EXPECT_EQ(o, obj);
}

TEST(IgnoreDifferences, BadRulesNameTheirField) {
  EXPECT_FALSE(parseJsonPointer("spec/replicas"));
  EXPECT_FALSE(parseJqPath("spec"));
  EXPECT_FALSE(parseJqPath(".spec | length"));
  EXPECT_FALSE(parseJqPath(".spec.x | select(.a == 1)"));
  EXPECT_FALSE(parseJqPath("."));
  EXPECT_FALSE(parseJqPath(".a[99999999999999999999999]"));
  EXPECT_FALSE(parseJqPath(".a[\"unterminated]"));
  EXPECT_FALSE(parseJqPath(".a[] | select(.b == )"));
  // A pointer into an array by a huge index selects nothing.
  Json arr = parsed(R"({"a":[1,2]})");
  removePath(arr, *parseJsonPointer("/a/99999999999999999999999"));
  EXPECT_EQ(arr, parsed(R"({"a":[1,2]})"));
  auto r = parseIgnoreRules(parsed(R"([{"kind":"Deployment","jqPathExpressions":[".a |"]}])"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("spec.ignoreDifferences[0].jqPathExpressions[0]"), std::string::npos)
      << r.error();
  r = parseIgnoreRules(parsed(R"([{"group":"apps","jsonPointers":["/spec/replicas"]}])"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("spec.ignoreDifferences[0].kind"), std::string::npos);
  r = parseIgnoreRules(parsed(
      R"([{"group":"apps","kind":"Deployment","name":"web","jsonPointers":["/spec/replicas"],
           "managedFieldsManagers":["kube-controller-manager"]}])"));
  ASSERT_TRUE(r) << r.error();
  EXPECT_TRUE((*r)[0].matches("apps", "Deployment", "any", "web"));
  EXPECT_FALSE((*r)[0].matches("apps", "Deployment", "any", "api"));
  EXPECT_FALSE((*r)[0].matches("", "Deployment", "any", "web"));
  EXPECT_EQ((*r)[0].managers, std::vector<std::string>{"kube-controller-manager"});
}

TEST(IgnoreDifferences, ManagedFieldsAndKeepingLiveValues) {
  Json live = parsed(R"({"spec":{"replicas":5,"template":{"spec":{"containers":[
      {"name":"app","image":"a:2"}]}}},
      "metadata":{"managedFields":[
        {"manager":"hpa","operation":"Update","fieldsV1":{"f:spec":{"f:replicas":{}}}},
        {"manager":"ci","operation":"Apply","fieldsV1":{"f:spec":{"f:template":{"f:spec":{
           "f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:image":{}}}}}}}}]}})");
  auto hpa = managedPaths(live, "hpa");
  ASSERT_EQ(hpa.size(), 1u);
  Json want = parsed(R"({"spec":{"replicas":3,"template":{"spec":{"containers":[
      {"name":"app","image":"a:1"}]}}}})");
  Json w = want;
  removePath(w, hpa[0]);
  EXPECT_FALSE(w["spec"].contains("replicas"));
  auto ci = managedPaths(live, "ci");
  ASSERT_EQ(ci.size(), 1u);
  w = want;
  removePath(w, ci[0]);
  EXPECT_EQ(w["spec"]["template"]["spec"]["containers"][0], parsed(R"({"name":"app"})"));
  // RespectIgnoreDifferences: the live value goes into what is applied.
  w = want;
  keepLive(w, live, *parseJsonPointer("/spec/replicas"));
  EXPECT_EQ(w["spec"]["replicas"], 5);
  w = want;
  keepLive(w, live, *parseJqPath(".spec.template.spec.containers[].image"));
  EXPECT_EQ(w["spec"]["template"]["spec"]["containers"][0]["image"], "a:2");
  w = want;
  keepLive(w, parsed("{}"), *parseJsonPointer("/spec/replicas"));
  EXPECT_FALSE(w["spec"].contains("replicas"));
}

TEST(RepoHost, EveryUrlForm) {
  EXPECT_EQ(repoHost("https://git.example.com/org/app.git").host, "git.example.com");
  EXPECT_EQ(repoHost("https://ci:token@127.0.0.1:8443/app.git").port, "8443");
  auto ssh = repoHost("ssh://git@[::1]:2222/srv/app.git");
  EXPECT_EQ(ssh.host, "::1");
  EXPECT_EQ(ssh.port, "2222");
  auto scp = repoHost("git@github.com:org/app.git");
  EXPECT_EQ(scp.host, "github.com");
  EXPECT_EQ(scp.port, "");
}

}  // namespace
}  // namespace podium::gitops
