#include "source/common/access_log/filter.h"

#include "gtest/gtest.h"
#include "test/common/access_log/test_stream_info.h"

namespace courier::access_log {
namespace {

using Proto = envoy::config::accesslog::v3::AccessLogFilter;
using Comparison = envoy::config::accesslog::v3::ComparisonFilter;

Proto statusCode(Comparison::Op op, uint32_t value) {
  Proto p;
  auto* c = p.mutable_status_code_filter()->mutable_comparison();
  c->set_op(op);
  c->mutable_value()->set_default_value(value);
  return p;
}

Proto duration(Comparison::Op op, uint32_t ms) {
  Proto p;
  auto* c = p.mutable_duration_filter()->mutable_comparison();
  c->set_op(op);
  c->mutable_value()->set_default_value(ms);
  return p;
}

std::unique_ptr<Filter> make(const Proto& p) {
  auto f = createFilter(p, "filter");
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? std::move(*f) : nullptr;
}

TEST(FilterTest, StatusCodeGe) {
  test::TestStream s;
  auto f = make(statusCode(Comparison::GE, 400));
  EXPECT_FALSE(f->evaluate(s.info));
  s.info.response_code = 503;
  EXPECT_TRUE(f->evaluate(s.info));
}

TEST(FilterTest, StatusCodeEq) {
  test::TestStream s;
  EXPECT_TRUE(make(statusCode(Comparison::EQ, 200))->evaluate(s.info));
  EXPECT_FALSE(make(statusCode(Comparison::EQ, 201))->evaluate(s.info));
}

TEST(FilterTest, StatusCodeLeTreatsMissingAsZero) {
  stream_info::StreamInfo info;
  EXPECT_TRUE(make(statusCode(Comparison::LE, 0))->evaluate(info));
}

TEST(FilterTest, DurationGe) {
  test::TestStream s;  // 42 ms
  EXPECT_TRUE(make(duration(Comparison::GE, 42))->evaluate(s.info));
  EXPECT_FALSE(make(duration(Comparison::GE, 43))->evaluate(s.info));
}

TEST(FilterTest, DurationLe) {
  test::TestStream s;
  EXPECT_TRUE(make(duration(Comparison::LE, 100))->evaluate(s.info));
  EXPECT_FALSE(make(duration(Comparison::LE, 10))->evaluate(s.info));
}

TEST(FilterTest, DurationUnknownDoesNotMatch) {
  stream_info::StreamInfo info;
  EXPECT_FALSE(make(duration(Comparison::LE, 100))->evaluate(info));
}

TEST(FilterTest, NotHealthCheckAlwaysTrue) {
  Proto p;
  p.mutable_not_health_check_filter();
  EXPECT_TRUE(make(p)->evaluate(stream_info::StreamInfo{}));
}

TEST(FilterTest, AndNeedsAll) {
  test::TestStream s;
  Proto p;
  *p.mutable_and_filter()->add_filters() = statusCode(Comparison::EQ, 200);
  *p.mutable_and_filter()->add_filters() = duration(Comparison::GE, 100);
  EXPECT_FALSE(make(p)->evaluate(s.info));
  s.info.last_downstream_tx_byte_sent = std::chrono::milliseconds(150);
  EXPECT_TRUE(make(p)->evaluate(s.info));
}

TEST(FilterTest, OrNeedsAny) {
  test::TestStream s;
  Proto p;
  *p.mutable_or_filter()->add_filters() = statusCode(Comparison::GE, 500);
  *p.mutable_or_filter()->add_filters() = duration(Comparison::GE, 100);
  EXPECT_FALSE(make(p)->evaluate(s.info));
  s.info.response_code = 502;
  EXPECT_TRUE(make(p)->evaluate(s.info));
}

TEST(FilterTest, ResponseFlagListedFlagMatches) {
  test::TestStream s;
  Proto p;
  p.mutable_response_flag_filter()->add_flags("UH");
  p.mutable_response_flag_filter()->add_flags("NR");
  auto f = make(p);
  EXPECT_FALSE(f->evaluate(s.info));
  s.info.setResponseFlag(stream_info::kUpstreamConnectionFailure);
  EXPECT_FALSE(f->evaluate(s.info));
  s.info.setResponseFlag(stream_info::kNoRouteFound);
  EXPECT_TRUE(f->evaluate(s.info));
}

TEST(FilterTest, ResponseFlagEmptyListMatchesAnyFlag) {
  test::TestStream s;
  Proto p;
  p.mutable_response_flag_filter();
  auto f = make(p);
  EXPECT_FALSE(f->evaluate(s.info));
  s.info.setResponseFlag(stream_info::kDurationTimeout);
  EXPECT_TRUE(f->evaluate(s.info));
}

TEST(FilterTest, ResponseFlagUnknownIsError) {
  Proto p;
  p.mutable_response_flag_filter()->add_flags("UH");
  p.mutable_response_flag_filter()->add_flags("XYZ");
  auto f = createFilter(p, "access_log[0].filter");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(),
            "access_log[0].filter.response_flag_filter.flags[1]: unknown or unsupported response flag \"XYZ\"");
}

TEST(FilterTest, UnsupportedFilterIsErrorNamingIt) {
  Proto p;
  p.mutable_runtime_filter()->set_runtime_key("k");
  auto f = createFilter(p, "access_log[0].filter");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(),
            "access_log[0].filter.runtime_filter: access log filter runtime_filter is not supported");
}

TEST(FilterTest, UnsupportedFilterNestedInAndCarriesPath) {
  Proto p;
  *p.mutable_and_filter()->add_filters() = statusCode(Comparison::EQ, 200);
  p.mutable_and_filter()->add_filters()->mutable_header_filter();
  auto f = createFilter(p, "f");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(),
            "f.and_filter.filters[1].header_filter: access log filter header_filter is not supported");
}

}  // namespace
}  // namespace courier::access_log
