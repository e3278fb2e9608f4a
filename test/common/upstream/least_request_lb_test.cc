#include "source/common/upstream/least_request_lb.h"

#include <unordered_map>

#include "gtest/gtest.h"
#include "test/common/upstream/lb_test_util.h"

namespace courier::upstream {
namespace {

using namespace testing;

TEST(LeastRequestLoadBalancerTest, IdleEqualHostsAreUniform) {
  const std::vector<uint32_t> weights(4, 1);
  auto cluster = makeCluster(weights);
  LeastRequestLoadBalancer lb(*cluster, {}, 42);
  auto counts = countPicks(lb, *cluster, 100000);
  EXPECT_LT(chiSquared(counts, weights), chiSquaredCritical001(weights.size() - 1));
}

TEST(LeastRequestLoadBalancerTest, PrefersTheIdleHostUnderSkew) {
  auto cluster = makeCluster(4);
  for (int i = 0; i < 3; ++i) cluster->hosts[i]->active_requests = 10;
  LeastRequestLoadBalancer lb(*cluster, {}, 42);
  auto counts = countPicks(lb, *cluster, 100000);
  // Two choices: the idle host wins whenever it is drawn, 1 - (3/4)^2 = 7/16.
  EXPECT_NEAR(counts[3] / 100000.0, 7.0 / 16, 0.01);
}

TEST(LeastRequestLoadBalancerTest, MoreChoicesFindTheIdleHostMoreOften) {
  auto cluster = makeCluster(4);
  for (int i = 0; i < 3; ++i) cluster->hosts[i]->active_requests = 10;
  LeastRequestConfig config;
  config.choice_count = 5;
  LeastRequestLoadBalancer lb(*cluster, config, 42);
  auto counts = countPicks(lb, *cluster, 100000);
  EXPECT_NEAR(counts[3] / 100000.0, 1 - 243.0 / 1024, 0.01);  // 1 - (3/4)^5
}

TEST(LeastRequestLoadBalancerTest, IdleWeightedHostsFollowWeights) {
  const std::vector<uint32_t> weights{1, 2, 3, 4};
  auto cluster = makeCluster(weights);
  LeastRequestLoadBalancer lb(*cluster, {}, 42);
  auto counts = countPicks(lb, *cluster, 100000);
  EXPECT_LT(chiSquared(counts, weights), chiSquaredCritical001(weights.size() - 1));
}

TEST(LeastRequestLoadBalancerTest, WeightedFormulaDividesByActiveRequests) {
  // Equal-ish weights that differ so the weighted path runs: 2 and 3.
  auto cluster = makeCluster({3, 2});
  cluster->hosts[0]->active_requests = 9;  // effective 3 / 10 = 0.3 against 2 / 1 = 2
  LeastRequestLoadBalancer lb(*cluster, {}, 42);
  auto counts = countPicks(lb, *cluster, 23000);
  EXPECT_NEAR(counts[0] / 23000.0, 0.3 / 2.3, 0.01);
}

TEST(LeastRequestLoadBalancerTest, ZeroBiasIgnoresActiveRequests) {
  auto cluster = makeCluster({1, 3});
  cluster->hosts[1]->active_requests = 100;
  LeastRequestConfig config;
  config.active_request_bias = 0.0;
  LeastRequestLoadBalancer lb(*cluster, config, 42);
  auto counts = countPicks(lb, *cluster, 4000);
  EXPECT_EQ(counts[0], 1000u);
  EXPECT_EQ(counts[1], 3000u);
}

// The EDF queue at a size where it is several levels deep: with pure weights
// every host gets its share of many cycles, give or take a turn.
TEST(LeastRequestLoadBalancerTest, ManyWeightedHostsGetTheirShare) {
  std::vector<uint32_t> weights;
  uint64_t total = 0;
  for (uint32_t i = 0; i < 300; ++i) total += weights.emplace_back(1 + (i * 7) % 5);
  auto cluster = makeCluster(weights);
  LeastRequestConfig config;
  config.active_request_bias = 0.0;
  LeastRequestLoadBalancer lb(*cluster, config, 42);
  std::unordered_map<const Host*, uint64_t> counts;
  for (uint64_t i = 0; i < 10 * total; ++i) ++counts[lb.chooseHost(nullptr)];
  for (size_t i = 0; i < weights.size(); ++i) {
    EXPECT_NEAR(double(counts[cluster->hosts[i].get()]), 10.0 * weights[i], 1.0) << i;
  }
}

TEST(LeastRequestLoadBalancerTest, EmptyClusterGivesNoHost) {
  auto cluster = makeCluster(0);
  LeastRequestLoadBalancer lb(*cluster, {});
  EXPECT_EQ(lb.chooseHost(nullptr), nullptr);
}

}  // namespace
}  // namespace courier::upstream
