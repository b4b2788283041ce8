#include "api/protobuf.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace podium::api {
namespace {

using testing::unhex;

Expected<Json, std::string> decode(const std::string& hex) {
  return decodeProtobufObject(unhex(hex), testing::builtinProtoTypes());
}

// Bodies captured from kubectl 1.32.4 `kubectl create …` (see research/protocols.md §2.5).
TEST(Protobuf, NamespaceFromKubectlCreate) {
  auto obj = decode(
      "6b3873000a0f0a02763112094e616d65737061636512190a110a017812001a0022002a0032003800420012001a02"
      "0a001a002200");
  ASSERT_TRUE(obj) << obj.error();
  EXPECT_EQ((*obj)["apiVersion"], "v1");
  EXPECT_EQ((*obj)["kind"], "Namespace");
  EXPECT_EQ((*obj)["metadata"]["name"], "x");
  EXPECT_FALSE((*obj)["metadata"].contains("creationTimestamp"));
  EXPECT_FALSE((*obj)["metadata"].contains("generation"));
}

TEST(Protobuf, ConfigMapAndSecretMaps) {
  auto cm = decode(
      "6b3873000a0f0a0276311209436f6e6669674d6170121b0a110a016312001a0022002a0032003800420012060a01"
      "611201621a002200");
  ASSERT_TRUE(cm) << cm.error();
  EXPECT_EQ((*cm)["data"], Json({{"a", "b"}}));
  auto secret = decode(
      "6b3873000a0c0a0276311206536563726574121d0a110a016712001a0022002a0032003800420012060a016b1201"
      "761a001a002200");
  ASSERT_TRUE(secret) << secret.error();
  EXPECT_EQ((*secret)["data"]["k"], "dg==");  // bytes become base64 on the JSON side
}

TEST(Protobuf, ServiceWithIntOrStringTargetPort) {
  auto svc = decode(
      "6b3873000a0d0a02763112075365727669636512630a1b0a017312001a0022002a003200380042005a080a036170"
      "7012017312400a1b0a0738302d38303830120354435018502207080010903f1a00280012080a036170701201731a"
      "002209436c757374657249503a00420052005a00600068001a020a001a002200");
  ASSERT_TRUE(svc) << svc.error();
  const Json& port = (*svc)["spec"]["ports"][0];
  EXPECT_EQ(port["name"], "80-8080");
  EXPECT_EQ(port["port"], 80);
  EXPECT_EQ(port["targetPort"], 8080);
  EXPECT_EQ(port["protocol"], "TCP");
  EXPECT_EQ((*svc)["spec"]["type"], "ClusterIP");
  EXPECT_EQ((*svc)["spec"]["selector"]["app"], "s");
}

TEST(Protobuf, DeploymentWithTemplate) {
  auto d = decode(
      "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b0010a1b0a016412001a0022002a00320038"
      "0042005a080a036170701201641282010802120a0a080a036170701201641a6a0a1a0a0012001a0022002a003200"
      "380042005a080a03617070120164124c122e0a056e67696e7812056e67696e782a00320a0a001000185022002a00"
      "42006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c20100"
      "22020a00280038001a0c0800100018002000280038001a002200");
  ASSERT_TRUE(d) << d.error();
  EXPECT_EQ((*d)["spec"]["replicas"], 2);
  EXPECT_EQ((*d)["spec"]["selector"]["matchLabels"]["app"], "d");
  const Json& c = (*d)["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["name"], "nginx");
  EXPECT_EQ(c["image"], "nginx");
  EXPECT_EQ(c["ports"][0]["containerPort"], 80);
  EXPECT_EQ((*d)["spec"]["template"]["metadata"]["labels"]["app"], "d");
}

TEST(Protobuf, JobWithRestartPolicy) {
  auto j = decode(
      "6b3873000a0f0a0862617463682f763112034a6f6212780a110a016a12001a0022002a0032003800420012593257"
      "0a100a0012001a0022002a00320038004200124312200a016a120762757379626f782a0042006a00720080010088"
      "0100900100a201001a054e65766572320042004a0052005800600068008201008a01009a0100c201001a08200028"
      "0030003a001a002200");
  ASSERT_TRUE(j) << j.error();
  EXPECT_EQ((*j)["spec"]["template"]["spec"]["restartPolicy"], "Never");
  EXPECT_EQ((*j)["spec"]["template"]["spec"]["containers"][0]["image"], "busybox");
}

TEST(Protobuf, MalformedInputIsAnErrorNotACrash) {
  EXPECT_FALSE(decode(""));
  EXPECT_FALSE(decode("6b387300"));                                  // envelope without a type
  EXPECT_FALSE(decode("00000000"));                                  // wrong magic
  EXPECT_FALSE(decode("6b3873000a0f0a02763112094e616d"));            // truncated
  EXPECT_FALSE(decode("6b3873000a0a0a027631120446616b6512020a00"));  // unknown kind "Fake"
  // Every prefix of a valid body fails cleanly or decodes.
  std::string good =
      "6b3873000a0f0a0276311209436f6e6669674d6170121b0a110a016312001a0022002a0032003800420012060a01"
      "611201621a002200";
  for (size_t n = 0; n < good.size(); n += 2) (void)decode(good.substr(0, n));
  // Lengths that run past the end.
  EXPECT_FALSE(decode("6b3873000aff"));
  EXPECT_FALSE(decode("6b38730012ffffffffffffffffff01"));
}

}  // namespace
}  // namespace podium::api
