#include "source/extensions/filters/http/grpc_stats/grpc_stats_filter.h"

#include <string>

#include "envoy/extensions/filters/http/grpc_stats/v3/config.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/stats/store.h"

namespace courier::extensions::grpc_stats {
namespace {

std::string message(size_t payload) {
  std::string m(5, '\0');
  m[1] = static_cast<char>(payload >> 24);
  m[2] = static_cast<char>(payload >> 16);
  m[3] = static_cast<char>(payload >> 8);
  m[4] = static_cast<char>(payload);
  return m + std::string(payload, 'p');
}

TEST(MessageCounterTest, CountsMessagesInOneChunk) {
  MessageCounter c;
  buffer::Buffer b;
  b.add(message(0) + message(3) + message(70000));
  EXPECT_EQ(c.feed(b), 3u);
  EXPECT_EQ(c.count(), 3u);
}

TEST(MessageCounterTest, CountsMessagesSplitAtEveryByte) {
  const std::string body = message(2) + message(0) + message(300) + message(1);
  MessageCounter c;
  for (char ch : body) {
    buffer::Buffer b;
    b.add(std::string(1, ch));
    c.feed(b);
  }
  EXPECT_EQ(c.count(), 4u);
}

TEST(MessageCounterTest, AMessageCountsWhenItsHeaderIsComplete) {
  MessageCounter c;
  buffer::Buffer b;
  b.add(message(10).substr(0, 4));
  EXPECT_EQ(c.feed(b), 0u);
  buffer::Buffer rest;
  rest.add(message(10).substr(4, 1));
  EXPECT_EQ(c.feed(rest), 1u);
}

TEST(GrpcPathTest, SplitsServiceAndMethod) {
  std::string_view service, method;
  ASSERT_TRUE(splitGrpcPath("/pkg.Service/Method", service, method));
  EXPECT_EQ(service, "pkg.Service");
  EXPECT_EQ(method, "Method");
  for (std::string_view bad : {"", "/", "//m", "/s/", "/s", "s/m", "/s/m/x"}) {
    EXPECT_FALSE(splitGrpcPath(bad, service, method)) << bad;
  }
}

TEST(GrpcStatsConfigTest, AllowlistAndAllMethodsDecidePerMethodStats) {
  stats::Store store;
  GrpcStatsConfig config(store);
  config.allowlist["a.S"].insert("M");
  EXPECT_TRUE(config.perMethod("a.S", "M"));
  EXPECT_FALSE(config.perMethod("a.S", "N"));
  EXPECT_FALSE(config.perMethod("b.S", "M"));
  config.stats_for_all_methods = true;
  EXPECT_TRUE(config.perMethod("b.S", "N"));
}

TEST(GrpcStatsConfigTest, AnEmptyAllowlistedServiceNameNamesTheField) {
  envoy::extensions::filters::http::grpc_stats::v3::FilterConfig proto;
  proto.mutable_individual_method_stats_allowlist()->add_services()->add_method_names("M");
  google::protobuf::Any any;
  any.PackFrom(proto);
  stats::Store store;
  server::FactoryContext context{store};
  auto factory = createGrpcStatsConfigFactory();
  EXPECT_EQ(factory->name(), "envoy.filters.http.grpc_stats");
  auto result = factory->createFilterFactory(any, "ingress", context, "http_filters[0].typed_config");
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              ::testing::HasSubstr("http_filters[0].typed_config.individual_method_stats_allowlist.services[0].name"));
}

TEST(GrpcStatsConfigTest, AWrongTypedConfigIsRejected) {
  google::protobuf::Any any;
  any.set_type_url("type.googleapis.com/google.protobuf.Empty");
  stats::Store store;
  server::FactoryContext context{store};
  auto result = createGrpcStatsConfigFactory()->createFilterFactory(any, "ingress", context, "f");
  EXPECT_FALSE(result.ok());
}

}  // namespace
}  // namespace courier::extensions::grpc_stats
