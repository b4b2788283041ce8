// Untrusted input never crashes the API's parsers: thousands of seeded random mutations of valid
// inputs go through protobuf decoding, JSON/YAML parsing, schema checks, validation, strategic
// merge and server-side apply. Each must return a value or an error; the test fails on a crash
// (and under sanitizers, on memory errors).
#include <gtest/gtest.h>

#include <random>

#include "api/apply.h"
#include "api/http_codec.h"
#include "api/patch.h"
#include "api/protobuf.h"
#include "api/schema_check.h"
#include "api/validation.h"
#include "podium/api/resources.h"
#include "podium/api/selectors.h"
#include "test_util.h"

namespace podium::api {
namespace {

using testing::unhex;

std::string mutate(std::string s, std::mt19937& rng) {
  std::uniform_int_distribution<int> op(0, 3), byte(0, 255);
  int n = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < n; ++i) {
    if (s.empty()) {
      s.push_back(static_cast<char>(byte(rng)));
      continue;
    }
    size_t pos = rng() % s.size();
    switch (op(rng)) {
      case 0:
        s[pos] = static_cast<char>(byte(rng));
        break;
      case 1:
        s.erase(pos, 1 + rng() % 8);
        break;
      case 2:
        s.insert(pos, 1, static_cast<char>(byte(rng)));
        break;
      case 3:
        s.insert(pos, s.substr(rng() % s.size(), 1 + rng() % 16));
        break;
    }
  }
  return s;
}

const ResourceSet& resources() { return testing::builtinResources(); }

TEST(Robustness, ProtobufDecoder) {
  std::mt19937 rng(1234);
  const std::string seeds[] = {
      unhex("6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b0010a1b0a016412001a0022002a00"
            "3200380042005a080a036170701201641282010802120a0a080a036170701201641a6a0a1a0a0012001a00"
            "22002a003200380042005a080a03617070120164124c122e0a056e67696e7812056e67696e782a00320a0a"
            "001000185022002a0042006a007200800100880100900100a201001a00320042004a005200580060006800"
            "8201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200"),
      unhex("6b3873000a0d0a02763112075365727669636512630a1b0a017312001a0022002a003200380042005a080a"
            "0361707012017312400a1b0a0738302d38303830120354435018502207080010903f1a00280012080a0361"
            "70701201731a002209436c757374657249503a00420052005a00600068001a020a001a002200"),
  };
  auto lookup = testing::builtinProtoTypes();
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    auto r = decodeProtobufObject(mutate(seeds[i % 2], rng), lookup);
    if (r) ++decoded;
  }
  EXPECT_GT(decoded, 0);
}

TEST(Robustness, JsonYamlSchemaAndValidation) {
  std::mt19937 rng(99);
  const std::string seed =
      R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","labels":{"a":"b"}},
    "spec":{"replicas":2,"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},
    "spec":{"containers":[{"name":"c","image":"x","ports":[{"containerPort":80}],"resources":{"limits":{"cpu":"500m"}}}]}}}})";
  auto r = resources().find("apps", "v1", "deployments");
  ASSERT_TRUE(r);
  for (int i = 0; i < 5000; ++i) {
    std::string text = mutate(seed, rng);
    for (bool yaml : {false, true}) {
      auto parsed = yaml ? json::parseYaml(text) : json::parse(text);
      if (!parsed || !parsed->value.is_object()) continue;
      SchemaIssues issues;
      checkSchema(parsed->value, r->schema, false, issues);
      (void)validateObject(*r, parsed->value, nullptr);
      (void)validateObject(*r, parsed->value, &parsed->value);
    }
  }
}

TEST(Robustness, StrategicMergeAndApply) {
  std::mt19937 rng(7);
  Json live = Json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},
    "spec":{"replicas":1,"template":{"spec":{"containers":[{"name":"c","image":"x","env":[{"name":"A","value":"1"}]}]}}}})");
  const std::string patch =
      R"({"metadata":{"labels":{"x":null}},"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"c"}],
    "containers":[{"name":"c","image":"y","env":[{"name":"A","$patch":"delete"}]},{"$patch":"replace"}]}}}})";
  auto type = schema::builtin().find("apps.v1.Deployment");
  ssa::Scope scope{type, true, ""};
  for (int i = 0; i < 5000; ++i) {
    std::string p = mutate(patch, rng);
    (void)applyStrategicMergePatch(live, p, type);
    auto cfg = json::parse(p);
    if (cfg && cfg->value.is_object()) {
      cfg->value["apiVersion"] = "apps/v1";
      cfg->value["kind"] = "Deployment";
      (void)ssa::apply(&live, cfg->value, "m", false, "t", scope, "deployments.apps", "d");
    }
    std::string mf = mutate(
        R"([{"manager":"m","operation":"Apply","fieldsV1":{"f:spec":{"f:replicas":{},"f:template":{".":{}}}}}])",
        rng);
    auto parsedMf = json::parse(mf);
    if (parsedMf) {
      Json obj = live;
      obj["metadata"]["managedFields"] = parsedMf->value;
      (void)ssa::apply(&obj, live, "n", true, "t", scope, "deployments.apps", "d");
    }
  }
}

TEST(Robustness, Selectors) {
  std::mt19937 rng(42);
  for (int i = 0; i < 20000; ++i) {
    auto s =
        LabelSelector::parse(mutate("app=web,tier!=db,env in (a,b),!legacy,x notin (1,2)", rng));
    if (s) (void)s->matches(Json{{"app", "web"}});
    (void)FieldSelector::parse(mutate("metadata.name=x,status.phase!=Running", rng),
                               {"status.phase"});
  }
}

TEST(StatusBody, FieldsInKubernetesOrder) {
  HttpRequest req;
  auto notFound = errorResponse(ApiError::notFound("apps", "deployments.apps", "web"), req);
  EXPECT_EQ(notFound.body,
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
            "\"message\":\"deployments.apps \\\"web\\\" not found\",\"reason\":\"NotFound\","
            "\"details\":{\"name\":\"web\",\"group\":\"apps\",\"kind\":\"deployments\"},"
            "\"code\":404}\n");
  ApiError invalid(
      422, "Invalid", "bad",
      {{"name", "x"},
       {"kind", "pods"},
       {"causes", {{{"field", "spec"}, {"message", "m"}, {"reason", "FieldValueRequired"}}}}});
  EXPECT_NE(errorResponse(invalid, req)
                .body.find(
                    "\"details\":{\"name\":\"x\",\"kind\":\"pods\",\"causes\":[{\"reason\":"
                    "\"FieldValueRequired\",\"message\":\"m\",\"field\":\"spec\"}]},\"code\":422}"),
            std::string::npos);
  // The body is still the same Status to a JSON reader.
  EXPECT_EQ(json::parse(notFound.body)->value,
            ApiError::notFound("apps", "deployments.apps", "web").toStatus());
}

}  // namespace
}  // namespace podium::api
