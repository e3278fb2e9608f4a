#include "source/server/listener_manager.h"

#include <memory>
#include <string>
#include <vector>

#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/protobuf/yaml_loader.h"
#include "source/common/router/rds.h"

namespace courier::server {
namespace {

using envoy::config::listener::v3::Listener;
using ::testing::HasSubstr;

std::string listenerYaml(const std::string& name, int port, const std::string& cluster) {
  return "{name: " + name + ", address: {socket_address: {address: 127.0.0.1, port_value: " + std::to_string(port) +
         "}}, filter_chains: [{filters: [{name: envoy.filters.network.tcp_proxy, typed_config: {'@type': "
         "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: " +
         cluster + "}}]}]}";
}

// A listener whose filter's typed_config decodes but names no network filter.
std::string badListenerYaml(const std::string& name, int port) {
  return "{name: " + name + ", address: {socket_address: {address: 127.0.0.1, port_value: " + std::to_string(port) +
         "}}, filter_chains: [{filters: [{name: nope, typed_config: {'@type': "
         "type.googleapis.com/envoy.config.cluster.v3.Cluster}}]}]}";
}

config::DecodedResource resource(const std::string& yaml) {
  auto listener = std::make_unique<Listener>();
  EXPECT_TRUE(protobuf::loadFromYamlString(yaml, *listener).ok()) << yaml;
  config::DecodedResource r;
  r.name = listener->name();
  r.version = "v";
  r.resource = std::move(listener);
  return r;
}

std::vector<config::DecodedResource> resources(const std::vector<std::string>& yamls) {
  std::vector<config::DecodedResource> out;
  for (const auto& y : yamls) out.push_back(resource(y));
  return out;
}

// Without workers (as --mode validate): listeners are built, checked and
// tracked, nothing is bound.
class ListenerManagerTest : public ::testing::Test {
 protected:
  ListenerManagerTest() { clusters_.clusters.emplace("backend", std::make_shared<upstream::Cluster>()); }

  void addStatic(const std::vector<std::string>& yamls) {
    envoy::config::bootstrap::v3::Bootstrap b;
    for (const auto& y : yamls) {
      ASSERT_TRUE(protobuf::loadFromYamlString(y, *b.mutable_static_resources()->add_listeners()).ok());
    }
    ASSERT_TRUE(manager_.addStaticListeners(b.static_resources().listeners()).ok());
  }
  std::vector<std::string> names() {
    std::vector<std::string> out;
    for (const auto& e : manager_.listeners()) out.push_back(e.config->name);
    return out;
  }
  uint64_t counter(const std::string& name) { return store_.counter(name).value(); }
  uint64_t gauge(const std::string& name) { return store_.gauge(name).value(); }

  event::Dispatcher main_{"main"};
  stats::Store store_;
  upstream::ClusterSet clusters_;
  std::vector<std::unique_ptr<Worker>> workers_;
  // RDS subscriptions are fakes: rds_callbacks_ answers for them.
  std::vector<config::SubscriptionCallbacks*> rds_callbacks_;
  std::unique_ptr<router::RdsManager> rds_ = [this] {
    auto rds = std::make_unique<router::RdsManager>(main_, std::vector<event::Dispatcher*>{}, store_);
    rds->setSubscriptionFactory([this](const envoy::config::core::v3::ConfigSource&, const std::string&,
                                       const std::string&, config::SubscriptionCallbacks& callbacks)
                                    -> absl::StatusOr<std::unique_ptr<config::Subscription>> {
      rds_callbacks_.push_back(&callbacks);
      return std::unique_ptr<config::Subscription>();
    });
    return rds;
  }();
  ListenerManager manager_{main_,
                           workers_,
                           store_,
                           [this] {
                             FactoryContext context{store_, &clusters_, nullptr};
                             context.rds = rds_.get();
                             return context;
                           },
                           std::chrono::seconds(1),
                           /*bind=*/false};
};

TEST_F(ListenerManagerTest, LdsAddsListenersAndCounts) {
  ASSERT_TRUE(manager_.onConfigUpdate(resources({listenerYaml("a", 1001, "backend")}), "v1").ok());
  EXPECT_EQ(names(), std::vector<std::string>{"a"});
  EXPECT_EQ(counter("listener_manager.listener_added"), 1u);
  EXPECT_EQ(counter("listener_manager.lds.update_success"), 1u);
  EXPECT_EQ(gauge("listener_manager.total_listeners_active"), 1u);
  EXPECT_EQ(manager_.ldsVersion(), "v1");
  EXPECT_TRUE(manager_.listeners().front().added_via_api);
}

TEST_F(ListenerManagerTest, SameListenerAgainIsANoOp) {
  ASSERT_TRUE(manager_.onConfigUpdate(resources({listenerYaml("a", 1001, "backend")}), "v1").ok());
  auto config = manager_.listeners().front().config;
  ASSERT_TRUE(manager_.onConfigUpdate(resources({listenerYaml("a", 1001, "backend")}), "v2").ok());
  EXPECT_EQ(manager_.listeners().front().config, config);
  EXPECT_EQ(counter("listener_manager.listener_modified"), 0u);
  EXPECT_EQ(gauge("listener_manager.total_listeners_draining"), 0u);
}

TEST_F(ListenerManagerTest, ChangedListenerReplacesTheOldAndTheOldDrains) {
  clusters_.clusters.emplace("other", std::make_shared<upstream::Cluster>());
  ASSERT_TRUE(manager_.onConfigUpdate(resources({listenerYaml("a", 1001, "backend")}), "v1").ok());
  auto config = manager_.listeners().front().config;
  ASSERT_TRUE(manager_.onConfigUpdate(resources({listenerYaml("a", 1001, "other")}), "v2").ok());
  EXPECT_NE(manager_.listeners().front().config, config);
  EXPECT_EQ(counter("listener_manager.listener_modified"), 1u);
  EXPECT_EQ(gauge("listener_manager.total_listeners_draining"), 1u);
  EXPECT_EQ(gauge("listener_manager.total_listeners_active"), 1u);
  // Only the filter chain changed: Envoy's in-place (filter-chain-only) update.
  EXPECT_EQ(counter("listener_manager.listener_in_place_updated"), 1u);
}

TEST_F(ListenerManagerTest, ListenerLevelChangeIsNotAnInPlaceUpdate) {
  ASSERT_TRUE(manager_.onConfigUpdate(resources({listenerYaml("a", 1001, "backend")}), "v1").ok());
  std::string changed = listenerYaml("a", 1001, "backend");
  changed.insert(changed.size() - 1, ", per_connection_buffer_limit_bytes: 4096");
  ASSERT_TRUE(manager_.onConfigUpdate(resources({changed}), "v2").ok());
  EXPECT_EQ(counter("listener_manager.listener_modified"), 1u);
  EXPECT_EQ(counter("listener_manager.listener_in_place_updated"), 0u);
}

TEST_F(ListenerManagerTest, BadFilterChainMatchRejectsTheUpdateNamingTheField) {
  std::string bad = listenerYaml("a", 1001, "backend");
  bad.replace(bad.find("filter_chains: [{"), 17,
              "filter_chains: [{filter_chain_match: {prefix_ranges: [{address_prefix: 'not-an-ip'}]}, ");
  auto status = manager_.onConfigUpdate(resources({bad}), "v1");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("listener \"a\": resources[0].filter_chains[0].filter_chain_match.prefix_ranges[0]: "
                        "\"not-an-ip\" is not an IPv4 or IPv6 address"));
  EXPECT_EQ(counter("listener_manager.lds.update_rejected"), 1u);
}

TEST_F(ListenerManagerTest, StateOfTheWorldRemovesDynamicListenersNotNamed) {
  addStatic({listenerYaml("static", 1000, "backend")});
  ASSERT_TRUE(
      manager_.onConfigUpdate(resources({listenerYaml("a", 1001, "backend"), listenerYaml("b", 1002, "backend")}), "v1")
          .ok());
  ASSERT_TRUE(manager_.onConfigUpdate(resources({listenerYaml("b", 1002, "backend")}), "v2").ok());
  EXPECT_EQ(names(), (std::vector<std::string>{"static", "b"}));
  EXPECT_EQ(counter("listener_manager.listener_removed"), 1u);
  EXPECT_EQ(gauge("listener_manager.total_listeners_draining"), 1u);
}

TEST_F(ListenerManagerTest, StaticListenerIsNeitherChangedNorRemovedByLds) {
  addStatic({listenerYaml("static", 1000, "backend")});
  auto config = manager_.listeners().front().config;
  ASSERT_TRUE(manager_.onConfigUpdate(resources({listenerYaml("static", 1005, "backend")}), "v1").ok());
  ASSERT_TRUE(manager_.onConfigUpdate(resources({}), "v2").ok());
  ASSERT_TRUE(manager_.onConfigUpdate({}, {"static"}, "v3").ok());
  EXPECT_EQ(names(), std::vector<std::string>{"static"});
  EXPECT_EQ(manager_.listeners().front().config, config);
}

TEST_F(ListenerManagerTest, ListenerWithAnUnknownFilterRejectsTheWholeUpdate) {
  ASSERT_TRUE(manager_.onConfigUpdate(resources({listenerYaml("a", 1001, "backend")}), "v1").ok());
  auto status =
      manager_.onConfigUpdate(resources({listenerYaml("new", 1002, "backend"), badListenerYaml("bad", 1003)}), "v2");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("listener \"bad\": resources[1].filter_chains[0].filters[0].typed_config: no network filter"));
  EXPECT_EQ(names(), std::vector<std::string>{"a"});
  EXPECT_EQ(counter("listener_manager.lds.update_rejected"), 1u);
  EXPECT_EQ(manager_.ldsVersion(), "v1");
}

TEST_F(ListenerManagerTest, TwoListenersOnOneAddressAreRejected) {
  addStatic({listenerYaml("static", 1000, "backend")});
  auto status = manager_.onConfigUpdate(resources({listenerYaml("a", 1000, "backend")}), "v1");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("listener \"a\": resources[0].address: 127.0.0.1:1000 is already the address of listener "
                        "\"static\""));
  EXPECT_EQ(names(), std::vector<std::string>{"static"});
}

TEST_F(ListenerManagerTest, AListenerMayTakeTheAddressOfOneRemovedInTheSameUpdate) {
  ASSERT_TRUE(manager_.onConfigUpdate(resources({listenerYaml("a", 1001, "backend")}), "v1").ok());
  ASSERT_TRUE(manager_.onConfigUpdate(resources({listenerYaml("b", 1001, "backend")}), "v2").ok());
  EXPECT_EQ(names(), std::vector<std::string>{"b"});
}

TEST_F(ListenerManagerTest, InitialLoadCallbackRunsOnceOnFailureOrSuccess) {
  int calls = 0;
  manager_.setInitialLoadCallback([&] { ++calls; });
  ASSERT_FALSE(manager_.onConfigUpdate(resources({badListenerYaml("bad", 1003)}), "v1").ok());
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(manager_.onConfigUpdate(resources({listenerYaml("a", 1001, "backend")}), "v2").ok());
  EXPECT_EQ(calls, 1);
}

// An HTTP listener whose route table r1 comes from RDS.
std::string rdsListenerYaml(const std::string& name, int port, const std::string& table = "r1") {
  return "{name: " + name + ", address: {socket_address: {address: 127.0.0.1, port_value: " + std::to_string(port) +
         "}}, filter_chains: [{filters: [{name: envoy.filters.network.http_connection_manager, typed_config: "
         "{'@type': type.googleapis.com/"
         "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager, stat_prefix: " +
         name +
         ", rds: {route_config_name: " + table +
         ", config_source: {ads: {}}}, http_filters: [{name: "
         "envoy.filters.http.router, typed_config: {'@type': "
         "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]}}]}]}";
}

TEST_F(ListenerManagerTest, InitialLoadWaitsForTheRouteTablesOfStaticListeners) {
  int calls = 0;
  manager_.setInitialLoadCallback([&] { ++calls; });
  addStatic({rdsListenerYaml("s", 1005)});
  ASSERT_EQ(rds_callbacks_.size(), 1u);
  // No LDS: the server says so once the clusters warmed; r1 is still awaited.
  manager_.markInitialLoadDone();
  EXPECT_EQ(calls, 0);
  // A fetch that timed out ends the wait, as Envoy's RDS init target.
  rds_callbacks_[0]->onConfigUpdateFailed(config::UpdateFailureReason::FetchTimedOut,
                                          absl::DeadlineExceededError("timed out"));
  EXPECT_EQ(calls, 1);
}

TEST_F(ListenerManagerTest, StaticListenerWhoseTableAlreadyArrivedDoesNotHoldTheInitialLoad) {
  int calls = 0;
  manager_.setInitialLoadCallback([&] { ++calls; });
  addStatic({rdsListenerYaml("s", 1005)});
  rds_callbacks_[0]->onConfigUpdateFailed(config::UpdateFailureReason::ConnectionFailure,
                                          absl::UnavailableError("down"));
  // A second listener naming the same (now warm) table waits for nothing.
  addStatic({rdsListenerYaml("t", 1006)});
  manager_.markInitialLoadDone();
  EXPECT_EQ(calls, 1);
}

// Envoy puts the listeners of LDS updates applied before its workers start
// straight into the active list; its server initialization waits for them.
TEST_F(ListenerManagerTest, ListenersFromLdsDuringInitializationAreActiveAndHoldTheInitialLoad) {
  int calls = 0;
  manager_.setInitialLoadCallback([&] { ++calls; });
  ASSERT_TRUE(manager_.onConfigUpdate(resources({rdsListenerYaml("a", 1001), listenerYaml("b", 1002, "backend")}),
                                      "v1")
                  .ok());
  EXPECT_EQ(names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(gauge("listener_manager.total_listeners_active"), 2u);
  EXPECT_EQ(gauge("listener_manager.total_listeners_warming"), 0u);
  EXPECT_TRUE(manager_.warmingListeners().empty());
  EXPECT_EQ(counter("listener_manager.listener_added"), 2u);
  EXPECT_EQ(counter("listener_manager.lds.update_success"), 1u);
  // The LDS response is in, r1 is not: the server still initializes.
  EXPECT_EQ(calls, 0);
  ASSERT_EQ(rds_callbacks_.size(), 1u);
  rds_callbacks_[0]->onConfigUpdateFailed(config::UpdateFailureReason::FetchTimedOut,
                                          absl::DeadlineExceededError("timed out"));
  EXPECT_EQ(calls, 1);
}

TEST_F(ListenerManagerTest, AfterInitializationANewListenerWarmsUntilItsTableArrives) {
  int calls = 0;
  manager_.setInitialLoadCallback([&] { ++calls; });
  ASSERT_TRUE(manager_.onConfigUpdate(resources({listenerYaml("b", 1002, "backend")}), "v1").ok());
  ASSERT_EQ(calls, 1);
  ASSERT_TRUE(manager_.onConfigUpdate(resources({listenerYaml("b", 1002, "backend"), rdsListenerYaml("a", 1001)}),
                                      "v2")
                  .ok());
  EXPECT_EQ(names(), std::vector<std::string>{"b"});
  EXPECT_EQ(gauge("listener_manager.total_listeners_active"), 1u);
  EXPECT_EQ(gauge("listener_manager.total_listeners_warming"), 1u);
  ASSERT_EQ(rds_callbacks_.size(), 1u);
  rds_callbacks_[0]->onConfigUpdateFailed(config::UpdateFailureReason::FetchTimedOut,
                                          absl::DeadlineExceededError("timed out"));
  EXPECT_EQ(names(), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(gauge("listener_manager.total_listeners_warming"), 0u);
  EXPECT_EQ(gauge("listener_manager.total_listeners_active"), 2u);
}

TEST_F(ListenerManagerTest, AListenerReplacedDuringInitializationNoLongerHoldsIt) {
  int calls = 0;
  manager_.setInitialLoadCallback([&] { ++calls; });
  ASSERT_TRUE(manager_.onConfigUpdate(resources({rdsListenerYaml("a", 1001, "r1")}), "v1").ok());
  ASSERT_EQ(calls, 0);
  // The new version waits for r2 only: r1 arriving changes nothing.
  ASSERT_TRUE(manager_.onConfigUpdate(resources({rdsListenerYaml("a", 1001, "r2")}), "v2").ok());
  EXPECT_EQ(counter("listener_manager.listener_modified"), 1u);
  EXPECT_EQ(gauge("listener_manager.total_listeners_active"), 1u);
  ASSERT_EQ(rds_callbacks_.size(), 2u);
  rds_callbacks_[0]->onConfigUpdateFailed(config::UpdateFailureReason::FetchTimedOut,
                                          absl::DeadlineExceededError("timed out"));
  EXPECT_EQ(calls, 0);
  rds_callbacks_[1]->onConfigUpdateFailed(config::UpdateFailureReason::FetchTimedOut,
                                          absl::DeadlineExceededError("timed out"));
  EXPECT_EQ(calls, 1);
}

TEST_F(ListenerManagerTest, AListenerRemovedDuringInitializationNoLongerHoldsIt) {
  int calls = 0;
  manager_.setInitialLoadCallback([&] { ++calls; });
  ASSERT_TRUE(manager_.onConfigUpdate(resources({rdsListenerYaml("a", 1001)}), "v1").ok());
  ASSERT_EQ(calls, 0);
  ASSERT_TRUE(manager_.onConfigUpdate(resources({}), "v2").ok());
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(names().empty());
  EXPECT_EQ(counter("listener_manager.listener_removed"), 1u);
  // Never started, so nothing drains.
  EXPECT_EQ(gauge("listener_manager.total_listeners_draining"), 0u);
}

}  // namespace
}  // namespace courier::server
