#include "podium/mesh/certificates.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "podium/api/storage.h"
#include "podium/client/local_client.h"
#include "podium/store/sqlite_store.h"

namespace podium::mesh {
namespace {

namespace fs = std::filesystem;

// The issuer over a real store: pods are created and bound as the scheduler would.
class IssuerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("podium-issuer-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto s = store::openSqliteStore(store::SqliteOptions{(dir_ / "db").string(), false});
    ASSERT_TRUE(s);
    store_ = std::move(*s);
    cacher_ = std::make_unique<api::Cacher>(*store_, 1000);
    ASSERT_TRUE(cacher_->start());
    storage_ = api::newStorage(*store_, *cacher_, registry_, realClock());
    opts_.fieldManager = "test";
    ASSERT_TRUE(storage_->create(*res("namespaces"), "",
                                 Json::parse(R"({"metadata":{"name":"my-apps"}})"), opts_));
    auto ca = MeshCa::open((dir_ / "ca").string());
    ASSERT_TRUE(ca) << ca.error();
    ca_ = std::make_shared<MeshCa>(std::move(*ca));
    client_ = client::newLocalClient(*storage_, "podium-mesh-ca");
    storage_->setCertificateIssuer(certificateIssuer(ca_, *client_, std::chrono::hours(24)));
  }
  void TearDown() override {
    client_.reset();
    storage_.reset();
    cacher_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }
  api::ResourcePtr res(const std::string& plural) {
    return registry_.snapshot()->find("", "v1", plural);
  }
  void pod(const std::string& name, const std::string& sa, const std::string& node) {
    Json p = Json::parse(R"({"metadata":{},"spec":{"containers":[{"name":"c","image":"x"}]}})");
    p["metadata"]["name"] = name;
    if (!sa.empty()) p["spec"]["serviceAccountName"] = sa;
    ASSERT_TRUE(storage_->create(*res("pods"), "my-apps", p, opts_));
    ASSERT_TRUE(storage_->bind("my-apps", name, "", node, opts_));
  }
  Json request(const std::string& node, int64_t seconds = 3600) {
    auto kc = api::tls::newKeyAndCsr();
    return {
        {"apiVersion", "mesh.podium.io/v1"},
        {"kind", "WorkloadCertificateRequest"},
        {"spec", {{"nodeName", node}, {"request", kc->certPem}, {"expirationSeconds", seconds}}}};
  }

  fs::path dir_;
  store::StorePtr store_;
  std::unique_ptr<api::Cacher> cacher_;
  api::ResourceRegistry registry_;
  std::unique_ptr<api::Storage> storage_;
  client::ClientPtr client_;
  api::WriteOptions opts_;
  std::shared_ptr<MeshCa> ca_;
};

TEST_F(IssuerTest, SignsOnlyForServiceAccountsWithAPodOnTheNode) {
  pod("web", "frontend", "node-a");
  pod("db", "", "node-b");  // the default service account
  auto ok = storage_->issueCertificate("my-apps", "frontend", request("node-a"), "");
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_NE(json::getString(*ok, {"status", "certificateChain"}).find("BEGIN CERTIFICATE"),
            std::string::npos);
  EXPECT_EQ(json::getString(*ok, {"status", "rootCertificate"}), ca_->rootCertPem());
  EXPECT_EQ(json::getString(*ok, {"status", "trustDomain"}), "cluster.local");
  EXPECT_FALSE(json::getString(*ok, {"status", "expirationTimestamp"}).empty());
  EXPECT_TRUE(storage_->issueCertificate("my-apps", "default", request("node-b"), ""));
  // Another node's workload, and a service account with no pod at all, are refused.
  auto other = storage_->issueCertificate("my-apps", "frontend", request("node-b"), "");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), 403);
  EXPECT_NE(other.error().message().find("node-b"), std::string::npos);
  auto none = storage_->issueCertificate("my-apps", "nobody", request("node-a"), "");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), 403);
  // A node's own credentials name it: it cannot ask in another node's name.
  auto spoof = storage_->issueCertificate("my-apps", "frontend", request("node-a"), "node-b");
  ASSERT_FALSE(spoof);
  EXPECT_EQ(spoof.error().code(), 403);
  // Every node may have its ingress gateway's identity.
  EXPECT_TRUE(
      storage_->issueCertificate(kIngressNamespace, kIngressServiceAccount, request("node-c"), ""));
}

TEST_F(IssuerTest, LifetimesAreCappedAndBadRequestsNameTheirField) {
  pod("web", "frontend", "node-a");
  auto capped = storage_->issueCertificate("my-apps", "frontend", request("node-a", 999999), "");
  ASSERT_TRUE(capped);
  auto until = timefmt::parseRfc3339(json::getString(*capped, {"status", "expirationTimestamp"}));
  ASSERT_TRUE(until);
  EXPECT_LE(*until - std::chrono::system_clock::now(),
            std::chrono::hours(24) + std::chrono::minutes(1));
  struct Case {
    std::function<void(Json&)> edit;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](Json& r) { r["spec"].erase("nodeName"); }, "spec.nodeName"},
      {[](Json& r) { r["spec"].erase("request"); }, "spec.request"},
      {[](Json& r) { r["spec"]["request"] = "not a CSR"; }, "spec.request"},
      {[](Json& r) { r["spec"]["expirationSeconds"] = 5; }, "spec.expirationSeconds"},
      {[](Json& r) { r["spec"]["expirationSeconds"] = "soon"; }, "spec.expirationSeconds"},
  };
  for (const auto& c : cases) {
    Json r = request("node-a");
    c.edit(r);
    auto res = storage_->issueCertificate("my-apps", "frontend", r, "");
    ASSERT_FALSE(res) << c.field;
    EXPECT_EQ(res.error().code(), 422) << c.field;
    EXPECT_NE(res.error().message().find(c.field), std::string::npos) << res.error().message();
  }
  auto wrongKind = storage_->issueCertificate("my-apps", "frontend", Json::array(), "");
  ASSERT_FALSE(wrongKind);
  EXPECT_EQ(wrongKind.error().code(), 400);
}

}  // namespace
}  // namespace podium::mesh
