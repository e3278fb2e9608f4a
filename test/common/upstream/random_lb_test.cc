#include "source/common/upstream/random_lb.h"

#include "gtest/gtest.h"
#include "test/common/upstream/lb_test_util.h"

namespace courier::upstream {
namespace {

using namespace testing;

TEST(RandomLoadBalancerTest, EqualWeightsAreUniform) {
  const std::vector<uint32_t> weights(5, 1);
  auto cluster = makeCluster(weights);
  RandomLoadBalancer lb(*cluster, 42);
  auto counts = countPicks(lb, *cluster, 100000);
  EXPECT_LT(chiSquared(counts, weights), chiSquaredCritical001(weights.size() - 1));
}

TEST(RandomLoadBalancerTest, WeightsGiveProportionalPicks) {
  const std::vector<uint32_t> weights{1, 2, 3, 10};
  auto cluster = makeCluster(weights);
  RandomLoadBalancer lb(*cluster, 42);
  auto counts = countPicks(lb, *cluster, 160000);
  EXPECT_LT(chiSquared(counts, weights), chiSquaredCritical001(weights.size() - 1));
}

TEST(RandomLoadBalancerTest, EmptyClusterGivesNoHost) {
  auto cluster = makeCluster(0);
  RandomLoadBalancer lb(*cluster);
  EXPECT_EQ(lb.chooseHost(nullptr), nullptr);
}

}  // namespace
}  // namespace courier::upstream
