#include "source/common/upstream/cluster_manager.h"

#include <memory>
#include <string>
#include <vector>

#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/protobuf/yaml_loader.h"

namespace courier::upstream {
namespace {

using envoy::config::cluster::v3::Cluster;
using ::testing::HasSubstr;

std::string clusterYaml(const std::string& name, int port, const std::string& timeout = "1s") {
  return "{name: " + name + ", type: STATIC, connect_timeout: " + timeout + ", load_assignment: {cluster_name: " +
         name + ", endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, " +
         "port_value: " + std::to_string(port) + "}}}}]}]}}";
}

config::DecodedResource resource(const std::string& yaml) {
  auto cluster = std::make_unique<Cluster>();
  EXPECT_TRUE(protobuf::loadFromYamlString(yaml, *cluster).ok()) << yaml;
  config::DecodedResource r;
  r.name = cluster->name();
  r.version = "v";
  r.any.PackFrom(*cluster);
  r.resource = std::move(cluster);
  return r;
}

std::vector<config::DecodedResource> resources(const std::vector<std::string>& yamls) {
  std::vector<config::DecodedResource> out;
  for (const auto& y : yamls) out.push_back(resource(y));
  return out;
}

class ClusterManagerTest : public ::testing::Test {
 protected:
  void addStatic(const std::vector<std::string>& yamls) {
    envoy::config::bootstrap::v3::Bootstrap b;
    for (const auto& y : yamls) ASSERT_TRUE(protobuf::loadFromYamlString(y, *b.mutable_static_resources()->add_clusters()).ok());
    ASSERT_TRUE(manager_.addStaticClusters(b.static_resources().clusters()).ok());
  }
  uint64_t counter(const std::string& name) { return store_.counter(name).value(); }
  uint64_t gauge(const std::string& name) { return store_.gauge(name).value(); }

  event::Dispatcher main_{"main"};
  stats::Store store_;
  // No workers: publishing completes at once.
  thread_local_::SnapshotSlot<ClusterSet> slot_{main_, {}};
  ClusterManager manager_{store_, slot_};
};

TEST_F(ClusterManagerTest, CdsAddsClustersBesideStaticOnes) {
  addStatic({clusterYaml("static", 1)});
  ASSERT_TRUE(manager_.onConfigUpdate(resources({clusterYaml("dyn", 2)}), "v1").ok());
  ASSERT_NE(manager_.clusters()->find("dyn"), nullptr);
  ASSERT_NE(manager_.clusters()->find("static"), nullptr);
  EXPECT_EQ(counter("cluster_manager.cluster_added"), 1u);
  EXPECT_EQ(counter("cluster_manager.cds.update_attempt"), 1u);
  EXPECT_EQ(counter("cluster_manager.cds.update_success"), 1u);
  EXPECT_EQ(gauge("cluster_manager.active_clusters"), 2u);
  EXPECT_NE(gauge("cluster_manager.cds.version"), 0u);
  EXPECT_TRUE(manager_.entries().at("dyn").added_via_api);
  EXPECT_EQ(manager_.entries().at("dyn").version_info, "v");
  EXPECT_EQ(manager_.cdsVersion(), "v1");
}

TEST_F(ClusterManagerTest, UnchangedClusterKeepsItsObjectSoWorkersKeepTheirState) {
  ASSERT_TRUE(manager_.onConfigUpdate(resources({clusterYaml("dyn", 2)}), "v1").ok());
  auto first = manager_.clusters()->clusters.at("dyn");
  ASSERT_TRUE(manager_.onConfigUpdate(resources({clusterYaml("dyn", 2)}), "v2").ok());
  EXPECT_EQ(manager_.clusters()->clusters.at("dyn"), first);
  EXPECT_EQ(counter("cluster_manager.cluster_modified"), 0u);
  EXPECT_EQ(counter("cluster_manager.cds.update_success"), 2u);
}

TEST_F(ClusterManagerTest, ChangedClusterIsReplacedAndCountedModified) {
  ASSERT_TRUE(manager_.onConfigUpdate(resources({clusterYaml("dyn", 2)}), "v1").ok());
  auto first = manager_.clusters()->clusters.at("dyn");
  ASSERT_TRUE(manager_.onConfigUpdate(resources({clusterYaml("dyn", 3)}), "v2").ok());
  auto second = manager_.clusters()->clusters.at("dyn");
  EXPECT_NE(second, first);
  EXPECT_EQ(second->hosts.front()->address.port(), 3);
  // Whoever still holds the old cluster (a request in flight) keeps a valid one.
  EXPECT_EQ(first->hosts.front()->address.port(), 2);
  EXPECT_EQ(counter("cluster_manager.cluster_modified"), 1u);
}

TEST_F(ClusterManagerTest, StateOfTheWorldRemovesDynamicClustersNotNamed) {
  addStatic({clusterYaml("static", 1)});
  ASSERT_TRUE(manager_.onConfigUpdate(resources({clusterYaml("a", 2), clusterYaml("b", 3)}), "v1").ok());
  ASSERT_TRUE(manager_.onConfigUpdate(resources({clusterYaml("b", 3)}), "v2").ok());
  EXPECT_EQ(manager_.clusters()->find("a"), nullptr);
  EXPECT_NE(manager_.clusters()->find("b"), nullptr);
  EXPECT_NE(manager_.clusters()->find("static"), nullptr);
  EXPECT_EQ(counter("cluster_manager.cluster_removed"), 1u);
  EXPECT_EQ(gauge("cluster_manager.active_clusters"), 2u);
}

TEST_F(ClusterManagerTest, DeltaRemovesOnlyNamedDynamicClusters) {
  addStatic({clusterYaml("static", 1)});
  ASSERT_TRUE(manager_.onConfigUpdate(resources({clusterYaml("a", 2), clusterYaml("b", 3)}), "v1").ok());
  ASSERT_TRUE(manager_.onConfigUpdate({}, {"a", "static"}, "v2").ok());
  EXPECT_EQ(manager_.clusters()->find("a"), nullptr);
  EXPECT_NE(manager_.clusters()->find("b"), nullptr);
  EXPECT_NE(manager_.clusters()->find("static"), nullptr);
}

TEST_F(ClusterManagerTest, StaticClusterIsNeitherReplacedNorRemovedByCds) {
  addStatic({clusterYaml("static", 1)});
  auto original = manager_.clusters()->clusters.at("static");
  ASSERT_TRUE(manager_.onConfigUpdate(resources({clusterYaml("static", 9)}), "v1").ok());
  EXPECT_EQ(manager_.clusters()->clusters.at("static"), original);
  ASSERT_TRUE(manager_.onConfigUpdate(resources({}), "v2").ok());
  EXPECT_EQ(manager_.clusters()->clusters.at("static"), original);
  EXPECT_FALSE(manager_.entries().at("static").added_via_api);
}

TEST_F(ClusterManagerTest, BadClusterRejectsTheWholeUpdateNamingItsIndexAndName) {
  ASSERT_TRUE(manager_.onConfigUpdate(resources({clusterYaml("keep", 2)}), "v1").ok());
  auto status = manager_.onConfigUpdate(resources({clusterYaml("new", 3), clusterYaml("bad", 4, "0s")}), "v2");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("cluster \"bad\": resources[1].connect_timeout"));
  EXPECT_EQ(manager_.clusters()->find("new"), nullptr);
  EXPECT_NE(manager_.clusters()->find("keep"), nullptr);
  EXPECT_EQ(counter("cluster_manager.cds.update_rejected"), 1u);
  EXPECT_EQ(counter("cluster_manager.cds.update_success"), 1u);
  EXPECT_EQ(manager_.cdsVersion(), "v1");
}

TEST_F(ClusterManagerTest, InitialLoadCallbackRunsOnceAfterTheFirstDeliveryOrFailure) {
  int calls = 0;
  manager_.setInitialLoadCallback([&] { ++calls; });
  manager_.onConfigUpdateFailed(config::UpdateFailureReason::ConnectionFailure, absl::UnavailableError("gone"));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(counter("cluster_manager.cds.update_failure"), 1u);
  ASSERT_TRUE(manager_.onConfigUpdate(resources({clusterYaml("a", 2)}), "v1").ok());
  EXPECT_EQ(calls, 1);
}

TEST_F(ClusterManagerTest, UndecodableFileCountsRejected) {
  manager_.onConfigUpdateFailed(config::UpdateFailureReason::UpdateRejected, absl::InvalidArgumentError("bad"));
  EXPECT_EQ(counter("cluster_manager.cds.update_rejected"), 1u);
  EXPECT_EQ(counter("cluster_manager.cds.update_attempt"), 1u);
}

}  // namespace
}  // namespace courier::upstream
