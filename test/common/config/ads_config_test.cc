#include "source/common/config/ads_config.h"

#include <gtest/gtest.h>

namespace courier::config {
namespace {

using envoy::config::core::v3::ApiConfigSource;

ApiConfigSource googleGrpc(ApiConfigSource::ApiType type, const std::string& target) {
  ApiConfigSource config;
  config.set_api_type(type);
  config.add_grpc_services()->mutable_google_grpc()->set_target_uri(target);
  return config;
}

envoy::config::core::v3::Node node() {
  envoy::config::core::v3::Node node;
  node.set_id("proxy-1");
  return node;
}

TEST(AdsConfigTest, GoogleGrpcTargetAndProtocol) {
  auto config = googleGrpc(ApiConfigSource::GRPC, "127.0.0.1:15010");
  config.set_set_node_on_first_message_only(true);
  auto options = grpcMuxOptionsFromConfig(config, node(), "dynamic_resources.ads_config", nullptr);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->target_uri, "127.0.0.1:15010");
  EXPECT_EQ(options->protocol, AdsProtocol::kStateOfTheWorld);
  EXPECT_TRUE(options->set_node_on_first_message_only);
  EXPECT_EQ(options->node.id(), "proxy-1");
}

TEST(AdsConfigTest, DeltaTypesSelectTheDeltaProtocol) {
  for (auto type : {ApiConfigSource::DELTA_GRPC, ApiConfigSource::AGGREGATED_DELTA_GRPC}) {
    auto options =
        grpcMuxOptionsFromConfig(googleGrpc(type, "127.0.0.1:1"), node(), "dynamic_resources.ads_config", nullptr);
    ASSERT_TRUE(options.ok()) << options.status();
    EXPECT_EQ(options->protocol, AdsProtocol::kDelta);
  }
}

TEST(AdsConfigTest, EnvoyGrpcClusterIsResolvedToATarget) {
  ApiConfigSource config;
  config.set_api_type(ApiConfigSource::GRPC);
  config.add_grpc_services()->mutable_envoy_grpc()->set_cluster_name("xds_cluster");
  auto options = grpcMuxOptionsFromConfig(config, node(), "dynamic_resources.ads_config",
                                          [](const std::string& cluster) -> absl::StatusOr<std::string> {
                                            if (cluster == "xds_cluster") return std::string("10.0.0.1:15010");
                                            return absl::NotFoundError("no such static cluster");
                                          });
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->target_uri, "10.0.0.1:15010");
  // Unset: no receive limit (a large mesh's CDS is far over gRPC's 4 MiB).
  EXPECT_EQ(options->max_receive_message_length, -1);

  config.mutable_grpc_services(0)->mutable_envoy_grpc()->mutable_max_receive_message_length()->set_value(1 << 20);
  auto limited = grpcMuxOptionsFromConfig(config, node(), "dynamic_resources.ads_config",
                                          [](const std::string&) -> absl::StatusOr<std::string> {
                                            return std::string("10.0.0.1:15010");
                                          });
  ASSERT_TRUE(limited.ok()) << limited.status();
  EXPECT_EQ(limited->max_receive_message_length, 1 << 20);

  config.mutable_grpc_services(0)->mutable_envoy_grpc()->set_cluster_name("other");
  auto missing = grpcMuxOptionsFromConfig(config, node(), "dynamic_resources.ads_config",
                                          [](const std::string&) -> absl::StatusOr<std::string> {
                                            return absl::NotFoundError("no such static cluster");
                                          });
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: no such static cluster");
}

TEST(AdsConfigTest, RestIsRefusedWithTheFieldPath) {
  auto options = grpcMuxOptionsFromConfig(googleGrpc(ApiConfigSource::REST, "127.0.0.1:1"), node(),
                                          "dynamic_resources.ads_config", nullptr);
  ASSERT_FALSE(options.ok());
  EXPECT_EQ(options.status().message().rfind("dynamic_resources.ads_config.api_type: REST", 0), 0u)
      << options.status();
}

TEST(AdsConfigTest, ExactlyOneGrpcServiceIsRequired) {
  ApiConfigSource config;
  config.set_api_type(ApiConfigSource::GRPC);
  EXPECT_FALSE(grpcMuxOptionsFromConfig(config, node(), "ads_config", nullptr).ok());
  config.add_grpc_services()->mutable_google_grpc()->set_target_uri("a:1");
  config.add_grpc_services()->mutable_google_grpc()->set_target_uri("b:1");
  EXPECT_FALSE(grpcMuxOptionsFromConfig(config, node(), "ads_config", nullptr).ok());
}

TEST(AdsConfigTest, TlsCredentialsAreRefusedNotIgnored) {
  auto config = googleGrpc(ApiConfigSource::GRPC, "xds.example:443");
  config.mutable_grpc_services(0)->mutable_google_grpc()->mutable_channel_credentials()->mutable_ssl_credentials();
  auto options = grpcMuxOptionsFromConfig(config, node(), "ads_config", nullptr);
  ASSERT_FALSE(options.ok());
  EXPECT_EQ(options.status().code(), absl::StatusCode::kUnimplemented);
}

TEST(AdsConfigTest, InitialMetadataIsLowercasedAndValidated) {
  auto config = googleGrpc(ApiConfigSource::GRPC, "127.0.0.1:1");
  auto* header = config.mutable_grpc_services(0)->add_initial_metadata();
  header->set_key("X-Tenant");
  header->set_value("blue");
  auto options = grpcMuxOptionsFromConfig(config, node(), "ads_config", nullptr);
  ASSERT_TRUE(options.ok()) << options.status();
  ASSERT_EQ(options->initial_metadata.size(), 1u);
  EXPECT_EQ(options->initial_metadata[0].first, "x-tenant");
  EXPECT_EQ(options->initial_metadata[0].second, "blue");

  header->set_key("bad key");
  auto bad = grpcMuxOptionsFromConfig(config, node(), "ads_config", nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("ads_config.grpc_services[0].initial_metadata[0].key"), std::string::npos);
}

}  // namespace
}  // namespace courier::config
