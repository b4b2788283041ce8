#include "podium/api/storage.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "api/patch.h"
#include "api/test_util.h"
#include "podium/store/sqlite_store.h"

namespace podium::api {
namespace {

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_.open("podium-storage-", [this](Cacher& cacher) {
      cacher.addListener("/registry/apiextensions.k8s.io/", [this](const std::vector<CacheEvent>&) {
        int64_t rev;
        std::vector<Json> crds;
        for (const auto& c :
             db_.cacher->list("/registry/apiextensions.k8s.io/customresourcedefinitions/", &rev))
          crds.push_back(*c.object);
        registry_.setCustomResources(crds, nullptr);
      });
    });
    store_ = db_.store.get();
    cacher_ = db_.cacher.get();
    storage_ = newStorage(*store_, *cacher_, registry_, realClock());
    opts_.fieldManager = "test";
    ASSERT_TRUE(storage_->create(*res("", "v1", "namespaces"), "",
                                 Json::parse(R"({"metadata":{"name":"ns1"}})"), opts_));
  }
  void TearDown() override {
    storage_.reset();
    db_.close();
  }
  ResourcePtr res(const std::string& g, const std::string& v, const std::string& p) {
    return registry_.snapshot()->find(g, v, p);
  }
  Json deployment(const std::string& name, int replicas = 1) {
    Json d = Json::parse(
        R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels":{"app":"x"}},
      "spec":{"selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"x"}},
      "spec":{"containers":[{"name":"c","image":"nginx:1.25"}]}}}})");
    d["metadata"]["name"] = name;
    d["spec"]["replicas"] = replicas;
    return d;
  }

  testing::TestStore db_;
  store::Store* store_ = nullptr;
  Cacher* cacher_ = nullptr;
  ResourceRegistry registry_;
  std::unique_ptr<Storage> storage_;
  WriteOptions opts_;
};

TEST_F(StorageTest, CreateSetsServerFieldsAndDefaults) {
  auto d = storage_->create(*res("apps", "v1", "deployments"), "ns1", deployment("web"), opts_);
  ASSERT_TRUE(d) << d.error().message();
  const Json& o = d->object;
  EXPECT_TRUE(d->created);
  EXPECT_EQ(o["metadata"]["generation"], 1);
  EXPECT_EQ(o["metadata"]["namespace"], "ns1");
  EXPECT_EQ(o["metadata"]["uid"].get<std::string>().size(), 36u);
  EXPECT_FALSE(o["metadata"]["resourceVersion"].get<std::string>().empty());
  EXPECT_EQ(o["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
  EXPECT_EQ(o["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
  EXPECT_EQ(o["metadata"]["managedFields"][0]["manager"], "test");
  auto again = storage_->create(*res("apps", "v1", "deployments"), "ns1", deployment("web"), opts_);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), 409);
  EXPECT_EQ(again.error().reason(), "AlreadyExists");
  EXPECT_EQ(again.error().message(), "deployments.apps \"web\" already exists");
}

TEST_F(StorageTest, NamespaceMustExist) {
  auto d = storage_->create(*res("apps", "v1", "deployments"), "missing", deployment("web"), opts_);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), 404);
  EXPECT_EQ(d.error().message(), "namespaces \"missing\" not found");
}

TEST_F(StorageTest, UpdateWithStaleResourceVersionConflicts) {
  auto r = res("apps", "v1", "deployments");
  auto d = storage_->create(*r, "ns1", deployment("web"), opts_);
  ASSERT_TRUE(d);
  Json stale = d->object;
  Json first = d->object;
  first["spec"]["replicas"] = 2;
  auto u1 = storage_->update(*r, "ns1", "web", first, opts_);
  ASSERT_TRUE(u1) << u1.error().message();
  EXPECT_EQ(u1->object["metadata"]["generation"], 2);
  stale["spec"]["replicas"] = 5;
  auto u2 = storage_->update(*r, "ns1", "web", stale, opts_);
  ASSERT_FALSE(u2);
  EXPECT_EQ(u2.error().code(), 409);
  EXPECT_EQ(u2.error().reason(), "Conflict");
}

TEST_F(StorageTest, GenerationOnlyMovesOnSpecChanges) {
  auto r = res("apps", "v1", "deployments");
  ASSERT_TRUE(storage_->create(*r, "ns1", deployment("web"), opts_));
  auto labeled = storage_->patch(*r, "ns1", "web", PatchType::MergePatch,
                                 R"({"metadata":{"labels":{"new":"1"}}})", opts_);
  ASSERT_TRUE(labeled);
  EXPECT_EQ(labeled->object["metadata"]["generation"], 1);
  auto scaled =
      storage_->patch(*r, "ns1", "web", PatchType::MergePatch, R"({"spec":{"replicas":4}})", opts_);
  ASSERT_TRUE(scaled);
  EXPECT_EQ(scaled->object["metadata"]["generation"], 2);
  // Status writes through the main resource are ignored; through /status only status changes.
  auto statusViaMain = storage_->patch(*r, "ns1", "web", PatchType::MergePatch,
                                       R"({"status":{"replicas":9}})", opts_);
  ASSERT_TRUE(statusViaMain);
  EXPECT_FALSE(statusViaMain->object["status"].contains("replicas"));
  WriteOptions so = opts_;
  so.subresource = "status";
  auto status = storage_->patch(*r, "ns1", "web", PatchType::MergePatch,
                                R"({"status":{"replicas":9},"spec":{"replicas":1}})", so);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->object["status"]["replicas"], 9);
  EXPECT_EQ(status->object["spec"]["replicas"], 4);
  EXPECT_EQ(status->object["metadata"]["generation"], 2);
}

TEST_F(StorageTest, UnchangedUpdateDoesNotWrite) {
  auto r = res("", "v1", "configmaps");
  auto c = storage_->create(*r, "ns1", Json::parse(R"({"metadata":{"name":"c"},"data":{"a":"b"}})"),
                            opts_);
  ASSERT_TRUE(c);
  int64_t before = store_->currentRevision();
  auto p = storage_->patch(*r, "ns1", "c", PatchType::MergePatch, R"({"data":{"a":"b"}})", opts_);
  ASSERT_TRUE(p);
  EXPECT_EQ(store_->currentRevision(), before);
  EXPECT_EQ(p->object["metadata"]["resourceVersion"], c->object["metadata"]["resourceVersion"]);
}

TEST_F(StorageTest, StrictFieldValidation) {
  auto r = res("", "v1", "configmaps");
  WriteOptions strict = opts_;
  strict.fieldValidation = FieldValidation::Strict;
  auto bad = storage_->create(
      *r, "ns1", Json::parse(R"({"metadata":{"name":"c","labelz":{}},"data":{"a":"b"},"extra":1})"),
      strict);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), 400);
  EXPECT_EQ(bad.error().message(),
            "strict decoding error: unknown field \"extra\", unknown field \"metadata.labelz\"");
  WriteOptions warn = opts_;
  warn.fieldValidation = FieldValidation::Warn;
  auto ok =
      storage_->create(*r, "ns1", Json::parse(R"({"metadata":{"name":"c"},"extra":1})"), warn);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->warnings, std::vector<std::string>{"unknown field \"extra\""});
  EXPECT_FALSE(ok->object.contains("extra"));
}

TEST_F(StorageTest, FinalizersHoldDeletionUntilRemoved) {
  auto r = res("", "v1", "configmaps");
  ASSERT_TRUE(storage_->create(
      *r, "ns1", Json::parse(R"({"metadata":{"name":"c","finalizers":["example.com/hold"]}})"),
      opts_));
  auto del = storage_->remove(*r, "ns1", "c", DeleteOptions{});
  ASSERT_TRUE(del);
  EXPECT_TRUE(del->object["metadata"].contains("deletionTimestamp"));
  ASSERT_TRUE(storage_->get(*r, "ns1", "c"));
  auto release = storage_->patch(*r, "ns1", "c", PatchType::MergePatch,
                                 R"({"metadata":{"finalizers":null}})", opts_);
  ASSERT_TRUE(release) << release.error().message();
  EXPECT_EQ(storage_->get(*r, "ns1", "c").error().code(), 404);
}

TEST_F(StorageTest, ForegroundDeletionAddsItsFinalizer) {
  auto r = res("apps", "v1", "deployments");
  ASSERT_TRUE(storage_->create(*r, "ns1", deployment("web"), opts_));
  DeleteOptions d;
  d.propagationPolicy = "Foreground";
  auto del = storage_->remove(*r, "ns1", "web", d);
  ASSERT_TRUE(del);
  EXPECT_EQ(del->object["metadata"]["finalizers"], Json::array({"foregroundDeletion"}));
  d.propagationPolicy = "Sideways";
  EXPECT_EQ(storage_->remove(*r, "ns1", "web", d).error().code(), 422);
}

TEST_F(StorageTest, ListPagingAndSelectors) {
  auto r = res("", "v1", "configmaps");
  for (int i = 0; i < 5; ++i) {
    Json cm = {
        {"metadata",
         {{"name", "c" + std::to_string(i)}, {"labels", {{"even", i % 2 == 0 ? "yes" : "no"}}}}}};
    ASSERT_TRUE(storage_->create(*r, "ns1", cm, opts_));
  }
  ListOptions lo;
  lo.limit = 2;
  auto page1 = storage_->list(*r, "ns1", lo);
  ASSERT_TRUE(page1);
  ASSERT_EQ(page1->items.size(), 2u);
  EXPECT_EQ(*page1->remainingItemCount, 3);
  lo.continueToken = page1->continueToken;
  auto page2 = storage_->list(*r, "ns1", lo);
  ASSERT_TRUE(page2);
  EXPECT_EQ((*page2->items[0])["metadata"]["name"], "c2");
  ListOptions sel;
  sel.labelSelector = "even=yes";
  EXPECT_EQ(storage_->list(*r, "ns1", sel)->items.size(), 3u);
  sel.labelSelector = "even in (";
  EXPECT_EQ(storage_->list(*r, "ns1", sel).error().code(), 400);
  ListOptions byName;
  byName.fieldSelector = "metadata.name=c4";
  EXPECT_EQ(storage_->list(*r, "ns1", byName)->items.size(), 1u);
}

TEST_F(StorageTest, WatchReportsSelectorTransitions) {
  auto r = res("", "v1", "configmaps");
  ASSERT_TRUE(storage_->create(
      *r, "ns1", Json::parse(R"({"metadata":{"name":"c","labels":{"on":"no"}}})"), opts_));
  ListOptions lo;
  lo.labelSelector = "on=yes";
  lo.resourceVersion = std::to_string(cacher_->revision());
  auto w = storage_->watch(*r, "ns1", lo, false);
  ASSERT_TRUE(w);
  ASSERT_TRUE(storage_->patch(*r, "ns1", "c", PatchType::MergePatch,
                              R"({"metadata":{"labels":{"on":"yes"}}})", opts_));
  ASSERT_TRUE(
      storage_->patch(*r, "ns1", "c", PatchType::MergePatch, R"({"data":{"k":"v"}})", opts_));
  ASSERT_TRUE(storage_->patch(*r, "ns1", "c", PatchType::MergePatch,
                              R"({"metadata":{"labels":{"on":"no"}}})", opts_));
  std::vector<CacheWatcher::Event> events;
  w->watcher->drain(events);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, WatchEventType::Added);
  EXPECT_EQ(events[1].type, WatchEventType::Modified);
  EXPECT_EQ(events[2].type, WatchEventType::Deleted);
  storage_->stopWatch(*w);
  lo.resourceVersion = "999999";
  EXPECT_EQ(storage_->watch(*r, "ns1", lo, false).error().code(), 504);
}

TEST_F(StorageTest, ServicesGetDistinctClusterIps) {
  auto r = res("", "v1", "services");
  Json svc = Json::parse(R"({"metadata":{"name":"a"},"spec":{"ports":[{"port":80}]}})");
  auto a = storage_->create(*r, "ns1", svc, opts_);
  svc["metadata"]["name"] = "b";
  auto b = storage_->create(*r, "ns1", svc, opts_);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->object["spec"]["clusterIP"], b->object["spec"]["clusterIP"]);
  EXPECT_EQ(a->object["spec"]["ports"][0]["targetPort"], 80);
  svc["metadata"]["name"] = "c";
  svc["spec"]["clusterIP"] = a->object["spec"]["clusterIP"];
  auto c = storage_->create(*r, "ns1", svc, opts_);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), 422);
}

TEST_F(StorageTest, ScaleSubresource) {
  auto r = res("apps", "v1", "deployments");
  ASSERT_TRUE(storage_->create(*r, "ns1", deployment("web", 2), opts_));
  auto s = storage_->getScale(*r, "ns1", "web");
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)["kind"], "Scale");
  EXPECT_EQ((*s)["spec"]["replicas"], 2);
  EXPECT_EQ((*s)["status"]["selector"], "app=x");
  auto p = storage_->patchScale(*r, "ns1", "web", PatchType::MergePatch,
                                R"({"spec":{"replicas":6}})", opts_);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->object["spec"]["replicas"], 6);
  EXPECT_EQ((**storage_->get(*r, "ns1", "web"))["spec"]["replicas"], 6);
}

TEST_F(StorageTest, CustomResourcesFromACrdAtEveryVersion) {
  auto crds = res("apiextensions.k8s.io", "v1", "customresourcedefinitions");
  Json crd = Json::parse(
      R"({"metadata":{"name":"widgets.example.com"},"spec":{"group":"example.com","scope":"Namespaced",
    "names":{"plural":"widgets","kind":"Widget"},
    "versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","properties":{
        "spec":{"type":"object","required":["size"],"properties":{"size":{"type":"integer"},"color":{"type":"string","enum":["red","blue"]}}}}}}},
      {"name":"v1beta1","served":true,"storage":false,"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}]}})");
  auto made = storage_->create(*crds, "", crd, opts_);
  ASSERT_TRUE(made) << made.error().message();
  EXPECT_EQ(made->object["status"]["conditions"][1]["type"], "Established");
  auto v1 = res("example.com", "v1", "widgets");
  auto beta = res("example.com", "v1beta1", "widgets");
  ASSERT_TRUE(v1 && beta);
  auto w = storage_->create(
      *v1, "ns1",
      Json::parse(
          R"({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":3}})"),
      opts_);
  ASSERT_TRUE(w) << w.error().message();
  EXPECT_EQ(w->object["metadata"]["generation"], 1);
  auto asBeta = storage_->get(*beta, "ns1", "w");
  ASSERT_TRUE(asBeta);
  EXPECT_EQ((**asBeta)["apiVersion"], "example.com/v1beta1");
  auto invalid = storage_->create(
      *v1, "ns1",
      Json::parse(
          R"({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"x"},"spec":{"color":"green"}})"),
      opts_);
  ASSERT_FALSE(invalid);
  EXPECT_EQ(invalid.error().code(), 422);
  EXPECT_NE(invalid.error().message().find("spec.size: Required value"), std::string::npos);
  EXPECT_NE(invalid.error().message().find("spec.color: Unsupported value: \"green\""),
            std::string::npos);
  EXPECT_EQ(storage_->patch(*v1, "ns1", "w", PatchType::StrategicMerge, "{}", opts_).error().code(),
            415);
  ASSERT_TRUE(storage_->remove(*crds, "", "widgets.example.com", DeleteOptions{}));
  EXPECT_FALSE(res("example.com", "v1", "widgets"));
  int64_t rev;
  EXPECT_TRUE(cacher_->list("/registry/example.com/widgets/", &rev).empty());
}

TEST_F(StorageTest, DryRunWritesNothing) {
  auto r = res("", "v1", "configmaps");
  WriteOptions dry = opts_;
  dry.dryRun = true;
  auto c = storage_->create(*r, "ns1", Json::parse(R"({"metadata":{"name":"c"}})"), dry);
  ASSERT_TRUE(c);
  EXPECT_EQ(storage_->get(*r, "ns1", "c").error().code(), 404);
}

TEST_F(StorageTest, GenerateName) {
  auto r = res("", "v1", "configmaps");
  auto c =
      storage_->create(*r, "ns1", Json::parse(R"({"metadata":{"generateName":"cfg-"}})"), opts_);
  ASSERT_TRUE(c);
  std::string name = c->object["metadata"]["name"];
  EXPECT_EQ(name.size(), 9u);
  EXPECT_EQ(name.rfind("cfg-", 0), 0u);
}

TEST_F(StorageTest, ServerSideApplyCreatesAndConflicts) {
  auto r = res("apps", "v1", "deployments");
  WriteOptions a = opts_;
  a.fieldManager = "alice";
  Json cfg = deployment("web", 2);
  auto created = storage_->patch(*r, "ns1", "web", PatchType::Apply, cfg.dump(), a);
  ASSERT_TRUE(created) << created.error().message();
  EXPECT_TRUE(created->created);
  WriteOptions b = opts_;
  b.fieldManager = "bob";
  cfg["spec"]["replicas"] = 3;
  auto conflict = storage_->patch(*r, "ns1", "web", PatchType::Apply, cfg.dump(), b);
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().code(), 409);
  b.force = true;
  auto forced = storage_->patch(*r, "ns1", "web", PatchType::Apply, cfg.dump(), b);
  ASSERT_TRUE(forced);
  EXPECT_EQ(forced->object["spec"]["replicas"], 3);
}

TEST_F(StorageTest, AWriteReachesTheCacheAsStoredWithoutDecoding) {
  // The cache takes the object a write hands it when the stored bytes are the ones expected
  // (the marker shows no decoding happened), and decodes the bytes otherwise.
  std::string key = "/registry/test/things/a", bytes = R"({"kind":"Thing","metadata":{}})";
  Json marked = Json::parse(bytes);
  marked["marker"] = true;
  cacher_->expect(key, std::make_shared<const std::string>(bytes), std::make_shared<Json>(marked));
  auto rv = store_->create(key, bytes);
  ASSERT_TRUE(rv);
  ASSERT_TRUE(cacher_->waitForRevision(*rv, std::chrono::seconds(5)));
  EXPECT_TRUE(json::boolean(*cacher_->get(key)->object, "marker"));
  EXPECT_EQ(json::getString(*cacher_->get(key)->object, {"metadata", "resourceVersion"}),
            std::to_string(*rv));
  cacher_->expect(key, std::make_shared<const std::string>("{}"), std::make_shared<Json>(marked));
  rv = store_->update(key, R"({"kind":"Thing","metadata":{},"n":2})", *rv);
  ASSERT_TRUE(rv);
  ASSERT_TRUE(cacher_->waitForRevision(*rv, std::chrono::seconds(5)));
  EXPECT_FALSE(cacher_->get(key)->object->contains("marker"));
  EXPECT_EQ((*cacher_->get(key)->object)["n"], 2);
  // Through the storage, what the cache holds is what decoding the stored bytes gives.
  auto created = storage_->create(*res("apps", "v1", "deployments"), "ns1", deployment("d"), opts_);
  ASSERT_TRUE(created);
  std::string dkey = res("apps", "v1", "deployments")->key("ns1", "d");
  auto stored = store_->get(dkey);
  ASSERT_TRUE(stored);
  Json decoded = Json::parse(stored->value);
  decoded["metadata"]["resourceVersion"] = std::to_string(stored->modRevision);
  EXPECT_EQ(*cacher_->get(dkey)->object, decoded);
}

TEST_F(StorageTest, CronJobSchedulesAndTimeZonesAreChecked) {
  auto cj = [](const std::string& schedule, const std::string& tz) {
    Json c = Json::parse(R"({"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"c"},
      "spec":{"jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"Never",
      "containers":[{"name":"c","image":"busybox"}]}}}}}})");
    c["spec"]["schedule"] = schedule;
    if (!tz.empty()) c["spec"]["timeZone"] = tz;
    return c;
  };
  auto r = res("batch", "v1", "cronjobs");
  auto bad = storage_->create(*r, "ns1", cj("61 * * * *", ""), opts_);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), 422);
  EXPECT_NE(bad.error().message().find("spec.schedule: Invalid value: \"61 * * * *\": minute "
                                       "value 61 is out of range [0-59]"),
            std::string::npos)
      << bad.error().message();
  auto zone = storage_->create(*r, "ns1", cj("0 9 * * *", "Mars/Olympus"), opts_);
  ASSERT_FALSE(zone);
  EXPECT_NE(zone.error().message().find("spec.timeZone: Invalid value: \"Mars/Olympus\": unknown "
                                        "time zone Mars/Olympus"),
            std::string::npos)
      << zone.error().message();
  EXPECT_TRUE(storage_->create(*r, "ns1", cj("0 9 * * 1-5", "Europe/Berlin"), opts_));
}

}  // namespace
}  // namespace podium::api
