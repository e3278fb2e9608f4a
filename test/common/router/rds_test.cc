#include "source/common/router/rds.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "source/common/protobuf/yaml_loader.h"

namespace courier::router {
namespace {

using envoy::config::core::v3::ConfigSource;
using envoy::config::route::v3::RouteConfiguration;
using ::testing::HasSubstr;

class FakeSubscription : public config::Subscription {
 public:
  explicit FakeSubscription(std::vector<std::string>* started) : started_(started) {}
  void start(const absl::flat_hash_set<std::string>& names) override {
    started_->insert(started_->end(), names.begin(), names.end());
  }
  void updateResourceInterest(const absl::flat_hash_set<std::string>&) override {}

 private:
  std::vector<std::string>* started_;
};

std::vector<config::DecodedResource> table(const std::string& name, const std::string& match = "{prefix: \"/\"}") {
  auto config = std::make_unique<RouteConfiguration>();
  const std::string yaml = "{name: " + name +
                           ", virtual_hosts: [{name: all, domains: [\"*\"], routes: [{match: " + match +
                           ", route: {cluster: c}}]}]}";
  EXPECT_TRUE(protobuf::loadFromYamlString(yaml, *config).ok()) << yaml;
  std::vector<config::DecodedResource> out(1);
  out[0].name = config->name();
  out[0].version = "v";
  out[0].resource = std::move(config);
  return out;
}

ConfigSource path(const std::string& file) {
  ConfigSource source;
  source.mutable_path_config_source()->set_path(file);
  return source;
}

class RdsManagerTest : public ::testing::Test {
 protected:
  RdsManagerTest() {
    manager_.setSubscriptionFactory([this](const ConfigSource&, const std::string& field_path,
                                           const std::string& type_url, config::SubscriptionCallbacks& callbacks)
                                        -> absl::StatusOr<std::unique_ptr<config::Subscription>> {
      EXPECT_EQ(type_url, config::type_url::kRouteConfiguration);
      EXPECT_EQ(field_path, "hcm.rds.config_source");
      callbacks_.push_back(&callbacks);
      return std::make_unique<FakeSubscription>(&started_);
    });
  }
  uint64_t counter(const std::string& name) { return store_.counter(name).value(); }

  event::Dispatcher main_{"main"};
  stats::Store store_;
  // No workers: a published table is applied at once.
  RdsManager manager_{main_, {}, store_};
  std::vector<config::SubscriptionCallbacks*> callbacks_;
  std::vector<std::string> started_;
};

TEST_F(RdsManagerTest, ConnectionManagersNamingTheSameTableShareOneSubscription) {
  auto a = manager_.provider(path("/r"), "r1", "first", "hcm.rds");
  auto b = manager_.provider(path("/r"), "r1", "second", "hcm.rds");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(callbacks_.size(), 1u);
  EXPECT_EQ(started_, std::vector<std::string>{"r1"});
  // Another name, or the same name from another source, is another subscription.
  ASSERT_TRUE(manager_.provider(path("/r"), "r2", "first", "hcm.rds").ok());
  ASSERT_TRUE(manager_.provider(path("/other"), "r1", "first", "hcm.rds").ok());
  EXPECT_EQ(callbacks_.size(), 3u);
}

TEST_F(RdsManagerTest, UpdatesAreCountedUnderTheFirstStatPrefixAndBadTablesRefusedNamingTheField) {
  auto provider = manager_.provider(path("/r"), "r1", "ingress", "hcm.rds");
  ASSERT_TRUE(provider.ok());
  ASSERT_TRUE(callbacks_[0]->onConfigUpdate(table("r1"), "v1").ok());
  EXPECT_EQ(counter("http.ingress.rds.r1.update_attempt"), 1u);
  EXPECT_EQ(counter("http.ingress.rds.r1.update_success"), 1u);
  EXPECT_NE(store_.gauge("http.ingress.rds.r1.version").value(), 0u);

  auto bad = callbacks_[0]->onConfigUpdate(table("r1", "{safe_regex: {regex: \"(\"}}"), "v2");
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.message()),
              HasSubstr("route configuration \"r1\": resources[0].virtual_hosts[0].routes[0].match.safe_regex.regex"));
  auto renamed = callbacks_[0]->onConfigUpdate(table("other"), "v3");
  EXPECT_THAT(std::string(renamed.message()), HasSubstr("resources[0].name: expected \"r1\", got \"other\""));
  EXPECT_EQ(counter("http.ingress.rds.r1.update_rejected"), 2u);
  ASSERT_TRUE(callbacks_[0]->onConfigUpdate(std::vector<config::DecodedResource>{}, "v4").ok());
  EXPECT_EQ(counter("http.ingress.rds.r1.update_empty"), 1u);

  auto dumps = manager_.dumps();
  ASSERT_EQ(dumps.size(), 1u);
  EXPECT_EQ(dumps[0].name, "r1");
  EXPECT_EQ(dumps[0].version_info, "v1");
}

TEST_F(RdsManagerTest, AskingAgainReusesTheSubscriptionAndUnusedOnesAreSwept) {
  {
    auto first = manager_.provider(path("/r"), "r1", "p", "hcm.rds");
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE(callbacks_[0]->onConfigUpdate(table("r1"), "v1").ok());
  }
  // Nobody holds r1's provider; asking for it again reuses the subscription.
  auto again = manager_.provider(path("/r"), "r1", "p", "hcm.rds");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(callbacks_.size(), 1u);
  EXPECT_EQ(manager_.subscriptionCount(), 1u);
  again->reset();
  // Another name sweeps r1 away.
  ASSERT_TRUE(manager_.provider(path("/r"), "r2", "p", "hcm.rds").ok());
  EXPECT_EQ(manager_.subscriptionCount(), 1u);
  EXPECT_EQ(manager_.dumps().size(), 0u);
}

TEST_F(RdsManagerTest, DeltaRemovalIsIgnoredAndTheLastTableKeepsServing) {
  auto provider = manager_.provider(path("/r"), "r1", "ingress", "hcm.rds");
  ASSERT_TRUE(provider.ok());
  // A removal before any table is no answer: the listener keeps waiting.
  ASSERT_TRUE(callbacks_[0]->onConfigUpdate({}, std::vector<std::string>{"r1"}, "s0").ok());
  EXPECT_FALSE((*provider)->warm());
  ASSERT_TRUE(callbacks_[0]->onConfigUpdate(table("r1"), std::vector<std::string>{}, "s1").ok());
  EXPECT_TRUE((*provider)->warm());
  ASSERT_NE(manager_.dumps().size(), 0u);

  ASSERT_TRUE(callbacks_[0]->onConfigUpdate({}, std::vector<std::string>{"r1"}, "s2").ok());
  // As Envoy: logged and ignored, the response accepted, nothing counted empty.
  EXPECT_EQ(counter("http.ingress.rds.r1.update_attempt"), 3u);
  EXPECT_EQ(counter("http.ingress.rds.r1.update_success"), 3u);
  EXPECT_EQ(counter("http.ingress.rds.r1.update_empty"), 0u);
  auto dumps = manager_.dumps();
  ASSERT_EQ(dumps.size(), 1u);
  EXPECT_EQ(dumps[0].version_info, "s1");
}

TEST_F(RdsManagerTest, EmptyNameIsRefused) {
  auto p = manager_.provider(path("/r"), "", "p", "hcm.rds");
  EXPECT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("hcm.rds.route_config_name"));
}

}  // namespace
}  // namespace courier::router
