// Unit tests for the gRPC helpers: content-type detection, the HTTP-to-gRPC
// status table, grpc-message encoding and grpc-timeout parsing.
#include "source/common/grpc/common.h"

#include "gtest/gtest.h"

namespace courier::grpc {
namespace {

bool isGrpc(std::string_view ct) {
  http::HeaderMap h;
  h.add("content-type", ct);
  return hasGrpcContentType(h);
}

TEST(GrpcCommonTest, ContentType) {
  EXPECT_TRUE(isGrpc("application/grpc"));
  EXPECT_TRUE(isGrpc("application/grpc+proto"));
  EXPECT_TRUE(isGrpc("application/grpc;charset=utf-8"));
  EXPECT_TRUE(isGrpc("Application/GRPC"));
  EXPECT_FALSE(isGrpc("application/grpc-web"));
  EXPECT_FALSE(isGrpc("application/json"));
  EXPECT_FALSE(isGrpc("application/grp"));
  EXPECT_FALSE(hasGrpcContentType(http::HeaderMap()));
}

TEST(GrpcCommonTest, HttpToGrpcStatus) {
  EXPECT_EQ(httpToGrpcStatus(400), Status::Internal);
  EXPECT_EQ(httpToGrpcStatus(401), Status::Unauthenticated);
  EXPECT_EQ(httpToGrpcStatus(403), Status::PermissionDenied);
  EXPECT_EQ(httpToGrpcStatus(404), Status::Unimplemented);
  EXPECT_EQ(httpToGrpcStatus(429), Status::Unavailable);
  EXPECT_EQ(httpToGrpcStatus(502), Status::Unavailable);
  EXPECT_EQ(httpToGrpcStatus(503), Status::Unavailable);
  EXPECT_EQ(httpToGrpcStatus(504), Status::Unavailable);
  EXPECT_EQ(httpToGrpcStatus(413), Status::Unknown);
  EXPECT_EQ(httpToGrpcStatus(500), Status::Unknown);
}

TEST(GrpcCommonTest, PercentEncode) {
  EXPECT_EQ(percentEncode("no healthy upstream"), "no healthy upstream");
  EXPECT_EQ(percentEncode("100%"), "100%25");
  EXPECT_EQ(percentEncode("a\nb"), "a%0Ab");
  EXPECT_EQ(percentEncode("\xc3\xa9"), "%C3%A9");
  EXPECT_EQ(percentEncode("~"), "~");
}

TEST(GrpcCommonTest, ParseTimeout) {
  using std::chrono::milliseconds;
  EXPECT_EQ(parseTimeout("1H"), milliseconds(3600000));
  EXPECT_EQ(parseTimeout("2M"), milliseconds(120000));
  EXPECT_EQ(parseTimeout("3S"), milliseconds(3000));
  EXPECT_EQ(parseTimeout("250m"), milliseconds(250));
  EXPECT_EQ(parseTimeout("1500u"), milliseconds(2));
  EXPECT_EQ(parseTimeout("1n"), milliseconds(1));
  EXPECT_EQ(parseTimeout("99999999S"), milliseconds(99999999000LL));
  EXPECT_EQ(parseTimeout("123456789S"), std::nullopt);  // more than 8 digits
  EXPECT_EQ(parseTimeout("10"), std::nullopt);
  EXPECT_EQ(parseTimeout("S"), std::nullopt);
  EXPECT_EQ(parseTimeout("1x"), std::nullopt);
  EXPECT_EQ(parseTimeout("-1S"), std::nullopt);
}

TEST(GrpcCommonTest, GrpcStatus) {
  http::HeaderMap h;
  EXPECT_EQ(grpcStatus(h), std::nullopt);
  h.add("grpc-status", "14");
  EXPECT_EQ(grpcStatus(h), 14u);
  http::HeaderMap bad;
  bad.add("grpc-status", "x");
  EXPECT_EQ(grpcStatus(bad), std::nullopt);
}

}  // namespace
}  // namespace courier::grpc
