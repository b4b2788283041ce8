#include "api/admission.h"

#include <gtest/gtest.h>

#include "api/test_util.h"
#include "podium/api/storage.h"
#include "podium/common/strings.h"

namespace podium::api {
namespace {

// Webhook configurations and namespaces written through the real storage; the webhooks
// themselves are a fake caller that answers per path and records what it was sent.
class AdmissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_.open("podium-admission-");
    cacher_ = db_.cacher.get();
    storage_ = newStorage(*db_.store, *cacher_, registry_, realClock());
    opts_.fieldManager = "test";
    create("", "v1", "namespaces", "",
           {{"metadata", {{"name", "on"}, {"labels", {{"hooks", "on"}}}}}});
    create("", "v1", "namespaces", "", {{"metadata", {{"name", "off"}}}});
  }
  void TearDown() override {
    storage_.reset();
    db_.close();
  }
  ResourcePtr res(const std::string& g, const std::string& v, const std::string& p) {
    return registry_.snapshot()->find(g, v, p);
  }
  void create(const std::string& g, const std::string& v, const std::string& p,
              const std::string& ns, Json obj) {
    auto made = storage_->create(*res(g, v, p), ns, std::move(obj), opts_);
    ASSERT_TRUE(made) << made.error().message();
  }
  void hook(const std::string& plural, const std::string& config, const std::string& name,
            Json extra = Json::object()) {
    Json w = {{"name", name},
              {"clientConfig", {{"url", "https://hooks.example.com/" + name}}},
              {"sideEffects", "None"},
              {"admissionReviewVersions", {"v1"}},
              {"namespaceSelector", {{"matchLabels", {{"hooks", "on"}}}}},
              {"rules",
               {{{"operations", {"CREATE"}},
                 {"apiGroups", {""}},
                 {"apiVersions", {"v1"}},
                 {"resources", {"configmaps"}}}}}};
    w.merge_patch(extra);
    create("admissionregistration.k8s.io", "v1", plural, "",
           {{"metadata", {{"name", config}}}, {"webhooks", {w}}});
  }
  // Adds label <name>=1 by JSONPatch.
  static Json labelPatch(const std::string& uid, const std::string& name) {
    Json patch = {{{"op", "add"}, {"path", "/metadata/labels/" + name}, {"value", "1"}}};
    return {{"uid", uid},
            {"allowed", true},
            {"patchType", "JSONPatch"},
            {"patch", strings::base64Encode(json::dump(patch))}};
  }
  Admission admission() {
    return Admission(*cacher_,
                     [this](const WebhookTarget& t, const std::string& body,
                            std::chrono::milliseconds) -> Expected<std::string, std::string> {
                       Json review = Json::parse(body);
                       std::string uid = review["request"]["uid"];
                       std::string name = t.path.substr(1);
                       calls.push_back(name);
                       if (answers.count(name) == 0)
                         return Unexpected(std::string("connection refused"));
                       return json::dump(Json{{"response", answers[name](uid, review)}});
                     });
  }
  Admission::Request request(const std::string& ns) {
    return {*res("", "v1", "configmaps"), "", "CREATE", ns, "cm", nullptr, false};
  }
  Json configMap() { return {{"metadata", {{"name", "cm"}, {"labels", {{"app", "x"}}}}}}; }

  testing::TestStore db_;
  Cacher* cacher_ = nullptr;
  ResourceRegistry registry_;
  std::unique_ptr<Storage> storage_;
  WriteOptions opts_;
  std::vector<std::string> calls;
  std::map<std::string, std::function<Json(const std::string&, const Json&)>> answers;
};

TEST(AdmissionRules, SelectByOperationGroupVersionResourceSubresourceAndScope) {
  ResourceRegistry registry;
  auto pods = registry.snapshot()->find("", "v1", "pods");
  auto nodes = registry.snapshot()->find("", "v1", "nodes");
  Json rule = {{"operations", {"CREATE"}},
               {"apiGroups", {""}},
               {"apiVersions", {"v1"}},
               {"resources", {"pods"}},
               {"scope", "*"}};
  EXPECT_TRUE(ruleSelects(rule, *pods, "", "CREATE"));
  EXPECT_FALSE(ruleSelects(rule, *pods, "", "UPDATE"));
  EXPECT_FALSE(ruleSelects(rule, *pods, "status", "CREATE"));  // subresources only by name
  rule["resources"] = {"pods/*"};
  EXPECT_TRUE(ruleSelects(rule, *pods, "status", "CREATE"));
  EXPECT_FALSE(ruleSelects(rule, *pods, "", "CREATE"));
  rule["resources"] = {"*"};
  rule["operations"] = {"*"};
  EXPECT_TRUE(ruleSelects(rule, *nodes, "", "UPDATE"));
  rule["scope"] = "Namespaced";
  EXPECT_FALSE(ruleSelects(rule, *nodes, "", "UPDATE"));
  EXPECT_TRUE(ruleSelects(rule, *pods, "", "UPDATE"));
  rule["apiGroups"] = {"apps"};
  EXPECT_FALSE(ruleSelects(rule, *pods, "", "UPDATE"));
}

TEST_F(AdmissionTest, MutatingWebhooksRunInOrderAndIfNeededAgainAfterALaterChange) {
  hook("mutatingwebhookconfigurations", "b-second", "second.hooks.example.com");
  hook("mutatingwebhookconfigurations", "a-first", "first.hooks.example.com",
       {{"reinvocationPolicy", "IfNeeded"}});
  int firstCalls = 0;
  answers["first.hooks.example.com"] = [&](const std::string& uid, const Json&) {
    return ++firstCalls == 1 ? labelPatch(uid, "first") : Json{{"uid", uid}, {"allowed", true}};
  };
  answers["second.hooks.example.com"] = [](const std::string& uid, const Json& review) {
    // It sees the first webhook's change.
    EXPECT_EQ(review["request"]["object"]["metadata"]["labels"]["first"], "1");
    return labelPatch(uid, "second");
  };
  Json obj = configMap();
  auto a = admission();
  auto changed = a.mutate(request("on"), obj, nullptr);
  ASSERT_TRUE(changed) << changed.error().message();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(calls, (std::vector<std::string>{"first.hooks.example.com", "second.hooks.example.com",
                                             "first.hooks.example.com"}));
  EXPECT_EQ(obj["metadata"]["labels"], Json({{"app", "x"}, {"first", "1"}, {"second", "1"}}));
  // A namespace the selector leaves out is not sent to anyone.
  calls.clear();
  Json other = configMap();
  EXPECT_FALSE(*a.mutate(request("off"), other, nullptr));
  EXPECT_TRUE(calls.empty());
}

TEST_F(AdmissionTest, ADenialCarriesTheWebhooksStatusAndKubernetesMessage) {
  hook("validatingwebhookconfigurations", "deny", "deny.hooks.example.com");
  answers["deny.hooks.example.com"] = [](const std::string& uid, const Json&) {
    return Json{{"uid", uid},
                {"allowed", false},
                {"status", {{"code", 403}, {"message", "not today"}}},
                {"warnings", {"careful"}}};
  };
  auto a = admission();
  std::vector<std::string> warnings;
  auto r = a.validate(request("on"), configMap(), &warnings);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), 403);
  EXPECT_EQ(r.error().message(),
            "admission webhook \"deny.hooks.example.com\" denied the request: not today");
  EXPECT_EQ(warnings, std::vector<std::string>{"careful"});
}

TEST_F(AdmissionTest, AnUnreachableWebhookFailsOrIsIgnoredByItsPolicy) {
  hook("validatingwebhookconfigurations", "a", "ignored.hooks.example.com",
       {{"failurePolicy", "Ignore"}});
  auto a = admission();
  EXPECT_TRUE(a.validate(request("on"), configMap(), nullptr));
  hook("validatingwebhookconfigurations", "b", "failing.hooks.example.com");
  auto r = a.validate(request("on"), configMap(), nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), 500);
  EXPECT_EQ(r.error().message(),
            "Internal error occurred: failed calling webhook \"failing.hooks.example.com\": failed "
            "to call webhook: connection refused");
  // An answer for another request (uid) is not taken.
  answers["failing.hooks.example.com"] = [](const std::string&, const Json&) {
    return Json{{"uid", "someone-else"}, {"allowed", true}};
  };
  r = a.validate(request("on"), configMap(), nullptr);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("expected response.uid="), std::string::npos);
}

}  // namespace
}  // namespace podium::api

namespace podium::api {
namespace {

class FixedApi : public AggregatedApi {
 public:
  explicit FixedApi(std::string kind) : kind_(std::move(kind)) {}
  std::string group() const override { return "metrics.k8s.io"; }
  std::string version() const override { return "v1beta1"; }
  std::vector<AggregatedResource> resources() const override { return {{"pods", kind_}}; }
  Expected<Json, ApiError> get(const std::string&, const AggregatedQuery&) override {
    return Json::object();
  }

 private:
  std::string kind_;
};

// An APIService takes its group version over from the API the server answers in process (a
// metrics-server installed from its manifests), and gives it back when it goes.
// A delete is sent with the object as oldObject and none as object (objectSelector matching the
// old labels), a CONNECT with its options as the object; either may be refused, by mutating
// webhooks too.
TEST_F(AdmissionTest, DeleteAndConnectAreReviewedAndMayBeRefused) {
  hook("validatingwebhookconfigurations", "protect", "protect.hooks.example.com",
       {{"rules",
         {{{"operations", {"DELETE"}},
           {"apiGroups", {""}},
           {"apiVersions", {"v1"}},
           {"resources", {"configmaps"}}}}},
        {"objectSelector", {{"matchLabels", {{"app", "x"}}}}}});
  hook("mutatingwebhookconfigurations", "noexec", "noexec.hooks.example.com",
       {{"rules",
         {{{"operations", {"CONNECT"}},
           {"apiGroups", {""}},
           {"apiVersions", {"v1"}},
           {"resources", {"pods/exec"}}}}}});
  Json seen;
  answers["protect.hooks.example.com"] = [&](const std::string& uid, const Json& review) {
    seen = review["request"];
    return Json{{"uid", uid}, {"allowed", false}, {"status", {{"message", "protected"}}}};
  };
  answers["noexec.hooks.example.com"] = [&](const std::string& uid, const Json& review) {
    seen = review["request"];
    return Json{{"uid", uid}, {"allowed", false}, {"status", {{"message", "no exec"}}}};
  };
  auto a = admission();
  Json old = configMap();
  Admission::Request del{*res("", "v1", "configmaps"), "", "DELETE", "on", "cm", &old, false};
  auto r = a.review(del, Json());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "admission webhook \"protect.hooks.example.com\" denied the request: protected");
  EXPECT_EQ(seen["operation"], "DELETE");
  EXPECT_TRUE(seen["object"].is_null());
  EXPECT_EQ(seen["oldObject"], old);
  EXPECT_EQ(seen["options"]["kind"], "DeleteOptions");
  // Another object's labels leave the webhook out.
  Json other = {{"metadata", {{"name", "cm"}, {"labels", {{"app", "y"}}}}}};
  Admission::Request otherDel{
      *res("", "v1", "configmaps"), "", "DELETE", "on", "cm", &other, false};
  EXPECT_TRUE(a.review(otherDel, Json()));
  // CONNECT: the options are the object, the subresource named.
  Json options = {{"kind", "PodExecOptions"}, {"apiVersion", "v1"}, {"command", {"sh"}}};
  Admission::Request exec{*res("", "v1", "pods"), "exec", "CONNECT", "on", "p", nullptr, false};
  auto c = a.review(exec, options);
  ASSERT_FALSE(c);
  EXPECT_EQ(seen["object"], options);
  EXPECT_EQ(seen["subResource"], "exec");
  EXPECT_TRUE(seen["options"].is_null());
  Admission::Request attach{*res("", "v1", "pods"), "attach", "CONNECT", "on", "p", nullptr, false};
  EXPECT_TRUE(a.review(attach, options));  // the rule names pods/exec only
}

TEST(ApiServiceRegistry, ForwardedApisWinOverInProcessOnesForTheirGroupVersion) {
  ResourceRegistry registry;
  registry.addAggregatedApi(std::make_shared<FixedApi>("builtin"));
  registry.setForwardedApis({std::make_shared<FixedApi>("forwarded")});
  auto api = registry.snapshot()->aggregated("metrics.k8s.io", "v1beta1");
  ASSERT_TRUE(api);
  EXPECT_EQ(api->resources()[0].kind, "forwarded");
  registry.setForwardedApis({});
  EXPECT_EQ(registry.snapshot()->aggregated("metrics.k8s.io", "v1beta1")->resources()[0].kind,
            "builtin");
}

}  // namespace
}  // namespace podium::api
