#include "source/common/access_log/formatter.h"

#include <unistd.h>

#include "gtest/gtest.h"
#include "test/common/access_log/test_stream_info.h"

namespace courier::access_log {
namespace {

using test::TestStream;

std::string fmt(const std::string& format, const stream_info::StreamInfo& info) {
  auto f = Formatter::fromText(format);
  EXPECT_TRUE(f.ok()) << f.status();
  if (!f.ok()) return "";
  return f->format(info);
}

std::string filled(const std::string& format) {
  TestStream s;
  return fmt(format, s.info);
}

std::string empty(const std::string& format) {
  stream_info::StreamInfo info;
  return fmt(format, info);
}

struct OperatorCase {
  const char* op;
  const char* filled;
  const char* missing;
};

class OperatorTest : public testing::TestWithParam<OperatorCase> {};

TEST_P(OperatorTest, FormatsFilledValue) { EXPECT_EQ(filled(GetParam().op), GetParam().filled); }
TEST_P(OperatorTest, FormatsMissingValue) { EXPECT_EQ(empty(GetParam().op), GetParam().missing); }

INSTANTIATE_TEST_SUITE_P(
    AllOperators, OperatorTest,
    testing::Values(OperatorCase{"%START_TIME%", "2024-01-01T00:00:00.123Z", "1970-01-01T00:00:00.000Z"},
                    OperatorCase{"%REQ(:METHOD)%", "GET", "-"}, OperatorCase{"%REQ(USER-AGENT)%", "curl/8.0", "-"},
                    OperatorCase{"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "12", "-"},
                    OperatorCase{"%TRAILER(GRPC-STATUS)%", "0", "-"}, OperatorCase{"%RESPONSE_CODE%", "200", "0"},
                    OperatorCase{"%RESPONSE_CODE_DETAILS%", "via_upstream", "-"},
                    OperatorCase{"%BYTES_RECEIVED%", "10", "0"}, OperatorCase{"%BYTES_SENT%", "20", "0"},
                    OperatorCase{"%DURATION%", "42", "-"}, OperatorCase{"%REQUEST_DURATION%", "5", "-"},
                    OperatorCase{"%RESPONSE_DURATION%", "18", "-"}, OperatorCase{"%RESPONSE_TX_DURATION%", "24", "-"},
                    OperatorCase{"%UPSTREAM_HOST%", "10.0.0.3:8080", "-"},
                    OperatorCase{"%UPSTREAM_CLUSTER%", "backend", "-"},
                    OperatorCase{"%UPSTREAM_TRANSPORT_FAILURE_REASON%", "connection refused", "-"},
                    OperatorCase{"%DOWNSTREAM_REMOTE_ADDRESS%", "10.0.0.1:5000", "-"},
                    OperatorCase{"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "10.0.0.1", "-"},
                    OperatorCase{"%DOWNSTREAM_LOCAL_ADDRESS%", "10.0.0.2:80", "-"},
                    OperatorCase{"%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%", "10.0.0.2", "-"},
                    OperatorCase{"%PROTOCOL%", "HTTP/1.1", "-"}, OperatorCase{"%ROUTE_NAME%", "route1", "-"},
                    OperatorCase{"%REQUESTED_SERVER_NAME%", "-", "-"}, OperatorCase{"%%", "%", "%"},
                    OperatorCase{"plain text", "plain text", "plain text"}));

TEST(FormatterTest, ResponseFlagsPrintsShortNames) {
  TestStream s;
  s.info.setResponseFlag(stream_info::kNoHealthyUpstream);
  s.info.setResponseFlag(stream_info::kUpstreamConnectionFailure);
  EXPECT_EQ(fmt("%RESPONSE_FLAGS%", s.info), "UH,UF");
}

TEST(FormatterTest, ResponseFlagsNoneIsDash) { EXPECT_EQ(filled("%RESPONSE_FLAGS%"), "-"); }

TEST(FormatterTest, HostnameIsThisHost) {
  char buf[256];
  ASSERT_EQ(gethostname(buf, sizeof(buf)), 0);
  EXPECT_EQ(empty("%HOSTNAME%"), std::string(buf));
}

TEST(FormatterTest, DefaultFormatExactly) {
  TestStream s;
  EXPECT_EQ(fmt("", s.info),
            "[2024-01-01T00:00:00.123Z] \"GET /api/v1/items?x=1 HTTP/1.1\" 200 - 10 20 42 12 \"192.0.2.1\" "
            "\"curl/8.0\" \"req-1\" \"example.com\" \"10.0.0.3:8080\"\n");
}

TEST(FormatterTest, DefaultFormatWithNothingKnown) {
  EXPECT_EQ(empty(""), "[1970-01-01T00:00:00.000Z] \"- - -\" 0 - 0 0 - - \"-\" \"-\" \"-\" \"-\" \"-\"\n");
}

TEST(FormatterTest, ReqAlternateUsedWhenFirstMissing) {
  EXPECT_EQ(filled("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"), "/api/v1/items?x=1");
}

TEST(FormatterTest, ReqFirstWinsOverAlternate) {
  TestStream s;
  s.request.add("x-envoy-original-path", "/original");
  EXPECT_EQ(fmt("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", s.info), "/original");
}

TEST(FormatterTest, ReqNeitherPresentIsDash) { EXPECT_EQ(filled("%REQ(X-A?X-B)%"), "-"); }

TEST(FormatterTest, ReqTruncatedToMaxLength) { EXPECT_EQ(filled("%REQ(:PATH):4%"), "/api"); }

TEST(FormatterTest, ReqShorterThanMaxLengthUnchanged) { EXPECT_EQ(filled("%REQ(:METHOD):10%"), "GET"); }

TEST(FormatterTest, ReqHeaderNameIsCaseInsensitive) { EXPECT_EQ(filled("%REQ(x-Request-ID)%"), "req-1"); }

TEST(FormatterTest, StartTimeCustomStrftime) { EXPECT_EQ(filled("%START_TIME(%Y/%m/%d %H:%M:%S)%"), "2024/01/01 00:00:00"); }

TEST(FormatterTest, StartTimeFractionDigits) {
  EXPECT_EQ(filled("%START_TIME(%s.%3f)%"), "1704067200.123");
  EXPECT_EQ(filled("%START_TIME(%6f)%"), "123456");
  EXPECT_EQ(filled("%START_TIME(%f)%"), "123456789");
}

TEST(FormatterTest, StartTimeE3S) { EXPECT_EQ(filled("%START_TIME(%H:%M:%E3S)%"), "00:00:00.123"); }

TEST(FormatterTest, LiteralsAroundOperators) { EXPECT_EQ(filled("a=%RESPONSE_CODE% b=%PROTOCOL%;"), "a=200 b=HTTP/1.1;"); }

TEST(FormatterTest, OmitEmptyValuesPrintsNothingForMissing) {
  auto f = Formatter::fromText("[%UPSTREAM_CLUSTER%]", true);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->format(stream_info::StreamInfo{}), "[]");
}

TEST(FormatterTest, FormatAppendsToReusedString) {
  TestStream s;
  auto f = Formatter::fromText("%RESPONSE_CODE%");
  ASSERT_TRUE(f.ok());
  std::string out = "x";
  f->format(s.info, out);
  EXPECT_EQ(out, "x200");
}

TEST(FormatterTest, UnknownOperatorNamesItAndOffset) {
  auto f = Formatter::fromText("[%START_TIME%] %FOO% x");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(), "unknown command operator \"%FOO%\" at offset 15");
}

TEST(FormatterTest, UnknownOperatorWithArgsNamesIt) {
  auto f = Formatter::fromText("%DYNAMIC_METADATA(a:b)%");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(), "unknown command operator \"%DYNAMIC_METADATA(a:b)%\" at offset 0");
}

TEST(FormatterTest, UnterminatedOperatorIsError) {
  auto f = Formatter::fromText("abc %RESPONSE_CODE");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("at offset 4"), std::string::npos) << f.status();
}

TEST(FormatterTest, ReqWithoutHeaderIsError) {
  auto f = Formatter::fromText("%REQ()%");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("needs a header name"), std::string::npos) << f.status();
}

TEST(FormatterTest, ArgsOnPlainOperatorIsError) {
  auto f = Formatter::fromText("%PROTOCOL(x)%");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("takes no parameters"), std::string::npos) << f.status();
}

google::protobuf::Value str(const std::string& s) {
  google::protobuf::Value v;
  v.set_string_value(s);
  return v;
}

std::string json(const google::protobuf::Struct& s, const stream_info::StreamInfo& info, bool omit = false) {
  auto f = Formatter::fromJson(s, omit);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? f->format(info) : "";
}

TEST(JsonFormatterTest, NumericOperatorStaysNumber) {
  TestStream s;
  google::protobuf::Struct st;
  (*st.mutable_fields())["code"] = str("%RESPONSE_CODE%");
  (*st.mutable_fields())["bytes"] = str("%BYTES_SENT%");
  (*st.mutable_fields())["duration"] = str("%DURATION%");
  EXPECT_EQ(json(st, s.info), "{\"bytes\":20,\"code\":200,\"duration\":42}\n");
}

TEST(JsonFormatterTest, NumericOperatorInsideTextIsString) {
  TestStream s;
  google::protobuf::Struct st;
  (*st.mutable_fields())["code"] = str("code=%RESPONSE_CODE%");
  EXPECT_EQ(json(st, s.info), "{\"code\":\"code=200\"}\n");
}

TEST(JsonFormatterTest, StringOperatorIsQuotedAndEscaped) {
  TestStream s;
  s.request.set("user-agent", "a\"b\\c\n");
  google::protobuf::Struct st;
  (*st.mutable_fields())["ua"] = str("%REQ(USER-AGENT)%");
  EXPECT_EQ(json(st, s.info), "{\"ua\":\"a\\\"b\\\\c\\n\"}\n");
}

TEST(JsonFormatterTest, MissingSoleOperatorIsNull) {
  google::protobuf::Struct st;
  (*st.mutable_fields())["host"] = str("%UPSTREAM_HOST%");
  (*st.mutable_fields())["d"] = str("%DURATION%");
  EXPECT_EQ(json(st, stream_info::StreamInfo{}), "{\"d\":null,\"host\":null}\n");
}

TEST(JsonFormatterTest, MissingInsideTextIsDash) {
  google::protobuf::Struct st;
  (*st.mutable_fields())["host"] = str("h=%UPSTREAM_HOST%");
  EXPECT_EQ(json(st, stream_info::StreamInfo{}), "{\"host\":\"h=-\"}\n");
}

TEST(JsonFormatterTest, NestedStructs) {
  TestStream s;
  google::protobuf::Struct st;
  google::protobuf::Value inner;
  (*inner.mutable_struct_value()->mutable_fields())["method"] = str("%REQ(:METHOD)%");
  (*inner.mutable_struct_value()->mutable_fields())["code"] = str("%RESPONSE_CODE%");
  (*st.mutable_fields())["request"] = inner;
  (*st.mutable_fields())["cluster"] = str("%UPSTREAM_CLUSTER%");
  EXPECT_EQ(json(st, s.info), "{\"cluster\":\"backend\",\"request\":{\"code\":200,\"method\":\"GET\"}}\n");
}

TEST(JsonFormatterTest, LiteralNumbersAndBoolsKeptAsIs) {
  google::protobuf::Struct st;
  (*st.mutable_fields())["n"].set_number_value(3);
  (*st.mutable_fields())["b"].set_bool_value(true);
  EXPECT_EQ(json(st, stream_info::StreamInfo{}), "{\"b\":true,\"n\":3}\n");
}

TEST(JsonFormatterTest, OmitEmptyValuesDropsMissingKeys) {
  google::protobuf::Struct st;
  (*st.mutable_fields())["a_host"] = str("%UPSTREAM_HOST%");
  (*st.mutable_fields())["b_code"] = str("%RESPONSE_CODE%");
  (*st.mutable_fields())["c_route"] = str("%ROUTE_NAME%");
  (*st.mutable_fields())["d_text"] = str("%PROTOCOL%%ROUTE_NAME%");
  EXPECT_EQ(json(st, stream_info::StreamInfo{}, true), "{\"b_code\":0}\n");
}

TEST(JsonFormatterTest, UnknownOperatorErrorNamesKey) {
  google::protobuf::Struct st;
  (*st.mutable_fields())["x"] = str("%NOPE%");
  auto f = Formatter::fromJson(st);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(), "x: unknown command operator \"%NOPE%\" at offset 0");
}

TEST(FormatterProtoTest, InlineStringSource) {
  envoy::config::core::v3::SubstitutionFormatString config;
  config.mutable_text_format_source()->set_inline_string("%RESPONSE_CODE%\n");
  auto f = Formatter::fromProto(config);
  ASSERT_TRUE(f.ok()) << f.status();
  TestStream s;
  EXPECT_EQ(f->format(s.info), "200\n");
  EXPECT_EQ(f->contentType(), "text/plain");
}

TEST(FormatterProtoTest, JsonFormatWithContentTypeAndOmit) {
  envoy::config::core::v3::SubstitutionFormatString config;
  (*config.mutable_json_format()->mutable_fields())["route"] = str("%ROUTE_NAME%");
  config.set_omit_empty_values(true);
  config.set_content_type("application/x-custom");
  auto f = Formatter::fromProto(config);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->format(stream_info::StreamInfo{}), "{}\n");
  EXPECT_EQ(f->contentType(), "application/x-custom");
}

TEST(FormatterProtoTest, ErrorCarriesFieldPath) {
  envoy::config::core::v3::SubstitutionFormatString config;
  config.mutable_text_format_source()->set_inline_string("%BAD%");
  auto f = Formatter::fromProto(config);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(), "text_format_source.inline_string: unknown command operator \"%BAD%\" at offset 0");
}

}  // namespace
}  // namespace courier::access_log
