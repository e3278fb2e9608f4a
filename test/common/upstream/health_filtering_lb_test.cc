// Balancers skip unhealthy hosts, keep hashing consistent for keys whose host
// is healthy, and fall back to all hosts in Envoy's panic mode.
#include <memory>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "gtest/gtest.h"
#include "source/common/upstream/load_balancer.h"
#include "source/common/upstream/load_balancer_factory.h"
#include "test/common/upstream/lb_test_util.h"

namespace courier::upstream {
namespace {

using namespace testing;
using ProtoCluster = envoy::config::cluster::v3::Cluster;

LbPolicy policyOf(ProtoCluster::LbPolicy p) {
  switch (p) {
    case ProtoCluster::LEAST_REQUEST: return LbPolicy::LeastRequest;
    case ProtoCluster::RANDOM: return LbPolicy::Random;
    case ProtoCluster::RING_HASH: return LbPolicy::RingHash;
    case ProtoCluster::MAGLEV: return LbPolicy::Maglev;
    default: return LbPolicy::RoundRobin;
  }
}

class HealthFilteringTest : public ::testing::TestWithParam<ProtoCluster::LbPolicy> {
 protected:
  std::shared_ptr<Cluster> make(const std::vector<uint32_t>& weights) {
    auto cluster = makeCluster(weights);
    cluster->stats = &ClusterStats::of(store_, "c");
    ProtoCluster proto;
    proto.set_lb_policy(GetParam());
    cluster->lb_policy = policyOf(GetParam());
    auto factory = createLoadBalancerFactory(proto, "c", *cluster);
    EXPECT_TRUE(factory.ok()) << factory.status();
    cluster->lb_factory = *factory;
    return cluster;
  }
  stats::Store store_;
};

// Picks with a different hash each time, as many users would.
std::vector<uint64_t> spreadPicks(LoadBalancer& lb, const Cluster& cluster, uint64_t picks) {
  std::vector<uint64_t> counts(cluster.hosts.size(), 0);
  FastRandom random(7);
  for (uint64_t i = 0; i < picks; ++i) {
    FixedLoadBalancerContext context(random.next(), nullptr);
    const Host* h = lb.chooseHost(&context);
    EXPECT_NE(h, nullptr);
    if (h != nullptr) ++counts[indexOf(cluster, h)];
  }
  return counts;
}

TEST_P(HealthFilteringTest, UnhealthyHostIsNeverPickedAndTheRestShareItsLoad) {
  auto cluster = make({1, 1, 1, 1, 1});
  auto lb = createLoadBalancer(*cluster);
  setHealthFlag(*cluster, *cluster->hosts[2], health_flag::kFailedActiveHc, true);
  EXPECT_EQ(cluster->unhealthy_hosts.load(), 1u);
  auto counts = spreadPicks(*lb, *cluster, 40000);
  EXPECT_EQ(counts[2], 0u);
  // Chi-squared over the four healthy hosts, 3 degrees of freedom: 16.27 is p=0.001.
  std::vector<uint64_t> healthy = {counts[0], counts[1], counts[3], counts[4]};
  EXPECT_LT(chiSquared(healthy, {1, 1, 1, 1}), 16.27) << counts[0] << " " << counts[1] << " " << counts[3];
  EXPECT_EQ(cluster->stats->lb_healthy_panic.value(), 0u);
}

TEST_P(HealthFilteringTest, HostReturnsWhenItsFlagClears) {
  auto cluster = make({1, 1, 1});
  auto lb = createLoadBalancer(*cluster);
  setHealthFlag(*cluster, *cluster->hosts[0], health_flag::kFailedOutlierCheck, true);
  EXPECT_EQ(spreadPicks(*lb, *cluster, 3000)[0], 0u);
  setHealthFlag(*cluster, *cluster->hosts[0], health_flag::kFailedOutlierCheck, false);
  EXPECT_EQ(cluster->unhealthy_hosts.load(), 0u);
  EXPECT_GT(spreadPicks(*lb, *cluster, 3000)[0], 500u);
}

TEST_P(HealthFilteringTest, PanicModeUsesAllHostsAndCountsIt) {
  // 1 of 4 healthy: 25% < 50%, and 35% overprovisioned is short of 100%.
  auto cluster = make({1, 1, 1, 1});
  auto lb = createLoadBalancer(*cluster);
  for (int i : {0, 1, 2}) setHealthFlag(*cluster, *cluster->hosts[i], health_flag::kFailedActiveHc, true);
  auto counts = spreadPicks(*lb, *cluster, 8000);
  for (auto c : counts) EXPECT_GT(c, 1000u);
  EXPECT_EQ(cluster->stats->lb_healthy_panic.value(), 8000u);
}

TEST_P(HealthFilteringTest, JustAboveThePanicThresholdOnlyHealthyHostsServe) {
  // 2 of 4 healthy: 50% is not below the 50% threshold.
  auto cluster = make({1, 1, 1, 1});
  auto lb = createLoadBalancer(*cluster);
  for (int i : {0, 1}) setHealthFlag(*cluster, *cluster->hosts[i], health_flag::kFailedActiveHc, true);
  auto counts = spreadPicks(*lb, *cluster, 4000);
  EXPECT_EQ(counts[0] + counts[1], 0u);
  EXPECT_EQ(cluster->stats->lb_healthy_panic.value(), 0u);
}

TEST_P(HealthFilteringTest, ZeroPanicThresholdWithNoHealthyHostPicksNothing) {
  auto cluster = make({1, 1});
  cluster->healthy_panic_threshold = 0;
  auto lb = createLoadBalancer(*cluster);
  for (int i : {0, 1}) setHealthFlag(*cluster, *cluster->hosts[i], health_flag::kFailedActiveHc, true);
  FixedLoadBalancerContext context(42, nullptr);
  EXPECT_EQ(lb->chooseHost(&context), nullptr);
}

TEST_P(HealthFilteringTest, WeightsStillApplyAmongHealthyHosts) {
  auto cluster = make({1, 3, 1});
  auto lb = createLoadBalancer(*cluster);
  setHealthFlag(*cluster, *cluster->hosts[2], health_flag::kFailedEdsHealth, true);
  auto counts = spreadPicks(*lb, *cluster, 40000);
  EXPECT_EQ(counts[2], 0u);
  const double ratio = double(counts[1]) / double(counts[0]);
  EXPECT_GT(ratio, 2.5);
  EXPECT_LT(ratio, 3.5);
}

INSTANTIATE_TEST_SUITE_P(Policies, HealthFilteringTest,
                         ::testing::Values(ProtoCluster::ROUND_ROBIN, ProtoCluster::LEAST_REQUEST,
                                           ProtoCluster::RANDOM, ProtoCluster::RING_HASH, ProtoCluster::MAGLEV),
                         [](const auto& info) { return ProtoCluster::LbPolicy_Name(info.param); });

TEST(HealthFilteringHashTest, KeysOfHealthyHostsKeepTheirHost) {
  for (auto policy : {ProtoCluster::RING_HASH, ProtoCluster::MAGLEV}) {
    stats::Store store;
    auto cluster = makeCluster(10);
    cluster->stats = &ClusterStats::of(store, "c");
    ProtoCluster proto;
    proto.set_lb_policy(policy);
    cluster->lb_policy = policyOf(policy);
    cluster->lb_factory = *createLoadBalancerFactory(proto, "c", *cluster);
    auto lb = createLoadBalancer(*cluster);
    std::vector<const Host*> before;
    for (uint64_t key = 0; key < 2000; ++key) {
      FixedLoadBalancerContext context(key * 0x9e3779b97f4a7c15ULL, nullptr);
      before.push_back(lb->chooseHost(&context));
    }
    setHealthFlag(*cluster, *cluster->hosts[4], health_flag::kFailedActiveHc, true);
    for (uint64_t key = 0; key < 2000; ++key) {
      FixedLoadBalancerContext context(key * 0x9e3779b97f4a7c15ULL, nullptr);
      const Host* now = lb->chooseHost(&context);
      EXPECT_NE(now, cluster->hosts[4].get());
      if (before[key] != cluster->hosts[4].get()) {
        EXPECT_EQ(now, before[key]) << ProtoCluster::LbPolicy_Name(policy) << " key " << key;
      }
      // Still consistent per key.
      EXPECT_EQ(lb->chooseHost(&context), now);
    }
  }
}

}  // namespace
}  // namespace courier::upstream
