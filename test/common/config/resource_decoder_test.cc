#include "source/common/config/resource_decoder.h"

#include <gtest/gtest.h>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"

namespace courier::config {
namespace {

google::protobuf::Any clusterAny(const std::string& name) {
  envoy::config::cluster::v3::Cluster cluster;
  cluster.set_name(name);
  google::protobuf::Any any;
  any.PackFrom(cluster);
  return any;
}

TEST(ResourceDecoderTest, DecodesAndNamesACluster) {
  auto decoded = decodeResource(clusterAny("reviews"), type_url::kCluster, "v1", "resources[0]");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->name, "reviews");
  EXPECT_EQ(decoded->version, "v1");
  ASSERT_NE(decoded->resource, nullptr);
  EXPECT_EQ(decoded->resource->GetDescriptor()->full_name(), "envoy.config.cluster.v3.Cluster");
}

TEST(ResourceDecoderTest, NamesAnAssignmentByClusterName) {
  envoy::config::endpoint::v3::ClusterLoadAssignment assignment;
  assignment.set_cluster_name("reviews");
  google::protobuf::Any any;
  any.PackFrom(assignment);
  auto decoded = decodeResource(any, type_url::kClusterLoadAssignment, "v1", "resources[0]");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->name, "reviews");
}

TEST(ResourceDecoderTest, OpensTheResourceWrapper) {
  envoy::service::discovery::v3::Resource wrapper;
  wrapper.set_name("reviews");
  *wrapper.mutable_resource() = clusterAny("reviews");
  google::protobuf::Any any;
  any.PackFrom(wrapper);
  auto decoded = decodeResource(any, type_url::kCluster, "v1", "resources[0]");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->name, "reviews");
  ASSERT_NE(decoded->resource, nullptr);
  EXPECT_EQ(decoded->resource->GetDescriptor()->full_name(), "envoy.config.cluster.v3.Cluster");
}

TEST(ResourceDecoderTest, RefusesAnotherType) {
  auto decoded = decodeResource(clusterAny("reviews"), type_url::kListener, "v1", "resources[3]");
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("resources[3]"), std::string::npos);
}

TEST(ResourceDecoderTest, RefusesUnknownTypesAndBadBytes) {
  google::protobuf::Any unknown;
  unknown.set_type_url("type.googleapis.com/no.such.Type");
  EXPECT_FALSE(decodeResource(unknown, unknown.type_url(), "", "resources[0]").ok());
  google::protobuf::Any garbage;
  garbage.set_type_url(type_url::kCluster);
  garbage.set_value("\xff\xff\xff");
  EXPECT_FALSE(decodeResource(garbage, type_url::kCluster, "", "resources[0]").ok());
}

}  // namespace
}  // namespace courier::config
