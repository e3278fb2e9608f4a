// Circuit breakers per routing priority and the retry budget, from config.
#include <memory>
#include <string>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "gtest/gtest.h"
#include "source/common/protobuf/yaml_loader.h"
#include "source/common/upstream/cluster_factory.h"

namespace courier::upstream {
namespace {

absl::StatusOr<ClusterConstSharedPtr> build(const std::string& thresholds, stats::Store& store) {
  envoy::config::cluster::v3::Cluster proto;
  auto s = protobuf::loadFromYamlString("{name: c, circuit_breakers: {thresholds: [" + thresholds + "]}}", proto);
  if (!s.ok()) return s;
  return createCluster(proto, "clusters[0]", store);
}

TEST(CircuitBreakersTest, EachRoutingPriorityHasItsOwnThresholdsAndCounts) {
  stats::Store store;
  auto c = build("{max_requests: 1, max_retries: 2}, {priority: HIGH, max_requests: 5}", store);
  ASSERT_TRUE(c.ok()) << c.status();
  const Cluster& cluster = **c;
  EXPECT_EQ(cluster.resourcesFor(false).requests.max(), 1u);
  EXPECT_EQ(cluster.resourcesFor(false).retries.max(), 2u);
  EXPECT_EQ(cluster.resourcesFor(true).requests.max(), 5u);
  EXPECT_EQ(cluster.resourcesFor(true).retries.max(), 3u);  // Envoy's default
  cluster.resourcesFor(false).requests.inc();
  EXPECT_FALSE(cluster.resourcesFor(false).requests.canCreate());
  EXPECT_TRUE(cluster.resourcesFor(true).requests.canCreate());
  cluster.resourcesFor(false).requests.dec();
}

TEST(CircuitBreakersTest, WithoutThresholdsBothPrioritiesUseEnvoysDefaults) {
  stats::Store store;
  auto c = build("", store);
  ASSERT_TRUE(c.ok()) << c.status();
  for (bool high : {false, true}) {
    EXPECT_EQ((*c)->resourcesFor(high).requests.max(), 1024u);
    EXPECT_EQ((*c)->resourcesFor(high).maxRetries(), 3u);
  }
}

TEST(RetryBudgetTest, BudgetIsAShareOfActiveAndPendingRequestsWithAFloor) {
  stats::Store store;
  auto c = build("{max_retries: 1, retry_budget: {budget_percent: {value: 25}, min_retry_concurrency: 2}}", store);
  ASSERT_TRUE(c.ok()) << c.status();
  ResourceManager& r = (*c)->resourcesFor(false);
  // No requests: the floor, not max_retries.
  EXPECT_EQ(r.maxRetries(), 2u);
  for (int i = 0; i < 30; ++i) r.requests.inc();
  for (int i = 0; i < 10; ++i) r.pending_requests.inc();
  EXPECT_EQ(r.maxRetries(), 10u);  // 25% of 40
  for (int i = 0; i < 9; ++i) r.retries.inc();
  EXPECT_TRUE(r.canRetry());
  r.retries.inc();
  EXPECT_FALSE(r.canRetry());
}

TEST(RetryBudgetTest, DefaultsAreTwentyPercentAndThree) {
  stats::Store store;
  auto c = build("{retry_budget: {}}", store);
  ASSERT_TRUE(c.ok()) << c.status();
  ResourceManager& r = (*c)->resourcesFor(false);
  ASSERT_TRUE(r.retry_budget.has_value());
  EXPECT_EQ(r.retry_budget->budget_percent, 20.0);
  EXPECT_EQ(r.retry_budget->min_retry_concurrency, 3u);
  for (int i = 0; i < 100; ++i) r.requests.inc();
  EXPECT_EQ(r.maxRetries(), 20u);
}

TEST(RetryBudgetTest, APercentOutOfRangeNamesTheField) {
  stats::Store store;
  auto c = build("{retry_budget: {budget_percent: {value: 150}}}", store);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("clusters[0].circuit_breakers.thresholds[0].retry_budget.budget_percent"),
            std::string::npos)
      << c.status();
}

}  // namespace
}  // namespace courier::upstream
