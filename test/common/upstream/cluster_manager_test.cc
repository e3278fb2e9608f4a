#include "source/common/upstream/cluster_manager.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/protobuf/yaml_loader.h"
#include "source/common/upstream/cluster_health.h"
#include "source/common/upstream/zone_aware_lb.h"

namespace courier::upstream {
namespace {

using envoy::config::cluster::v3::Cluster;
using ::testing::HasSubstr;

std::string clusterYaml(const std::string& name, int port, const std::string& timeout = "1s") {
  return "{name: " + name + ", type: STATIC, connect_timeout: " + timeout +
         ", load_assignment: {cluster_name: " + name +
         ", endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, " +
         "port_value: " + std::to_string(port) + "}}}}]}]}}";
}

config::DecodedResource resource(const std::string& yaml) {
  auto cluster = std::make_unique<Cluster>();
  EXPECT_TRUE(protobuf::loadFromYamlString(yaml, *cluster).ok()) << yaml;
  config::DecodedResource r;
  r.name = cluster->name();
  r.version = "v";
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
    for (const auto& y : yamls)
      ASSERT_TRUE(protobuf::loadFromYamlString(y, *b.mutable_static_resources()->add_clusters()).ok());
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

std::string twoZoneClusterYaml(const std::string& name) {
  return "{name: " + name + ", type: STATIC, load_assignment: {cluster_name: " + name +
         ", endpoints: [{locality: {zone: a}, lb_endpoints: [{endpoint: {address: {socket_address: "
         "{address: 127.0.0.1, port_value: 1}}}}]}, {locality: {zone: b}, lb_endpoints: [{endpoint: "
         "{address: {socket_address: {address: 127.0.0.2, port_value: 1}}}}]}]}}";
}

TEST_F(ClusterManagerTest, WithoutALocalClusterNothingKeepsZoneRoutingViews) {
  addStatic({twoZoneClusterYaml("static")});
  ASSERT_TRUE(manager_.onConfigUpdate(resources({twoZoneClusterYaml("dyn")}), "v1").ok());
  for (const char* name : {"static", "dyn"}) {
    const upstream::Cluster* c = manager_.clusters()->find(name);
    ASSERT_NE(c, nullptr);
    EXPECT_FALSE(c->zone_aware.has_value()) << name;
    EXPECT_EQ(c->layout, nullptr) << name;
  }
  EXPECT_TRUE(manager_.clusters()->local_cluster_name.empty());
}

TEST_F(ClusterManagerTest, ALocalClusterReachesTheWorkersSetAndClustersKeepZoneRouting) {
  manager_.setLocalCluster("local", LocalityEntry{"r", "a", "", 0});
  addStatic({twoZoneClusterYaml("local"), twoZoneClusterYaml("up")});
  ASSERT_TRUE(manager_.onConfigUpdate(resources({twoZoneClusterYaml("dyn")}), "v1").ok());
  EXPECT_EQ(manager_.clusters()->local_cluster_name, "local");
  EXPECT_EQ(manager_.clusters()->local_locality.region, "r");
  EXPECT_EQ(manager_.clusters()->local_locality.zone, "a");
  for (const char* name : {"up", "dyn"}) {
    const upstream::Cluster* c = manager_.clusters()->find(name);
    ASSERT_NE(c, nullptr);
    EXPECT_TRUE(routesByZone(*c)) << name;
  }
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

// --- EDS ---

// Records what the manager subscribes to and hands the test the callbacks.
class FakeSubscription : public config::Subscription {
 public:
  explicit FakeSubscription(absl::flat_hash_set<std::string>* started) : started_(started) {}
  void start(const absl::flat_hash_set<std::string>& names) override { *started_ = names; }
  void updateResourceInterest(const absl::flat_hash_set<std::string>& names) override { *started_ = names; }

 private:
  absl::flat_hash_set<std::string>* started_;
};

config::DecodedResource assignmentResource(const std::string& yaml) {
  auto cla = std::make_unique<envoy::config::endpoint::v3::ClusterLoadAssignment>();
  EXPECT_TRUE(protobuf::loadFromYamlString(yaml, *cla).ok()) << yaml;
  config::DecodedResource r;
  r.name = cla->cluster_name();
  r.version = "e";
  r.resource = std::move(cla);
  return r;
}

std::vector<config::DecodedResource> assignment(const std::string& name, const std::string& endpoints) {
  std::vector<config::DecodedResource> out;
  out.push_back(assignmentResource("{cluster_name: " + name + ", endpoints: [{lb_endpoints: [" + endpoints + "]}]}"));
  return out;
}

std::string endpoint(int port, const std::string& extra = "") {
  return "{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: " + std::to_string(port) + "}}}" +
         extra + "}";
}

std::string edsClusterYaml(const std::string& name, const std::string& timeout = "1s") {
  return "{name: " + name + ", type: EDS, connect_timeout: " + timeout +
         ", eds_cluster_config: {service_name: svc, eds_config: {ads: {}}}}";
}

class EdsClusterManagerTest : public ClusterManagerTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(manager_
                    .startEds([this](const envoy::config::core::v3::ConfigSource&, const std::string& path,
                                     const std::string& type_url, config::SubscriptionCallbacks& callbacks)
                                  -> absl::StatusOr<std::unique_ptr<config::Subscription>> {
                      EXPECT_EQ(type_url, config::type_url::kClusterLoadAssignment);
                      paths_.push_back(path);
                      eds_ = &callbacks;
                      return std::make_unique<FakeSubscription>(&started_);
                    })
                    .ok());
  }
  const upstream::Cluster* web() { return manager_.clusters()->find("web"); }

  config::SubscriptionCallbacks* eds_ = nullptr;
  absl::flat_hash_set<std::string> started_;
  std::vector<std::string> paths_;
};

TEST_F(EdsClusterManagerTest, ClusterWarmsUntilItsFirstAssignment) {
  bool loaded = false;
  manager_.setInitialLoadCallback([&] { loaded = true; });
  ASSERT_TRUE(manager_.onConfigUpdate(resources({edsClusterYaml("web")}), "c1").ok());
  manager_.markInitialLoadDone();
  ASSERT_NE(eds_, nullptr);
  EXPECT_EQ(started_, absl::flat_hash_set<std::string>{"svc"});
  EXPECT_EQ(paths_.front(), "resources[0].eds_cluster_config.eds_config");
  EXPECT_EQ(web(), nullptr);
  EXPECT_TRUE(manager_.warming("web"));
  EXPECT_EQ(gauge("cluster_manager.warming_clusters"), 1u);
  EXPECT_FALSE(loaded);

  ASSERT_TRUE(eds_->onConfigUpdate(assignment("svc", endpoint(1) + "," + endpoint(2)), "e1").ok());
  ASSERT_NE(web(), nullptr);
  EXPECT_EQ(web()->hosts.size(), 2u);
  EXPECT_EQ(gauge("cluster_manager.warming_clusters"), 0u);
  EXPECT_TRUE(loaded);
  EXPECT_EQ(counter("cluster.web.update_success"), 1u);
  EXPECT_EQ(gauge("cluster.web.membership_total"), 2u);
  EXPECT_EQ(gauge("cluster.web.membership_healthy"), 2u);
  ASSERT_EQ(manager_.endpointDumps().size(), 1u);
  EXPECT_EQ(manager_.endpointDumps()[0].version_info, "e1");
}

TEST_F(EdsClusterManagerTest, HostsThatStayKeepTheirObjectAndTheClusterItsSettings) {
  ASSERT_TRUE(manager_.onConfigUpdate(resources({edsClusterYaml("web")}), "c1").ok());
  ASSERT_TRUE(eds_->onConfigUpdate(assignment("svc", endpoint(1) + "," + endpoint(2)), "e1").ok());
  auto first = manager_.clusters()->clusters.at("web");
  ASSERT_TRUE(eds_->onConfigUpdate(assignment("svc", endpoint(1) + "," + endpoint(3)), "e2").ok());
  auto second = manager_.clusters()->clusters.at("web");
  EXPECT_NE(second, first);
  EXPECT_EQ(second->settings_id, first->settings_id);
  ASSERT_EQ(second->hosts.size(), 2u);
  EXPECT_EQ(second->hosts[0], first->hosts[0]);  // port 1 stayed
  EXPECT_EQ(second->hosts[1]->address.port(), 3);
  // A changed weight is a new host.
  ASSERT_TRUE(
      eds_->onConfigUpdate(assignment("svc", endpoint(1, ", load_balancing_weight: 5") + "," + endpoint(3)), "e3")
          .ok());
  auto third = manager_.clusters()->clusters.at("web");
  EXPECT_NE(third->hosts[0], second->hosts[0]);
  EXPECT_EQ(third->hosts[0]->weight, 5u);
  EXPECT_EQ(third->hosts[1], second->hosts[1]);
}

TEST_F(EdsClusterManagerTest, UnhealthyDrainingAndTimedOutHostsAreListedWithTheirFlags) {
  ASSERT_TRUE(manager_.onConfigUpdate(resources({edsClusterYaml("web")}), "c1").ok());
  ASSERT_TRUE(eds_->onConfigUpdate(assignment("svc", endpoint(1, ", health_status: UNHEALTHY") + "," +
                                                         endpoint(2, ", health_status: DRAINING") + "," +
                                                         endpoint(3, ", health_status: TIMEOUT") + "," +
                                                         endpoint(4, ", health_status: DEGRADED") + "," +
                                                         endpoint(5, ", health_status: HEALTHY") + "," + endpoint(6)),
                                   "e1")
                  .ok());
  // Every endpoint stays listed (as Envoy's), the failed ones flagged.
  ASSERT_EQ(web()->hosts.size(), 6u);
  for (size_t i : {0, 1, 2}) EXPECT_EQ(web()->hosts[i]->health_flags.load(), health_flag::kFailedEdsHealth) << i;
  EXPECT_EQ(web()->hosts[3]->health_flags.load(), health_flag::kDegradedEdsHealth);
  EXPECT_TRUE(web()->hosts[4]->healthy());
  EXPECT_TRUE(web()->hosts[5]->healthy());
  EXPECT_EQ(gauge("cluster.web.membership_total"), 6u);
  EXPECT_EQ(gauge("cluster.web.membership_healthy"), 2u);
  auto lb = createLoadBalancer(*web());
  for (int i = 0; i < 300; ++i) {
    const Host* h = lb->chooseHost(nullptr);
    ASSERT_NE(h, nullptr);
    EXPECT_GE(h->address.port(), 4) << "picked a failed host";
  }
}

TEST_F(EdsClusterManagerTest, BadAssignmentIsRejectedNamingTheFieldAndHostsStay) {
  ASSERT_TRUE(manager_.onConfigUpdate(resources({edsClusterYaml("web")}), "c1").ok());
  ASSERT_TRUE(eds_->onConfigUpdate(assignment("svc", endpoint(1)), "e1").ok());
  auto status = eds_->onConfigUpdate(assignment("svc", endpoint(2, ", load_balancing_weight: 0")), "e2");
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(
      std::string(status.message()),
      HasSubstr("cluster load assignment \"svc\": resources[0].endpoints[0].lb_endpoints[0].load_balancing_weight"));
  status = eds_->onConfigUpdate(assignment("other", endpoint(2)), "e3");
  EXPECT_THAT(std::string(status.message()), HasSubstr("resources[0].cluster_name: expected \"svc\""));
  EXPECT_EQ(counter("cluster.web.update_rejected"), 2u);
  ASSERT_EQ(web()->hosts.size(), 1u);
  EXPECT_EQ(web()->hosts[0]->address.port(), 1);
  EXPECT_EQ(manager_.endpointDumps()[0].version_info, "e1");
}

TEST_F(EdsClusterManagerTest, FailedFirstFetchWarmsTheClusterWithNoHosts) {
  ASSERT_TRUE(manager_.onConfigUpdate(resources({edsClusterYaml("web")}), "c1").ok());
  eds_->onConfigUpdateFailed(config::UpdateFailureReason::FetchTimedOut, absl::DeadlineExceededError("timeout"));
  ASSERT_NE(web(), nullptr);
  EXPECT_TRUE(web()->hosts.empty());
  EXPECT_EQ(counter("cluster.web.update_failure"), 1u);
  EXPECT_FALSE(manager_.warming("web"));
}

TEST_F(EdsClusterManagerTest, ChangedClusterKeepsItsSubscriptionAndHosts) {
  ASSERT_TRUE(manager_.onConfigUpdate(resources({edsClusterYaml("web")}), "c1").ok());
  config::SubscriptionCallbacks* first = eds_;
  ASSERT_TRUE(eds_->onConfigUpdate(assignment("svc", endpoint(1)), "e1").ok());
  ASSERT_TRUE(manager_.onConfigUpdate(resources({edsClusterYaml("web", "2s")}), "c2").ok());
  EXPECT_EQ(eds_, first);  // not subscribed again
  ASSERT_NE(web(), nullptr);
  EXPECT_EQ(web()->connect_timeout, std::chrono::milliseconds(2000));
  ASSERT_EQ(web()->hosts.size(), 1u);
  // Removing the cluster drops its endpoints.
  ASSERT_TRUE(manager_.onConfigUpdate(resources({}), "c3").ok());
  EXPECT_EQ(web(), nullptr);
  EXPECT_TRUE(manager_.endpointDumps().empty());
}

std::string healthCheckedYaml(const std::string& timeout) {
  std::string y = clusterYaml("hc", 1, timeout);
  y.insert(y.size() - 1,
           ", health_checks: [{timeout: 1s, interval: 10s, unhealthy_threshold: 2, "
           "healthy_threshold: 2, http_health_check: {path: /healthz}}], outlier_detection: {}");
  return y;
}

TEST(ClusterManagerHealthTest, HostsOfAHealthCheckedClusterStartFailedAndPending) {
  event::Dispatcher main{"main"};
  stats::Store store;
  thread_local_::SnapshotSlot<ClusterSet> slot{main, {}};
  ClusterManager manager{store, slot, &main};
  ASSERT_TRUE(manager.onConfigUpdate(resources({healthCheckedYaml("1s")}), "v1").ok());
  const upstream::Cluster* c = manager.clusters()->find("hc");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->hosts[0]->health_flags.load(), health_flag::kFailedActiveHc | health_flag::kPendingActiveHc);
  EXPECT_EQ(c->unhealthy_hosts.load(), 1u);
  ASSERT_NE(manager.entries().at("hc").health, nullptr);
}

TEST(ClusterManagerHealthTest, CdsUpdateKeepsAHostsActiveHealthByAddress) {
  event::Dispatcher main{"main"};
  stats::Store store;
  thread_local_::SnapshotSlot<ClusterSet> slot{main, {}};
  ClusterManager manager{store, slot, &main};
  ASSERT_TRUE(manager.onConfigUpdate(resources({healthCheckedYaml("1s")}), "v1").ok());
  const upstream::Cluster* v1 = manager.clusters()->find("hc");
  // As if its first check passed.
  setHealthFlag(*v1, *v1->hosts[0], health_flag::kFailedActiveHc | health_flag::kPendingActiveHc, false);
  ASSERT_TRUE(manager.onConfigUpdate(resources({healthCheckedYaml("2s")}), "v2").ok());
  const upstream::Cluster* v2 = manager.clusters()->find("hc");
  ASSERT_NE(v2, v1);
  EXPECT_TRUE(v2->hosts[0]->healthy());
  EXPECT_EQ(v2->unhealthy_hosts.load(), 0u);
}

TEST(ClusterManagerHealthTest, WithoutADispatcherNothingRunsButConfigIsStillChecked) {
  event::Dispatcher main{"main"};
  stats::Store store;
  thread_local_::SnapshotSlot<ClusterSet> slot{main, {}};
  ClusterManager manager{store, slot};
  ASSERT_TRUE(manager.onConfigUpdate(resources({healthCheckedYaml("1s")}), "v1").ok());
  EXPECT_EQ(manager.entries().at("hc").health, nullptr);
  EXPECT_TRUE(manager.clusters()->find("hc")->hosts[0]->healthy());
  std::string bad = healthCheckedYaml("1s");
  bad.replace(bad.find("interval: 10s, "), 15, "");
  auto status = manager.onConfigUpdate(resources({bad}), "v2");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("health_checks[0].interval"));
}

}  // namespace
}  // namespace courier::upstream
