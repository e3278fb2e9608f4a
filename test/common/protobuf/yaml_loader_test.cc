#include "source/common/protobuf/yaml_loader.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "test/common/protobuf/test_config.pb.h"

namespace courier::protobuf {
namespace {

using courier::test::Cluster;
using courier::test::Config;
using courier::test::Endpoint;
using ::testing::HasSubstr;

LoadOptions named(const std::string& source) {
  LoadOptions opts;
  opts.source_name = source;
  return opts;
}

// Loads `yaml` into a Config, failing the test on error.
Config load(const std::string& yaml) {
  Config config;
  const absl::Status status = loadFromYamlString(yaml, config, named("test.yaml"));
  EXPECT_TRUE(status.ok()) << status;
  return config;
}

// The error message loading `yaml` into a Config produces.
std::string loadError(const std::string& yaml, LoadOptions opts = named("test.yaml")) {
  Config config;
  const absl::Status status = loadFromYamlString(yaml, config, opts);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return std::string(status.message());
}

std::string writeTempFile(const std::string& name, const std::string& contents) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
  std::ofstream(path) << contents;
  return path;
}

// --- Messages, scalars and names --------------------------------------------

TEST(YamlLoaderTest, LoadsNestedMessagesAndRepeatedFields) {
  const Config config = load(R"(
static_resources:
  clusters:
  - name: a
    endpoints:
    - address: 10.0.0.1
      port_value: 80
  - name: b
)");
  ASSERT_EQ(config.static_resources().clusters_size(), 2);
  EXPECT_EQ(config.static_resources().clusters(0).name(), "a");
  EXPECT_EQ(config.static_resources().clusters(0).endpoints(0).address(), "10.0.0.1");
  EXPECT_EQ(config.static_resources().clusters(0).endpoints(0).port_value(), 80u);
  EXPECT_EQ(config.static_resources().clusters(1).name(), "b");
}

TEST(YamlLoaderTest, AcceptsJsonNamesAsWellAsProtoNames) {
  const Config config = load(
      "staticResources: {clusters: [{name: a, lbPolicy: RANDOM, connectTimeout: 1s}]}\n"
      "customJSON: x");
  EXPECT_EQ(config.static_resources().clusters(0).lb_policy(), courier::test::RANDOM);
  EXPECT_EQ(config.static_resources().clusters(0).connect_timeout().seconds(), 1);
  EXPECT_EQ(config.custom_json(), "x");
}

TEST(YamlLoaderTest, LoadsEveryScalarType) {
  const Config config = load(R"(
i32: -5
i64: -9007199254740993
u32: 4294967295
u64: 18446744073709551615
s32: -7
f64: 12
f: 1.5
d: -2.25
flag: true
text: hello
data: aGVsbG8=
)");
  EXPECT_EQ(config.i32(), -5);
  EXPECT_EQ(config.i64(), -9007199254740993LL);  // exact: not squeezed through a double
  EXPECT_EQ(config.u32(), 4294967295u);
  EXPECT_EQ(config.u64(), 18446744073709551615ULL);
  EXPECT_EQ(config.s32(), -7);
  EXPECT_EQ(config.f64(), 12u);
  EXPECT_FLOAT_EQ(config.f(), 1.5f);
  EXPECT_DOUBLE_EQ(config.d(), -2.25);
  EXPECT_TRUE(config.flag());
  EXPECT_EQ(config.text(), "hello");
  EXPECT_EQ(config.data(), "hello");
}

TEST(YamlLoaderTest, AcceptsNumbersWrittenAsStrings) {
  const Config config = load(R"(
u32: "8080"
i64: "-123456789012"
u64: "18446744073709551615"
d: "0.5"
)");
  EXPECT_EQ(config.u32(), 8080u);
  EXPECT_EQ(config.i64(), -123456789012LL);
  EXPECT_EQ(config.u64(), 18446744073709551615ULL);
  EXPECT_DOUBLE_EQ(config.d(), 0.5);
}

TEST(YamlLoaderTest, AcceptsIntegralNumbersInExponentForm) {
  EXPECT_EQ(load("u32: 1e3").u32(), 1000u);
  EXPECT_EQ(load("i32: 80.0").i32(), 80);
}

TEST(YamlLoaderTest, AcceptsBooleansWrittenAsStrings) {
  EXPECT_TRUE(load("flag: \"true\"").flag());
  EXPECT_FALSE(load("flag: \"false\"\ntext: x").flag());
}

TEST(YamlLoaderTest, AcceptsSpecialFloatingValues) {
  EXPECT_TRUE(std::isinf(load("d: .inf").d()));
  EXPECT_TRUE(std::isinf(load("d: -Infinity").d()));
  EXPECT_TRUE(std::isnan(load("d: NaN").d()));
}

TEST(YamlLoaderTest, StringFieldKeepsPlainScalarTextAsWritten) {
  EXPECT_EQ(load("text: 8080").text(), "8080");
  EXPECT_EQ(load("text: 1.50").text(), "1.50");
}

TEST(YamlLoaderTest, AcceptsUrlSafeBase64ForBytes) { EXPECT_EQ(load("data: _-8").data(), "\xff\xef"); }

TEST(YamlLoaderTest, NullLeavesFieldUnset) {
  const Config config = load("text: null\nstatic_resources: ~\ntags:\nenabled: null\nexplicit_presence: null");
  EXPECT_FALSE(config.has_static_resources());
  EXPECT_FALSE(config.has_enabled());
  EXPECT_FALSE(config.has_explicit_presence());
  EXPECT_TRUE(config.text().empty());
  EXPECT_EQ(config.tags_size(), 0);
}

TEST(YamlLoaderTest, EmptyInputLoadsEmptyMessage) {
  Config config;
  config.set_text("stale");
  ASSERT_TRUE(loadFromYamlString("", config).ok());
  EXPECT_EQ(config.ByteSizeLong(), 0u);
}

TEST(YamlLoaderTest, ReplacesPreviousContents) {
  Config config;
  config.set_text("stale");
  ASSERT_TRUE(loadFromYamlString("i32: 1", config).ok());
  EXPECT_TRUE(config.text().empty());
}

TEST(YamlLoaderTest, SingleObjectIsAcceptedAsListOfOne) {
  const Config config = load("static_resources: {clusters: {name: only}}\ntags: solo");
  ASSERT_EQ(config.static_resources().clusters_size(), 1);
  EXPECT_EQ(config.static_resources().clusters(0).name(), "only");
  ASSERT_EQ(config.tags_size(), 1);
  EXPECT_EQ(config.tags(0), "solo");
}

TEST(YamlLoaderTest, ProtoThreeOptionalFieldTracksPresence) {
  EXPECT_TRUE(load("explicit_presence: 0").has_explicit_presence());
}

TEST(YamlLoaderTest, KeysTaggedIgnoreAreSkipped) {
  const Config config = load(R"(
!ignore defaults: &defaults {name: shared, lb_policy: RANDOM}
static_resources:
  clusters:
  - *defaults
)");
  EXPECT_EQ(config.static_resources().clusters(0).name(), "shared");
  EXPECT_EQ(config.static_resources().clusters(0).lb_policy(), courier::test::RANDOM);
}

// --- Enums ------------------------------------------------------------------

TEST(YamlLoaderTest, EnumByExactName) {
  EXPECT_EQ(load("policy: LEAST_REQUEST").policy(), courier::test::LEAST_REQUEST);
}

TEST(YamlLoaderTest, EnumByNameIgnoringCase) {
  EXPECT_EQ(load("policy: least_request").policy(), courier::test::LEAST_REQUEST);
}

TEST(YamlLoaderTest, EnumByNumber) { EXPECT_EQ(load("policy: 2").policy(), courier::test::RANDOM); }

TEST(YamlLoaderTest, RepeatedEnums) {
  const Config config = load("policies: [RANDOM, 1]");
  ASSERT_EQ(config.policies_size(), 2);
  EXPECT_EQ(config.policies(0), courier::test::RANDOM);
  EXPECT_EQ(config.policies(1), courier::test::LEAST_REQUEST);
}

// --- Maps -------------------------------------------------------------------

TEST(YamlLoaderTest, LoadsStringMap) {
  const Config config = load("labels: {app: web, tier: \"1\"}");
  EXPECT_EQ(config.labels().at("app"), "web");
  EXPECT_EQ(config.labels().at("tier"), "1");
}

TEST(YamlLoaderTest, LoadsMapWithIntegerKeysAndMessageValues) {
  const Config config = load("endpoints_by_id: {7: {address: a, port_value: 1}, \"8\": {address: b}}");
  EXPECT_EQ(config.endpoints_by_id().at(7).address(), "a");
  EXPECT_EQ(config.endpoints_by_id().at(8).address(), "b");
}

// --- Well-known types -------------------------------------------------------

TEST(YamlLoaderTest, DurationWithFraction) {
  const Config config = load("timeout: 1.5s");
  EXPECT_EQ(config.timeout().seconds(), 1);
  EXPECT_EQ(config.timeout().nanos(), 500000000);
}

TEST(YamlLoaderTest, DurationOfMilliseconds) {
  const Config config = load("timeout: 0.001s");
  EXPECT_EQ(config.timeout().seconds(), 0);
  EXPECT_EQ(config.timeout().nanos(), 1000000);
}

TEST(YamlLoaderTest, NegativeDuration) {
  const Config config = load("timeout: -2.5s");
  EXPECT_EQ(config.timeout().seconds(), -2);
  EXPECT_EQ(config.timeout().nanos(), -500000000);
}

TEST(YamlLoaderTest, TimestampInRfc3339) {
  const Config config = load("created: 1970-01-01T00:01:40.5Z");
  EXPECT_EQ(config.created().seconds(), 100);
  EXPECT_EQ(config.created().nanos(), 500000000);
}

TEST(YamlLoaderTest, WrappersAreBareScalars) {
  const Config config = load(
      "enabled: false\nbig: \"9223372036854775807\"\nmaybe_text: \"\"\nratio: 0.25\n"
      "static_resources: {clusters: [{per_connection_buffer_limit_bytes: 32768}]}");
  ASSERT_TRUE(config.has_enabled());
  EXPECT_FALSE(config.enabled().value());
  EXPECT_EQ(config.big().value(), 9223372036854775807LL);
  EXPECT_TRUE(config.has_maybe_text());
  EXPECT_DOUBLE_EQ(config.ratio().value(), 0.25);
  EXPECT_EQ(config.static_resources().clusters(0).per_connection_buffer_limit_bytes().value(), 32768u);
}

TEST(YamlLoaderTest, StructTakesAnyYamlWithEnvoyScalarTyping) {
  const Config config = load(R"(
metadata:
  name: web
  port: 80
  quoted_port: "80"
  on: true
  nothing: null
  nested: {list: [1, two, {three: 3}]}
)");
  const auto& fields = config.metadata().fields();
  EXPECT_EQ(fields.at("name").string_value(), "web");
  EXPECT_EQ(fields.at("port").number_value(), 80);
  EXPECT_EQ(fields.at("quoted_port").string_value(), "80");
  EXPECT_TRUE(fields.at("on").bool_value());
  EXPECT_EQ(fields.at("nothing").kind_case(), google::protobuf::Value::kNullValue);
  const auto& list = fields.at("nested").struct_value().fields().at("list").list_value();
  ASSERT_EQ(list.values_size(), 3);
  EXPECT_EQ(list.values(1).string_value(), "two");
  EXPECT_EQ(list.values(2).struct_value().fields().at("three").number_value(), 3);
}

TEST(YamlLoaderTest, ValueFieldTakesNullAsNullValue) {
  const Config config = load("any_value: null");
  EXPECT_EQ(config.any_value().kind_case(), google::protobuf::Value::kNullValue);
}

TEST(YamlLoaderTest, ListValueTakesAList) {
  const Config config = load("list: [a, 1, false]");
  ASSERT_EQ(config.list().values_size(), 3);
  EXPECT_FALSE(config.list().values(2).bool_value());
}

TEST(YamlLoaderTest, EmptyTakesAnEmptyMap) { EXPECT_TRUE(load("nothing: {}").has_nothing()); }

TEST(YamlLoaderTest, FieldMaskIsCommaSeparatedCamelCasePaths) {
  const Config config = load("mask: \"staticResources.clusters,lbPolicy\"");
  ASSERT_EQ(config.mask().paths_size(), 2);
  EXPECT_EQ(config.mask().paths(0), "static_resources.clusters");
  EXPECT_EQ(config.mask().paths(1), "lb_policy");
}

TEST(YamlLoaderTest, AnyResolvesTypeAndLoadsRemainingKeysAsFields) {
  const Config config = load(R"(
payload:
  "@type": type.googleapis.com/courier.test.Endpoint
  address: 10.1.1.1
  port_value: 443
)");
  EXPECT_EQ(config.payload().type_url(), "type.googleapis.com/courier.test.Endpoint");
  Endpoint endpoint;
  ASSERT_TRUE(config.payload().UnpackTo(&endpoint));
  EXPECT_EQ(endpoint.address(), "10.1.1.1");
  EXPECT_EQ(endpoint.port_value(), 443u);
}

TEST(YamlLoaderTest, AnyTypeKeyMayComeLast) {
  const Config config = load("payload: {address: x, \"@type\": type.googleapis.com/courier.test.Endpoint}");
  Endpoint endpoint;
  ASSERT_TRUE(config.payload().UnpackTo(&endpoint));
  EXPECT_EQ(endpoint.address(), "x");
}

TEST(YamlLoaderTest, AnyOfWellKnownTypeTakesItUnderValue) {
  const Config config = load(R"(
extensions:
- "@type": type.googleapis.com/google.protobuf.Duration
  value: 2.5s
- "@type": type.googleapis.com/google.protobuf.Struct
  value: {k: v}
)");
  google::protobuf::Duration duration;
  ASSERT_TRUE(config.extensions(0).UnpackTo(&duration));
  EXPECT_EQ(duration.seconds(), 2);
  EXPECT_EQ(duration.nanos(), 500000000);
  google::protobuf::Struct st;
  ASSERT_TRUE(config.extensions(1).UnpackTo(&st));
  EXPECT_EQ(st.fields().at("k").string_value(), "v");
}

TEST(YamlLoaderTest, NestedAnyPayloadIsLoadedByReflectionToo) {
  const Config config = load(R"(
payload:
  "@type": type.googleapis.com/courier.test.Cluster
  name: inner
  typed_config:
    "@type": type.googleapis.com/courier.test.Endpoint
    address: deep
)");
  Cluster cluster;
  ASSERT_TRUE(config.payload().UnpackTo(&cluster));
  Endpoint endpoint;
  ASSERT_TRUE(cluster.typed_config().UnpackTo(&endpoint));
  EXPECT_EQ(endpoint.address(), "deep");
}

TEST(YamlLoaderTest, EmptyMapIsEmptyAny) {
  const Config config = load("payload: {}");
  EXPECT_TRUE(config.has_payload());
  EXPECT_TRUE(config.payload().type_url().empty());
}

TEST(YamlLoaderTest, LoadsIntoDynamicMessage) {
  google::protobuf::DynamicMessageFactory factory;
  std::unique_ptr<google::protobuf::Message> msg(factory.GetPrototype(Config::descriptor())->New());
  ASSERT_TRUE(loadFromYamlString("static_resources: {clusters: [{name: dyn, connect_timeout: 3s}]}", *msg).ok());
  Config config;
  ASSERT_TRUE(config.ParseFromString(msg->SerializeAsString()));
  EXPECT_EQ(config.static_resources().clusters(0).name(), "dyn");
  EXPECT_EQ(config.static_resources().clusters(0).connect_timeout().seconds(), 3);
}

// --- Deprecation ------------------------------------------------------------

TEST(YamlLoaderTest, DeprecatedFieldIsReportedWithPath) {
  std::vector<std::pair<std::string, std::string>> seen;
  LoadOptions opts;
  opts.on_deprecated = [&seen](const std::string& path, const std::string& message) {
    seen.emplace_back(path, message);
  };
  Config config;
  ASSERT_TRUE(loadFromYamlString("static_resources: {clusters: [{name: a}, {old_timeout_ms: 5}]}", config, opts).ok());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].first, "static_resources.clusters[1].old_timeout_ms");
  EXPECT_EQ(seen[0].second,
            "Using deprecated option 'courier.test.Cluster.old_timeout_ms' from file test_config.proto.");
}

TEST(YamlLoaderTest, DeprecatedEnumValueIsReported) {
  std::vector<std::string> paths;
  LoadOptions opts;
  opts.on_deprecated = [&paths](const std::string& path, const std::string&) { paths.push_back(path); };
  Config config;
  ASSERT_TRUE(loadFromYamlString("policies: [RANDOM, OLD_POLICY]", config, opts).ok());
  EXPECT_THAT(paths, ::testing::ElementsAre("policies[1]"));
}

TEST(YamlLoaderTest, DeprecatedFieldLeftAtDefaultIsNotReported) {
  int calls = 0;
  LoadOptions opts;
  opts.on_deprecated = [&calls](const std::string&, const std::string&) { ++calls; };
  Config config;
  ASSERT_TRUE(loadFromYamlString("static_resources: {clusters: [{old_timeout_ms: 0}]}", config, opts).ok());
  EXPECT_EQ(calls, 0);
}

TEST(YamlLoaderTest, DeprecationIsNotReportedWhenLoadFails) {
  int calls = 0;
  LoadOptions opts;
  opts.on_deprecated = [&calls](const std::string&, const std::string&) { ++calls; };
  Config config;
  EXPECT_FALSE(loadFromYamlString("static_resources: {clusters: [{old_timeout_ms: 5}]}\nbogus: 1", config, opts).ok());
  EXPECT_EQ(calls, 0);
}

// --- Errors: one class of bad input each, exact text ------------------------

TEST(YamlLoaderErrorTest, UnknownFieldSuggestsTheClosestName) {
  EXPECT_EQ(loadError("static_resources:\n  clusters:\n  - name: a\n    lb_polcy: RANDOM\n"),
            "test.yaml:4: static_resources.clusters[0].lb_polcy: unknown field (did you mean \"lb_policy\"?)");
}

TEST(YamlLoaderErrorTest, UnknownFieldWithoutCloseNameNamesTheMessage) {
  EXPECT_EQ(loadError("static_resources:\n  zzzzzzzz: 1\n"),
            "test.yaml:2: static_resources.zzzzzzzz: unknown field (not in courier.test.StaticResources)");
}

TEST(YamlLoaderErrorTest, UnknownFieldsAreSkippedWhenAllowed) {
  LoadOptions opts;
  opts.allow_unknown_fields = true;
  Config config;
  ASSERT_TRUE(loadFromYamlString("bogus: 1\ntext: kept", config, opts).ok());
  EXPECT_EQ(config.text(), "kept");
}

TEST(YamlLoaderErrorTest, UnknownEnumValueListsTheValidOnes) {
  EXPECT_EQ(loadError("policy: ROUND_ROBBIN"),
            "test.yaml:1: policy: unknown value \"ROUND_ROBBIN\" for enum courier.test.Policy "
            "(expected one of ROUND_ROBIN, LEAST_REQUEST, RANDOM, OLD_POLICY)");
}

TEST(YamlLoaderErrorTest, UndefinedEnumNumberIsRejected) {
  EXPECT_THAT(loadError("policy: 42"), HasSubstr("policy: unknown value \"42\" for enum courier.test.Policy"));
}

TEST(YamlLoaderErrorTest, BadDurationShowsTheExpectedForm) {
  EXPECT_EQ(loadError("static_resources:\n  clusters:\n  - name: a\n  - name: b\n    connect_timeout: 5 seconds\n"),
            "test.yaml:5: static_resources.clusters[1].connect_timeout: invalid duration \"5 seconds\" "
            "(expected e.g. \"1.5s\")");
}

TEST(YamlLoaderErrorTest, DurationWithoutUnitIsRejected) {
  EXPECT_EQ(loadError("timeout: 5"), "test.yaml:1: timeout: invalid duration \"5\" (expected e.g. \"1.5s\")");
}

TEST(YamlLoaderErrorTest, DurationWithTooManyFractionDigitsIsRejected) {
  EXPECT_THAT(loadError("timeout: 0.0000000001s"), HasSubstr("invalid duration"));
}

TEST(YamlLoaderErrorTest, DurationAsMapIsRejected) {
  EXPECT_EQ(loadError("timeout: {seconds: 1}"),
            "test.yaml:1: timeout: expected a duration string (e.g. \"1.5s\"), got a map");
}

TEST(YamlLoaderErrorTest, BadTimestampIsRejected) {
  EXPECT_EQ(loadError("created: yesterday"),
            "test.yaml:1: created: invalid timestamp \"yesterday\" (expected RFC 3339, e.g. \"2024-05-01T10:00:00Z\")");
}

TEST(YamlLoaderErrorTest, WrongTypeForIntegerNamesTheExpectedType) {
  EXPECT_EQ(loadError("u32: eighty"), "test.yaml:1: u32: expected an integer (uint32), got \"eighty\"");
}

TEST(YamlLoaderErrorTest, FractionForIntegerIsRejected) {
  EXPECT_EQ(loadError("i32: 1.5"), "test.yaml:1: i32: expected an integer (int32), got \"1.5\"");
}

TEST(YamlLoaderErrorTest, IntegerOutOfRangeIsRejected) {
  EXPECT_EQ(loadError("u32: 4294967296"), "test.yaml:1: u32: \"4294967296\" is out of range for uint32");
  EXPECT_EQ(loadError("u64: -1"), "test.yaml:1: u64: \"-1\" is out of range for uint64");
}

TEST(YamlLoaderErrorTest, WrongTypeForBoolNamesTheExpectedType) {
  EXPECT_EQ(loadError("flag: maybe"), "test.yaml:1: flag: expected a boolean (true or false), got \"maybe\"");
}

TEST(YamlLoaderErrorTest, WrongTypeForNumberNamesTheExpectedType) {
  EXPECT_EQ(loadError("d: half"), "test.yaml:1: d: expected a number (double), got \"half\"");
}

TEST(YamlLoaderErrorTest, MapForStringIsRejected) {
  EXPECT_EQ(loadError("text: {a: b}"), "test.yaml:1: text: expected a string, got a map");
}

TEST(YamlLoaderErrorTest, ListForSingularMessageIsRejected) {
  EXPECT_EQ(loadError("static_resources: [a]"),
            "test.yaml:1: static_resources: expected a map (courier.test.StaticResources), got a list");
}

TEST(YamlLoaderErrorTest, BadBase64IsRejected) {
  EXPECT_EQ(loadError("data: \"%%%\""), "test.yaml:1: data: expected base64-encoded bytes, got \"%%%\"");
}

TEST(YamlLoaderErrorTest, TopLevelMustBeAMap) {
  EXPECT_EQ(loadError("just text"), "test.yaml:1: expected a map (courier.test.Config), got \"just text\"");
}

TEST(YamlLoaderErrorTest, ErrorInListElementNamesItsIndex) {
  EXPECT_EQ(loadError("numbers: [1, 2, x]"), "test.yaml:1: numbers[2]: expected an integer (int32), got \"x\"");
}

TEST(YamlLoaderErrorTest, NullInListIsRejected) {
  EXPECT_EQ(loadError("tags:\n- a\n- null\n"), "test.yaml:3: tags[1]: null is not allowed in a list");
}

TEST(YamlLoaderErrorTest, ErrorInMapValueNamesItsKey) {
  EXPECT_EQ(loadError("endpoints_by_id:\n  7: {port_value: x}\n"),
            "test.yaml:2: endpoints_by_id[\"7\"].port_value: expected an integer (uint32), got \"x\"");
}

TEST(YamlLoaderErrorTest, BadMapKeyTypeIsRejected) {
  EXPECT_EQ(loadError("endpoints_by_id: {seven: {}}"),
            "test.yaml:1: endpoints_by_id[\"seven\"]: expected an integer (uint32), got \"seven\"");
}

TEST(YamlLoaderErrorTest, UnknownAnyTypeIsNamed) {
  EXPECT_EQ(
      loadError("static_resources:\n  clusters:\n  - typed_config:\n      \"@type\": type.googleapis.com/foo.Bar\n"),
      "test.yaml:4: static_resources.clusters[0].typed_config: unknown type \"type.googleapis.com/foo.Bar\" "
      "(not linked into this binary)");
}

TEST(YamlLoaderErrorTest, AnyWithoutTypeIsRejected) {
  EXPECT_EQ(loadError("payload: {address: x}"),
            "test.yaml:1: payload: missing \"@type\" (expected e.g. \"@type\": type.googleapis.com/<message name>)");
}

TEST(YamlLoaderErrorTest, AnyWithMalformedTypeUrlIsRejected) {
  EXPECT_EQ(loadError("payload: {\"@type\": courier.test.Endpoint}"),
            "test.yaml:1: payload: invalid type URL \"courier.test.Endpoint\" "
            "(expected \"type.googleapis.com/<message name>\")");
}

TEST(YamlLoaderErrorTest, ErrorInsideAnyPayloadHasFullPath) {
  EXPECT_EQ(loadError("payload:\n  \"@type\": type.googleapis.com/courier.test.Endpoint\n  port_value: high\n"),
            "test.yaml:3: payload.port_value: expected an integer (uint32), got \"high\"");
}

TEST(YamlLoaderErrorTest, PackedWellKnownTypeOutsideValueIsRejected) {
  EXPECT_EQ(loadError("payload: {\"@type\": type.googleapis.com/google.protobuf.Duration, seconds: 1}"),
            "test.yaml:1: payload.seconds: unknown field (a packed google.protobuf.Duration goes under \"value\")");
}

TEST(YamlLoaderErrorTest, TwoOneofMembersAreBothNamed) {
  EXPECT_EQ(loadError("static_resources:\n  clusters:\n  - type: STATIC\n    custom_type: mine\n"),
            "test.yaml:4: static_resources.clusters[0]: \"type\" and \"custom_type\" are both set, but only one "
            "member of oneof \"discovery\" may be set");
}

TEST(YamlLoaderErrorTest, FieldGivenByBothNamesIsRejected) {
  EXPECT_EQ(loadError("custom_json: a\ncustomJSON: b\n"),
            "test.yaml:2: customJSON: field is set twice (also as \"custom_json\")");
}

TEST(YamlLoaderErrorTest, DuplicateMapKeyIsRejected) {
  EXPECT_EQ(loadError("labels:\n  a: x\n  a: y\n"), "test.yaml:3: labels[\"a\"]: duplicate map key");
}

TEST(YamlLoaderErrorTest, YamlSyntaxErrorCarriesItsLine) {
  EXPECT_EQ(loadError("text: a\nlabels: {a: b\ni32: 1\n"), "test.yaml:3: invalid YAML: end of map flow not found");
}

TEST(YamlLoaderErrorTest, YamlIndentationErrorCarriesItsLine) {
  EXPECT_THAT(loadError("static_resources:\n  clusters:\n  - name: a\n   bad: indent\n"),
              ::testing::StartsWith("test.yaml:4: invalid YAML: "));
}

TEST(YamlLoaderErrorTest, DeeplyNestedInputIsAnErrorNotACrash) {
  EXPECT_THAT(loadError("metadata: {a: " + std::string(100000, '[')), HasSubstr("invalid YAML: "));
}

TEST(YamlLoaderErrorTest, DefaultSourceNameIsYaml) {
  EXPECT_EQ(loadError("bogus: 1", LoadOptions{}), "<yaml>:1: bogus: unknown field (not in courier.test.Config)");
}

// --- Files ------------------------------------------------------------------

TEST(YamlLoaderFileTest, LoadsYamlFileAndNamesItInErrors) {
  const std::string path = writeTempFile("bootstrap.yaml", "text: ok\ni32: nope\n");
  Config config;
  const absl::Status status = loadFromFile(path, config);
  EXPECT_EQ(status.message(), path + ":2: i32: expected an integer (int32), got \"nope\"");
}

TEST(YamlLoaderFileTest, LoadsJsonFileWithTabIndentation) {
  const std::string path = writeTempFile("bootstrap.json",
                                         "{\n\t\"static_resources\": {\n\t\t\"clusters\": [\n\t\t\t{\"name\": \"j\", "
                                         "\"connect_timeout\": \"0.25s\"}\n\t\t]\n\t},\n\t\"i64\": \"42\"\n}\n");
  Config config;
  ASSERT_TRUE(loadFromFile(path, config).ok());
  EXPECT_EQ(config.static_resources().clusters(0).name(), "j");
  EXPECT_EQ(config.static_resources().clusters(0).connect_timeout().nanos(), 250000000);
  EXPECT_EQ(config.i64(), 42);
}

TEST(YamlLoaderFileTest, JsonFileErrorsCarryLines) {
  const std::string path = writeTempFile("bad.json", "{\n  \"text\": \"a\",\n  \"u32\": true\n}\n");
  Config config;
  EXPECT_EQ(loadFromFile(path, config).message(), path + ":3: u32: expected an integer (uint32), got \"true\"");
}

TEST(YamlLoaderFileTest, JsonSyntaxErrorCarriesItsLine) {
  const std::string path = writeTempFile("broken.json", "{\n  \"text\": \"a\",\n  \"u32\": [1\n}\n");
  Config config;
  EXPECT_EQ(loadFromFile(path, config).message(), path + ":4: invalid YAML: illegal flow end");
}

TEST(YamlLoaderFileTest, MissingFileIsAnError) {
  Config config;
  const absl::Status status = loadFromFile("/nonexistent/courier.yaml", config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "/nonexistent/courier.yaml: cannot read file: No such file or directory");
}

TEST(YamlLoaderFileTest, DirectoryIsAnError) {
  Config config;
  EXPECT_EQ(loadFromFile("/", config).message(), "/: cannot read file: Is a directory");
}

TEST(YamlLoaderFileTest, SourceNameOverridesPath) {
  const std::string path = writeTempFile("named.yaml", "bogus: 1\n");
  Config config;
  EXPECT_THAT(std::string(loadFromFile(path, config, named("custom")).message()), ::testing::StartsWith("custom:1: "));
}

// --- Printing ---------------------------------------------------------------

TEST(ToJsonTest, UsesProtoFieldNames) {
  Config config;
  config.mutable_static_resources()->add_clusters()->set_name("a");
  config.set_custom_json("x");
  EXPECT_EQ(toJson(config, false), R"({"static_resources":{"clusters":[{"name":"a"}]},"custom_json":"x"})");
}

TEST(ToJsonTest, PrintsAnyWithTypeOfLinkedInPayload) {
  Config config;
  Endpoint endpoint;
  endpoint.set_address("h");
  endpoint.set_port_value(1);
  config.mutable_payload()->PackFrom(endpoint);
  EXPECT_EQ(toJson(config, false),
            R"({"payload":{"@type":"type.googleapis.com/courier.test.Endpoint","address":"h","port_value":1}})");
}

TEST(ToJsonTest, PrettyOutputIsIndented) {
  Config config;
  config.set_i32(1);
  EXPECT_THAT(toJson(config, true), HasSubstr("{\n \"i32\": 1"));
}

TEST(ToJsonTest, UnknownAnyTypeYieldsErrorObject) {
  Config config;
  config.mutable_payload()->set_type_url("type.googleapis.com/foo.Bar");
  config.mutable_payload()->set_value("\x08\x01");
  EXPECT_THAT(toJson(config, false), ::testing::StartsWith("{\"error\": \""));
}

TEST(ToJsonTest, RoundTripsThroughTheLoader) {
  const Config original = load(R"(
static_resources: {clusters: [{name: a, connect_timeout: 1.5s, lb_policy: RANDOM,
  typed_config: {"@type": type.googleapis.com/courier.test.Endpoint, address: z}}]}
i64: 123456789012345
data: aGk=
metadata: {k: [1, x]}
)");
  Config reloaded;
  ASSERT_TRUE(loadFromYamlString(toJson(original, true), reloaded).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(original, reloaded)) << toJson(original, true) << "\n"
                                                                                      << toJson(reloaded, true);
}

}  // namespace
}  // namespace courier::protobuf
