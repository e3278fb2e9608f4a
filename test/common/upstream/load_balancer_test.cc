#include "source/common/upstream/load_balancer.h"

#include "gtest/gtest.h"
#include "test/common/upstream/lb_test_util.h"

namespace courier::upstream {
namespace {

using testing::countPicks;
using testing::makeCluster;

TEST(RoundRobinLoadBalancerTest, EqualWeightsRotateExactly) {
  auto cluster = makeCluster(3);
  RoundRobinLoadBalancer lb(*cluster);
  EXPECT_EQ(countPicks(lb, *cluster, 300), (std::vector<uint64_t>{100, 100, 100}));
}

TEST(RoundRobinLoadBalancerTest, WeightsGiveExactProportions) {
  auto cluster = makeCluster({1, 2, 3});
  RoundRobinLoadBalancer lb(*cluster);
  EXPECT_EQ(countPicks(lb, *cluster, 600), (std::vector<uint64_t>{100, 200, 300}));
}

TEST(RoundRobinLoadBalancerTest, EmptyClusterGivesNoHost) {
  auto cluster = makeCluster(0);
  RoundRobinLoadBalancer lb(*cluster);
  EXPECT_EQ(lb.chooseHost(nullptr), nullptr);
}

TEST(LoadBalancerTest, ClusterWithoutFactoryIsRoundRobin) {
  auto cluster = makeCluster(2);
  auto lb = createLoadBalancer(*cluster);
  EXPECT_EQ(lb->chooseHost(nullptr), cluster->hosts[0].get());
  EXPECT_EQ(lb->chooseHost(nullptr), cluster->hosts[1].get());
}

// The active-request count rides in padding: a Host is no larger than its
// address, weight and hostname laid out without it.
TEST(HostTest, ActiveRequestCountAddsNoBytesAndHealthAddsThirtyTwo) {
  struct WithoutCount {
    network::Address address;
    uint32_t weight;
    std::string hostname;
  };
  // The health flag word (4, padded to 8) and the outlier counters (24).
  EXPECT_EQ(sizeof(Host), sizeof(WithoutCount) + 32);
}

TEST(FastRandomTest, BelowStaysInRange) {
  FastRandom random(7);
  for (int i = 0; i < 10000; ++i) EXPECT_LT(random.below(13), 13u);
}

}  // namespace
}  // namespace courier::upstream
