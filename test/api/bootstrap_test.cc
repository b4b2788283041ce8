#include "api/bootstrap.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "podium/api/tls.h"
#include "podium/store/sqlite_store.h"

namespace podium::api::bootstrap {
namespace {

namespace fs = std::filesystem;

class BootstrapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("podium-bootstrap-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "a" / "mesh");
    fs::create_directories(dir_ / "b");
    auto s = store::openSqliteStore(store::SqliteOptions{(dir_ / "db").string(), false});
    ASSERT_TRUE(s);
    store_ = std::move(*s);
    for (const auto& [rel, data] : Files{{"ca.crt", "CA"},
                                         {"ca.key", "CA KEY"},
                                         {"admin.token", "t0ken"},
                                         {"mesh/ca-key.pem", "MESH KEY"},
                                         {"server.crt", "A's own"},
                                         {"bootstrap.secret", "s3cret"}})
      ASSERT_TRUE(tls::writeFileAtomic((dir_ / "a" / rel).string(), data, 0600));
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string a() const { return (dir_ / "a").string(); }
  std::string b() const { return (dir_ / "b").string(); }

  fs::path dir_;
  store::StorePtr store_;
};

TEST_F(BootstrapTest, SealedCredentialsOpenOnlyWithTheSecret) {
  auto files = readShared(a());
  ASSERT_TRUE(files) << files.error();
  // The server's own certificate and the secret stay home.
  EXPECT_EQ(files->size(), 4u);
  EXPECT_EQ(files->count("server.crt"), 0u);
  EXPECT_EQ(files->count("bootstrap.secret"), 0u);
  auto sealed = seal(*files, "s3cret");
  ASSERT_TRUE(sealed);
  EXPECT_EQ(sealed->find("CA KEY"), std::string::npos);
  auto opened = open(*sealed, "s3cret");
  ASSERT_TRUE(opened) << opened.error();
  EXPECT_EQ(*opened, *files);
  auto wrong = open(*sealed, "guess");
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().find("do not open with this bootstrap secret"), std::string::npos);
  std::string altered = *sealed;
  altered[altered.find("\"data\":\"") + 10] ^= 1;
  EXPECT_FALSE(open(altered, "s3cret"));
  EXPECT_FALSE(open("{not json", "s3cret"));
}

TEST_F(BootstrapTest, AJoiningServerTakesTheFirstOnesCredentials) {
  // Nothing in the store yet: nothing to restore.
  ASSERT_TRUE(restore(*store_, b(), "s3cret"));
  EXPECT_FALSE(fs::exists(dir_ / "b" / "ca.crt"));
  ASSERT_TRUE(publish(*store_, a(), "s3cret"));
  auto restored = restore(*store_, b(), "s3cret");
  ASSERT_TRUE(restored) << restored.error();
  EXPECT_EQ(*tls::readFile((dir_ / "b" / "ca.key").string()), "CA KEY");
  EXPECT_EQ(*tls::readFile((dir_ / "b" / "mesh" / "ca-key.pem").string()), "MESH KEY");
  EXPECT_FALSE(fs::exists(dir_ / "b" / "server.crt"));
  // Again (a restart), and with a copy of tls/: the same files are fine.
  EXPECT_TRUE(restore(*store_, b(), "s3cret"));
  EXPECT_TRUE(restore(*store_, a(), "s3cret"));
  // A second publish keeps the first.
  ASSERT_TRUE(tls::writeFileAtomic((dir_ / "b" / "ca.crt").string(), "another CA", 0600));
  auto second = publish(*store_, b(), "s3cret");
  EXPECT_TRUE(second);
  // A server with another cluster's CA is refused, by name.
  auto other = restore(*store_, b(), "s3cret");
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().find("ca.crt is not the cluster's"), std::string::npos) << other.error();
  EXPECT_FALSE(restore(*store_, (dir_ / "c").string(), "wrong secret"));
}

}  // namespace
}  // namespace podium::api::bootstrap
