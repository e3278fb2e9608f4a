// Priority levels, localities and Envoy's load-distribution rules: the exact
// priority load arithmetic, pick distributions over real clusters built from
// config (chi-squared against the expected shares), panic per level and in
// total, locality weighting, and the config errors.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "gtest/gtest.h"
#include "source/common/protobuf/yaml_loader.h"
#include "source/common/upstream/cluster_factory.h"
#include "source/common/upstream/eds.h"
#include "source/common/upstream/load_balancer.h"
#include "source/common/upstream/priority_lb.h"
#include "source/common/upstream/priority_set.h"
#include "test/common/upstream/lb_test_util.h"

namespace courier::upstream {
namespace {

using testing::chiSquared;
using testing::chiSquaredCritical001;

PriorityLoad load(const std::vector<LevelHealth>& levels, uint32_t factor = 140, double threshold = 50) {
  return computePriorityLoad(levels, factor, threshold);
}

TEST(PriorityLoadTest, AHealthyFirstLevelTakesEverything) {
  auto l = load({{10, 10}, {10, 10}});
  EXPECT_EQ(l.load, (std::vector<uint32_t>{100, 0}));
  EXPECT_EQ(l.panic, (std::vector<bool>{false, false}));
}

TEST(PriorityLoadTest, ALevelSpillsWhatItsOverprovisionedHealthLacks) {
  // Envoy's documented table: 72% healthy still holds all, 71% spills 1%,
  // 50% keeps 70, 25% keeps 35, none keeps 0.
  EXPECT_EQ(load({{100, 72}, {10, 10}}).load, (std::vector<uint32_t>{100, 0}));
  EXPECT_EQ(load({{100, 71}, {10, 10}}).load, (std::vector<uint32_t>{99, 1}));
  EXPECT_EQ(load({{10, 5}, {10, 10}}).load, (std::vector<uint32_t>{70, 30}));
  EXPECT_EQ(load({{4, 1}, {10, 10}}).load, (std::vector<uint32_t>{35, 65}));
  EXPECT_EQ(load({{10, 0}, {10, 10}}).load, (std::vector<uint32_t>{0, 100}));
}

TEST(PriorityLoadTest, SpillCascadesThroughThreeLevels) {
  // 28 + 42 from the first two, the third takes the 30 left.
  EXPECT_EQ(load({{10, 2}, {10, 3}, {10, 10}}).load, (std::vector<uint32_t>{28, 42, 30}));
}

TEST(PriorityLoadTest, TheOverprovisioningFactorMovesTheSpillPoint) {
  EXPECT_EQ(load({{10, 7}, {10, 10}}, 100).load, (std::vector<uint32_t>{70, 30}));
  EXPECT_EQ(load({{10, 7}, {10, 10}}, 140).load, (std::vector<uint32_t>{98, 2}));
  EXPECT_EQ(load({{10, 7}, {10, 10}}, 200).load, (std::vector<uint32_t>{100, 0}));
}

TEST(PriorityLoadTest, NoPanicWhileTheLevelsTogetherAreFullyAvailable) {
  // The first level is 40% healthy, under the threshold, but the second
  // makes up the rest: no panic anywhere.
  auto l = load({{10, 4}, {10, 10}});
  EXPECT_EQ(l.load, (std::vector<uint32_t>{56, 44}));
  EXPECT_EQ(l.panic, (std::vector<bool>{false, false}));
}

TEST(PriorityLoadTest, ALevelUnderTheThresholdPanicsWhenTotalAvailabilityIsShort) {
  // 14 + 70 = 84 available: normalised 16 (+1 rounding) and 83.
  auto l = load({{10, 1}, {10, 5}});
  EXPECT_EQ(l.load, (std::vector<uint32_t>{17, 83}));
  EXPECT_EQ(l.panic, (std::vector<bool>{true, false}));
}

TEST(PriorityLoadTest, WhenEveryLevelPanicsLoadFollowsHostCounts) {
  auto l = load({{10, 1}, {30, 1}});
  EXPECT_EQ(l.load, (std::vector<uint32_t>{25, 75}));
  EXPECT_EQ(l.panic, (std::vector<bool>{true, true}));
}

TEST(PriorityLoadTest, ZeroThresholdWithNothingAvailableLeavesLoadOnLevelZeroWithoutPanic) {
  auto l = load({{10, 0}, {10, 0}}, 140, 0);
  EXPECT_EQ(l.load, (std::vector<uint32_t>{100, 0}));
  EXPECT_EQ(l.panic, (std::vector<bool>{false, false}));
}

TEST(PriorityLoadTest, AnEmptyLevelTakesNothing) {
  EXPECT_EQ(load({{0, 0}, {10, 10}}).load, (std::vector<uint32_t>{0, 100}));
}

TEST(PriorityLoadTest, ChoosePriorityMapsDrawsOntoTheShares) {
  const std::vector<uint32_t> shares = {70, 30, 0};
  EXPECT_EQ(choosePriority(shares, 0), 0u);
  EXPECT_EQ(choosePriority(shares, 69), 0u);
  EXPECT_EQ(choosePriority(shares, 70), 1u);
  EXPECT_EQ(choosePriority(shares, 99), 1u);
  EXPECT_EQ(choosePriority(shares, 100), 0u);
}

TEST(PriorityLoadTest, DegradedHostsTakeWhatHealthyOnesCannot) {
  // 2 healthy and 2 degraded of 4 at 140: 70% each available; healthy hosts
  // take their 70, degraded ones the 30 left.
  auto l = load({{4, 2, 2}});
  EXPECT_EQ(l.load, (std::vector<uint32_t>{70}));
  EXPECT_EQ(l.degraded, (std::vector<uint32_t>{30}));
  EXPECT_EQ(l.panic, (std::vector<bool>{false}));
  // Healthy hosts of a lower level come before degraded ones of a higher.
  l = load({{4, 2, 2}, {4, 4, 0}});
  EXPECT_EQ(l.load, (std::vector<uint32_t>{70, 30}));
  EXPECT_EQ(l.degraded, (std::vector<uint32_t>{0, 0}));
}

TEST(PriorityLoadTest, EnvoysThreeLevelHealthyAndDegradedExample) {
  // Envoy's comment: 10/20/10% healthy and 20/10/0% degraded availability
  // give 16/28/14% healthy load (the first takes the rounding) and 28/14/0%
  // degraded load. Factor 100, ten hosts a level.
  auto l = load({{10, 1, 2}, {10, 2, 1}, {10, 1, 0}}, 100, 0);
  EXPECT_EQ(l.load, (std::vector<uint32_t>{16, 28, 14}));
  EXPECT_EQ(l.degraded, (std::vector<uint32_t>{28, 14, 0}));
}

TEST(PriorityLoadTest, AllDegradedTakesEverythingWithoutPanic) {
  auto l = load({{4, 0, 4}});
  EXPECT_EQ(l.load, (std::vector<uint32_t>{0}));
  EXPECT_EQ(l.degraded, (std::vector<uint32_t>{100}));
  EXPECT_EQ(l.panic, (std::vector<bool>{false}));
  // Rounding leftovers go to the first degraded level when none is healthy.
  l = load({{3, 0, 1}, {3, 0, 1}, {3, 0, 1}}, 100, 0);
  EXPECT_EQ(l.load, (std::vector<uint32_t>{0, 0, 0}));
  EXPECT_EQ(l.degraded, (std::vector<uint32_t>{34, 33, 33}));
}

TEST(PriorityLoadTest, DegradedHostsCountTowardThePanicThreshold) {
  // 1 healthy + 4 degraded of 10: 50% usable, no panic; 14 + 56 = 70
  // available: 20% healthy, 80% degraded.
  auto l = load({{10, 1, 4}});
  EXPECT_EQ(l.load, (std::vector<uint32_t>{20}));
  EXPECT_EQ(l.degraded, (std::vector<uint32_t>{80}));
  EXPECT_EQ(l.panic, (std::vector<bool>{false}));
  // 1 healthy + 2 degraded of 10: 30% usable, panic over every host.
  l = load({{10, 1, 2}});
  EXPECT_EQ(l.load, (std::vector<uint32_t>{100}));
  EXPECT_EQ(l.degraded, (std::vector<uint32_t>{0}));
  EXPECT_EQ(l.panic, (std::vector<bool>{true}));
}

TEST(PriorityLoadTest, ChoosePriorityGoesToDegradedHostsAfterEveryHealthyShare) {
  // At factor 100: 50 + 50 available in P0, 25 in P1: healthy 50 and 25,
  // P0's degraded hosts the 25 left.
  PriorityLoad l = load({{4, 2, 2}, {4, 1, 0}}, 100);
  ASSERT_EQ(l.load, (std::vector<uint32_t>{50, 25}));
  ASSERT_EQ(l.degraded, (std::vector<uint32_t>{25, 0}));
  EXPECT_EQ(choosePriority(l, 49).priority, 0u);
  EXPECT_FALSE(choosePriority(l, 49).degraded);
  EXPECT_EQ(choosePriority(l, 50).priority, 1u);
  EXPECT_FALSE(choosePriority(l, 74).degraded);
  EXPECT_EQ(choosePriority(l, 75).priority, 0u);
  EXPECT_TRUE(choosePriority(l, 75).degraded);
  EXPECT_TRUE(choosePriority(l, 99).degraded);
}

TEST(PriorityLoadTest, SingleLevelShareAgreesWithTheGeneralRule) {
  for (uint32_t factor : {100u, 140u, 200u}) {
    for (double threshold : {0.0, 50.0}) {
      for (uint32_t hosts = 1; hosts <= 12; ++hosts) {
        for (uint32_t healthy = 0; healthy <= hosts; ++healthy) {
          for (uint32_t degraded = 0; healthy + degraded <= hosts; ++degraded) {
            const LevelHealth level{hosts, healthy, degraded};
            const PriorityLoad general = computePriorityLoad({level}, factor, threshold);
            const LevelShare share = singleLevelShare(level, factor, threshold);
            const std::string where = absl::StrCat(hosts, "/", healthy, "/", degraded, " at ", factor, ", ", threshold);
            EXPECT_EQ(share.panic, bool(general.panic[0])) << where;
            // The plain balancer's shortcut test says the same.
            Cluster c;
            c.overprovisioning_factor = factor;
            c.healthy_panic_threshold = threshold;
            EXPECT_EQ(inHealthyPanic(c, hosts, hosts - healthy, degraded), share.panic) << where;
            if (!share.panic) {
              EXPECT_EQ(share.healthy_load, general.load[0]) << where;
              EXPECT_EQ(100 - share.healthy_load, general.degraded[0]) << where;
            }
          }
        }
      }
    }
  }
}

TEST(LocalityWeightTest, MatchesEnvoysDocumentedTable) {
  // Locality X (weight 1) against a healthy Y (weight 2): X's share as its
  // healthy endpoints drop (Envoy's table, rounded to whole percents).
  const std::vector<std::pair<uint32_t, double>> table = {{100, 33}, {70, 33}, {69, 32}, {50, 26}, {25, 15}, {0, 0}};
  for (auto [healthy, share] : table) {
    const double x = effectiveLocalityWeight(1, 100, healthy, 140);
    const double y = effectiveLocalityWeight(2, 100, 100, 140);
    EXPECT_NEAR(100 * x / (x + y), share, 1.0) << healthy << "% healthy";
  }
}

// --- Clusters built from config -------------------------------------------

struct Level {
  uint32_t priority;
  std::vector<uint32_t> weights;  // one host per weight
  std::string zone;
  int locality_weight = 0;  // 0: none given
};

class PriorityClusterTest : public ::testing::Test {
 protected:
  absl::StatusOr<ClusterConstSharedPtr> build(const std::vector<Level>& levels, const std::string& extra = "",
                                              const std::string& policy = "") {
    std::string endpoints;
    int host = 1;
    for (const auto& l : levels) {
      std::string lbs;
      for (uint32_t w : l.weights) {
        lbs += absl::StrCat(lbs.empty() ? "" : ", ", "{endpoint: {address: {socket_address: {address: 10.0.0.", host++,
                            ", port_value: 80}}}, load_balancing_weight: ", w, "}");
      }
      endpoints += absl::StrCat(endpoints.empty() ? "" : ", ", "{priority: ", l.priority, ", locality: {zone: '",
                                l.zone, "'}, ",
                                l.locality_weight > 0 ? absl::StrCat("load_balancing_weight: ", l.locality_weight, ", ")
                                                      : "",
                                "lb_endpoints: [", lbs, "]}");
    }
    const std::string yaml = absl::StrCat("{name: c, type: STATIC, ", policy.empty() ? "" : "lb_policy: " + policy + ", ",
                                          "load_assignment: {cluster_name: c, endpoints: [", endpoints, "]", extra,
                                          "}", extra_cluster_, "}");
    envoy::config::cluster::v3::Cluster proto;
    auto s = protobuf::loadFromYamlString(yaml, proto);
    if (!s.ok()) return s;
    return createCluster(proto, "clusters[0]", store_);
  }
  ClusterConstSharedPtr mustBuild(const std::vector<Level>& levels, const std::string& extra = "",
                                  const std::string& policy = "") {
    auto c = build(levels, extra, policy);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : nullptr;
  }
  static void setUnhealthy(const Cluster& c, std::vector<size_t> hosts) {
    for (size_t i : hosts) setHealthFlag(c, *c.hosts[i], health_flag::kFailedActiveHc, true);
  }
  static void setDegraded(const Cluster& c, std::vector<size_t> hosts) {
    for (size_t i : hosts) setHealthFlag(c, *c.hosts[i], health_flag::kDegradedEdsHealth, true);
  }
  // Picks per host index.
  static std::vector<uint64_t> picks(const Cluster& c, LoadBalancer& lb, uint64_t n) {
    std::vector<uint64_t> counts(c.hosts.size(), 0);
    for (uint64_t i = 0; i < n; ++i) {
      const Host* h = lb.chooseHost(nullptr);
      EXPECT_NE(h, nullptr);
      if (h != nullptr) ++counts[testing::indexOf(c, h)];
    }
    return counts;
  }
  static uint64_t sum(const std::vector<uint64_t>& counts, size_t from, size_t to) {
    uint64_t s = 0;
    for (size_t i = from; i < to; ++i) s += counts[i];
    return s;
  }

  stats::Store store_;
  std::string extra_cluster_;
};

TEST_F(PriorityClusterTest, HostsKeepPriorityAndLocalityAndOnlyMultiLevelClustersGetALayout) {
  auto one = mustBuild({{0, {1, 1}, "a"}});
  EXPECT_EQ(one->layout, nullptr);  // the plain fast path
  auto two = mustBuild({{0, {1, 1}, "a"}, {1, {1}, "b"}, {1, {1}, "a"}});
  ASSERT_NE(two->layout, nullptr);
  ASSERT_EQ(two->layout->levels.size(), 2u);
  EXPECT_EQ(two->layout->levels[0].all->hosts.size(), 2u);
  EXPECT_EQ(two->layout->levels[1].all->hosts.size(), 2u);
  ASSERT_EQ(two->localities.size(), 2u);  // "a" is interned once
  EXPECT_EQ(two->hosts[2]->priority, 1u);
  EXPECT_EQ(two->localities[two->hosts[2]->locality].zone, "b");
  EXPECT_EQ(two->hosts[3]->locality, two->hosts[0]->locality);
}

TEST_F(PriorityClusterTest, AllHealthyTrafficStaysOnPriorityZero) {
  auto c = mustBuild({{0, {1, 1}, "a"}, {1, {1, 1}, "a"}});
  auto lb = createLoadBalancer(*c);
  auto counts = picks(*c, *lb, 10000);
  EXPECT_EQ(sum(counts, 2, 4), 0u);
  EXPECT_LT(chiSquared({counts[0], counts[1]}, {1, 1}), chiSquaredCritical001(1));
}

class PriorityPolicyTest : public PriorityClusterTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(PriorityPolicyTest, ThreeLevelsHealthyDegradedAndSpillShareByEnvoysRule) {
  // P0 half healthy (70%), P1 a quarter healthy (35%, gets the 30 left), P2
  // healthy but not needed.
  auto c = mustBuild({{0, {1, 1, 1, 1}, "a"}, {1, {1, 1, 1, 1}, "a"}, {2, {1, 1, 1, 1}, "a"}}, "", GetParam());
  setUnhealthy(*c, {0, 1, 4, 5, 6});
  auto lb = createLoadBalancer(*c);
  const uint64_t n = 100000;
  auto counts = picks(*c, *lb, n);
  for (size_t i : {0, 1, 4, 5, 6}) EXPECT_EQ(counts[i], 0u) << "unhealthy host " << i;
  EXPECT_EQ(sum(counts, 8, 12), 0u);
  EXPECT_LT(chiSquared({sum(counts, 0, 4), sum(counts, 4, 8)}, {70, 30}), chiSquaredCritical001(1))
      << sum(counts, 0, 4) << " / " << sum(counts, 4, 8);
  EXPECT_EQ(c->stats->lb_healthy_panic.value(), 0u);
}

TEST_P(PriorityPolicyTest, PerLevelPanicSpreadsOverTheWholePanickingLevelOnly) {
  // P0 1/10 healthy (panics, 17%), P1 5/10 healthy (83%, healthy hosts only).
  auto c = mustBuild({{0, std::vector<uint32_t>(10, 1), "a"}, {1, std::vector<uint32_t>(10, 1), "a"}}, "",
                     GetParam());
  setUnhealthy(*c, {1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 18, 19});
  auto lb = createLoadBalancer(*c);
  const uint64_t n = 100000;
  auto counts = picks(*c, *lb, n);
  EXPECT_LT(chiSquared({sum(counts, 0, 10), sum(counts, 10, 20)}, {17, 83}), chiSquaredCritical001(1));
  for (size_t i = 0; i < 10; ++i) EXPECT_GT(counts[i], 0u) << "panicking level uses every host, " << i;
  EXPECT_EQ(sum(counts, 15, 20), 0u);
  EXPECT_EQ(c->stats->lb_healthy_panic.value(), sum(counts, 0, 10));
}

TEST_P(PriorityPolicyTest, WhenEveryLevelPanicsHostCountsShareTheLoad) {
  // P0 1/4 and P1 1/12 healthy: both panic; load 25/75 by host count.
  auto c = mustBuild({{0, std::vector<uint32_t>(4, 1), "a"}, {1, std::vector<uint32_t>(12, 1), "a"}}, "", GetParam());
  setUnhealthy(*c, {1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
  auto lb = createLoadBalancer(*c);
  auto counts = picks(*c, *lb, 100000);
  EXPECT_LT(chiSquared({sum(counts, 0, 4), sum(counts, 4, 16)}, {25, 75}), chiSquaredCritical001(1));
  EXPECT_GT(counts[15], 0u);  // unhealthy hosts serve in panic
  EXPECT_EQ(c->stats->lb_healthy_panic.value(), 100000u);
}

TEST_P(PriorityPolicyTest, DegradedHostsOfOneLevelTakeTheThirtyPercentHealthyOnesCannot) {
  // One level, no layout: the plain balancer's slow path. 2 healthy and 2
  // degraded of 4 at 140: 70% healthy, 30% degraded.
  auto c = mustBuild({{0, {1, 1, 1, 1}, "a"}}, "", GetParam());
  ASSERT_EQ(c->layout, nullptr);
  setDegraded(*c, {2, 3});
  EXPECT_EQ(c->unhealthy_hosts.load(), 2u);
  EXPECT_EQ(c->degraded_hosts.load(), 2u);
  EXPECT_EQ(c->stats->membership_healthy.value(), 2u);
  EXPECT_EQ(c->stats->membership_degraded.value(), 2u);
  auto lb = createLoadBalancer(*c);
  const uint64_t n = 100000;
  auto counts = picks(*c, *lb, n);
  EXPECT_LT(chiSquared({sum(counts, 0, 2), sum(counts, 2, 4)}, {70, 30}), chiSquaredCritical001(1))
      << sum(counts, 0, 2) << " / " << sum(counts, 2, 4);
  EXPECT_GT(counts[2], 0u);
  EXPECT_GT(counts[3], 0u);
  EXPECT_EQ(c->stats->lb_healthy_panic.value(), 0u);
}

TEST_P(PriorityPolicyTest, DegradedHostsOfALevelTakeOnlyWhatHealthyLevelsLeave) {
  // P0 2 healthy + 2 degraded (70% healthy), P1 one of two healthy (70%):
  // normalised 100, healthy P0 70 and P1 30; nothing left for the degraded.
  // With P1 fully down, P0's degraded hosts take the 30.
  auto c = mustBuild({{0, {1, 1, 1, 1}, "a"}, {1, {1, 1}, "a"}}, "", GetParam());
  setDegraded(*c, {2, 3});
  setUnhealthy(*c, {5});
  auto lb = createLoadBalancer(*c);
  auto counts = picks(*c, *lb, 50000);
  EXPECT_EQ(counts[2] + counts[3] + counts[5], 0u);
  EXPECT_LT(chiSquared({sum(counts, 0, 2), counts[4]}, {70, 30}), chiSquaredCritical001(1));
  setUnhealthy(*c, {4});
  counts = picks(*c, *lb, 50000);
  EXPECT_EQ(sum(counts, 4, 6), 0u);
  EXPECT_LT(chiSquared({sum(counts, 0, 2), sum(counts, 2, 4)}, {70, 30}), chiSquaredCritical001(1));
}

TEST_P(PriorityPolicyTest, AllDegradedServesEveryHostWithoutPanic) {
  auto c = mustBuild({{0, {1, 1, 1, 1}, "a"}}, "", GetParam());
  setDegraded(*c, {0, 1, 2, 3});
  auto lb = createLoadBalancer(*c);
  auto counts = picks(*c, *lb, 40000);
  for (size_t i = 0; i < 4; ++i) EXPECT_GT(counts[i], 0u) << i;
  EXPECT_EQ(c->stats->lb_healthy_panic.value(), 0u);
}

TEST_P(PriorityPolicyTest, DegradedAndPanic) {
  // 1 healthy + 2 degraded + 7 unhealthy of 10: 30% usable, below 50: every
  // host serves, counted as panic. With 4 degraded (50% usable) there is no
  // panic: 20% healthy, 80% degraded, nothing to the unhealthy.
  auto c = mustBuild({{0, std::vector<uint32_t>(10, 1), "a"}}, "", GetParam());
  setDegraded(*c, {1, 2});
  setUnhealthy(*c, {3, 4, 5, 6, 7, 8, 9});
  auto lb = createLoadBalancer(*c);
  const uint64_t n = 50000;
  auto counts = picks(*c, *lb, n);
  EXPECT_GT(sum(counts, 3, 10), n / 2);
  EXPECT_EQ(c->stats->lb_healthy_panic.value(), n);
  for (size_t i : {3, 4}) setHealthFlag(*c, *c->hosts[i], health_flag::kFailedActiveHc, false);
  setDegraded(*c, {3, 4});
  counts = picks(*c, *lb, n);
  EXPECT_EQ(c->stats->lb_healthy_panic.value(), n);
  EXPECT_EQ(sum(counts, 5, 10), 0u);
  EXPECT_LT(chiSquared({counts[0], sum(counts, 1, 5)}, {20, 80}), chiSquaredCritical001(1))
      << counts[0] << " / " << sum(counts, 1, 5);
}

INSTANTIATE_TEST_SUITE_P(Policies, PriorityPolicyTest,
                         ::testing::Values("ROUND_ROBIN", "RANDOM", "LEAST_REQUEST", "RING_HASH", "MAGLEV"));

TEST_F(PriorityClusterTest, WeightsApplyInsideTheChosenLevel) {
  auto c = mustBuild({{0, {1, 3}, "a"}, {1, {1, 1}, "a"}}, "", "RANDOM");
  auto lb = createLoadBalancer(*c);
  auto counts = picks(*c, *lb, 40000);
  EXPECT_EQ(sum(counts, 2, 4), 0u);
  EXPECT_LT(chiSquared({counts[0], counts[1]}, {1, 3}), chiSquaredCritical001(1));
}

TEST_F(PriorityClusterTest, HealthChangesMoveTheLoadBackAndForth) {
  auto c = mustBuild({{0, {1, 1}, "a"}, {1, {1, 1}, "a"}});
  auto lb = createLoadBalancer(*c);
  setUnhealthy(*c, {0, 1});
  auto down = picks(*c, *lb, 1000);
  EXPECT_EQ(sum(down, 0, 2), 0u);
  for (size_t i : {0, 1}) setHealthFlag(*c, *c->hosts[i], health_flag::kFailedActiveHc, false);
  auto up = picks(*c, *lb, 1000);
  EXPECT_EQ(sum(up, 2, 4), 0u);
}

TEST_F(PriorityClusterTest, TheOverprovisioningFactorFromThePolicyMovesTheSpill) {
  // 7 of 10 healthy: spills 2% at the default 140, 30% at 100, nothing at 200.
  const std::vector<Level> levels = {{0, std::vector<uint32_t>(10, 1), "a"}, {1, {1}, "a"}};
  for (auto [factor, share] : std::vector<std::pair<int, uint32_t>>{{100, 30}, {140, 2}, {200, 0}}) {
    auto c = mustBuild(levels, absl::StrCat(", policy: {overprovisioning_factor: ", factor, "}"), "RANDOM");
    EXPECT_EQ(c->overprovisioning_factor, uint32_t(factor));
    setUnhealthy(*c, {0, 1, 2});
    PriorityLoadBalancer lb(*c);
    auto counts = picks(*c, lb, 50000);
    EXPECT_EQ(lb.priorityLoad().load, (std::vector<uint32_t>{100 - share, share}));
    if (share == 0) {
      EXPECT_EQ(counts[10], 0u);
    } else {
      EXPECT_LT(chiSquared({sum(counts, 0, 10), counts[10]}, {100 - share, share}), chiSquaredCritical001(1));
    }
  }
}

TEST_F(PriorityClusterTest, SinglePriorityPanicIsEnvoysPlainHealthyShare) {
  // 2 of 5 healthy: 40% < 50% (and 56% overprovisioned, short of 100): panic.
  auto c = mustBuild({{0, {1, 1, 1, 1, 1}, "a"}});
  setUnhealthy(*c, {0, 1, 2});
  auto lb = createLoadBalancer(*c);
  auto counts = picks(*c, *lb, 5000);
  EXPECT_GT(counts[0], 0u);
  EXPECT_EQ(c->stats->lb_healthy_panic.value(), 5000u);
}

TEST_F(PriorityClusterTest, LocalitiesShareByWeightTimesAvailability) {
  extra_cluster_ = ", common_lb_config: {locality_weighted_lb_config: {}}";
  auto c = mustBuild({{0, {1, 1}, "a", 1}, {0, {1, 1}, "b", 2}, {0, {1, 1}, "c", 3}}, "", "ROUND_ROBIN");
  ASSERT_NE(c->layout, nullptr);
  auto lb = createLoadBalancer(*c);
  auto counts = picks(*c, *lb, 60000);
  std::vector<uint64_t> by_locality = {sum(counts, 0, 2), sum(counts, 2, 4), sum(counts, 4, 6)};
  EXPECT_LT(chiSquared(by_locality, {1, 2, 3}), chiSquaredCritical001(2));
  // Half of "c" down: its availability is 70%, weight 3 * 0.7 = 2.1.
  setUnhealthy(*c, {5});
  counts = picks(*c, *lb, 62000);
  EXPECT_EQ(counts[5], 0u);
  by_locality = {sum(counts, 0, 2), sum(counts, 2, 4), sum(counts, 4, 6)};
  EXPECT_LT(chiSquared(by_locality, {10, 20, 21}), chiSquaredCritical001(2));
}

TEST_F(PriorityClusterTest, ALocalityWithoutWeightGetsNothingUnderLocalityWeighting) {
  extra_cluster_ = ", common_lb_config: {locality_weighted_lb_config: {}}";
  auto c = mustBuild({{0, {1}, "a", 1}, {0, {1}, "b", 0}});
  auto lb = createLoadBalancer(*c);
  auto counts = picks(*c, *lb, 2000);
  EXPECT_EQ(counts[1], 0u);
}

TEST_F(PriorityClusterTest, LocalityWeightsAreIgnoredWithoutLocalityWeighting) {
  auto c = mustBuild({{0, {1}, "a", 1}, {0, {1}, "b", 9}}, "", "RANDOM");
  // Only the views zone routing would use, which the plain balancer ignores.
  ASSERT_NE(c->layout, nullptr);
  EXPECT_TRUE(c->layout->zone_only);
  auto lb = createLoadBalancer(*c);
  auto counts = picks(*c, *lb, 20000);
  EXPECT_LT(chiSquared(counts, {1, 1}), chiSquaredCritical001(1));
}

TEST_F(PriorityClusterTest, LocalitiesWithinLevelsOfPriority) {
  // P0: locality a (weight 1, fully down) and b (weight 1, healthy); P0 is
  // 50% healthy, so 70% of picks stay there, all in b; P1 takes 30%.
  extra_cluster_ = ", common_lb_config: {locality_weighted_lb_config: {}}";
  auto c = mustBuild({{0, {1, 1}, "a", 1}, {0, {1, 1}, "b", 1}, {1, {1, 1}, "a", 1}}, "", "RANDOM");
  setUnhealthy(*c, {0, 1});
  auto lb = createLoadBalancer(*c);
  auto counts = picks(*c, *lb, 50000);
  EXPECT_EQ(sum(counts, 0, 2), 0u);
  EXPECT_LT(chiSquared({sum(counts, 2, 4), sum(counts, 4, 6)}, {70, 30}), chiSquaredCritical001(1));
}

TEST_F(PriorityClusterTest, BadConfigNamesTheField) {
  auto c = build({{0, {1}, "a"}}, ", policy: {overprovisioning_factor: 0}");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("clusters[0].load_assignment.policy.overprovisioning_factor"),
            std::string::npos)
      << c.status();
  envoy::config::cluster::v3::Cluster proto;
  ASSERT_TRUE(protobuf::loadFromYamlString(
                  "{name: c, load_assignment: {endpoints: [{load_balancing_weight: 0, lb_endpoints: []}]}}", proto)
                  .ok());
  c = createCluster(proto, "clusters[0]", store_);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("clusters[0].load_assignment.endpoints[0].load_balancing_weight"),
            std::string::npos)
      << c.status();
  c = build({{200, {1}, "a"}});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("clusters[0].load_assignment.endpoints[0].priority"), std::string::npos)
      << c.status();
}

// --- EDS ---------------------------------------------------------------------

envoy::config::endpoint::v3::ClusterLoadAssignment assignment(const std::string& yaml) {
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  EXPECT_TRUE(protobuf::loadFromYamlString(yaml, cla).ok()) << yaml;
  return cla;
}

TEST(EdsPriorityTest, AssignmentsCarryPriorityLocalityAndFactorAndKeepHostsThatStayPut) {
  auto first = hostsFromAssignment(
      assignment("{cluster_name: s, policy: {overprovisioning_factor: 120}, endpoints: ["
                 "{locality: {zone: a}, lb_endpoints: [{endpoint: {address: {socket_address: {address: 10.0.0.1, "
                 "port_value: 80}}}}]},"
                 "{priority: 1, locality: {zone: b}, lb_endpoints: [{endpoint: {address: {socket_address: "
                 "{address: 10.0.0.2, port_value: 80}}}}]}]}"),
      "resources[0]", {});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->overprovisioning_factor, 120u);
  ASSERT_EQ(first->hosts.size(), 2u);
  EXPECT_EQ(first->hosts[1]->priority, 1u);
  EXPECT_EQ(first->localities[first->hosts[1]->locality].zone, "b");
  stats::Store store;
  Cluster base;
  base.stats = &ClusterStats::of(store, "s");
  auto cluster = clusterWithAssignment(base, *first);
  ASSERT_NE(cluster->layout, nullptr);
  EXPECT_EQ(cluster->overprovisioning_factor, 120u);

  // 10.0.0.1 stays where it was; 10.0.0.2 moves to priority 0.
  auto second = hostsFromAssignment(
      assignment("{cluster_name: s, endpoints: [{locality: {zone: a}, lb_endpoints: ["
                 "{endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 80}}}},"
                 "{endpoint: {address: {socket_address: {address: 10.0.0.2, port_value: 80}}}}]}]}"),
      "resources[0]", first->all, first->localities);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->hosts[0], first->hosts[0]);
  EXPECT_NE(second->hosts[1], first->hosts[1]);
  EXPECT_EQ(second->hosts[1]->priority, 0u);
  EXPECT_EQ(clusterWithAssignment(base, *second)->layout, nullptr);

  auto bad = hostsFromAssignment(assignment("{cluster_name: s, policy: {overprovisioning_factor: 0}}"),
                                 "resources[0]", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("resources[0].policy.overprovisioning_factor"), std::string::npos);
}

// An endpoint on 10.0.0.<host>:80 with a health_status.
std::string edsEndpoint(int host, const std::string& health) {
  return absl::StrCat("{endpoint: {address: {socket_address: {address: 10.0.0.", host,
                      ", port_value: 80}}}, health_status: ", health, "}");
}

// P0 hosts 1-4 with the given statuses, P1 hosts 5-6 healthy.
envoy::config::endpoint::v3::ClusterLoadAssignment twoLevelAssignment(const std::vector<std::string>& p0) {
  std::string lbs;
  for (size_t i = 0; i < p0.size(); ++i) lbs += (i == 0 ? "" : ", ") + edsEndpoint(static_cast<int>(i) + 1, p0[i]);
  return assignment(absl::StrCat("{cluster_name: s, endpoints: [{lb_endpoints: [", lbs, "]}, {priority: 1, ",
                                 "lb_endpoints: [", edsEndpoint(5, "HEALTHY"), ", ", edsEndpoint(6, "HEALTHY"),
                                 "]}]}"));
}

class EdsHealthTest : public ::testing::Test {
 protected:
  EdsHealthTest() { base_.stats = &ClusterStats::of(store_, "s"); }
  ClusterConstSharedPtr apply(const envoy::config::endpoint::v3::ClusterLoadAssignment& cla) {
    auto built = hostsFromAssignment(cla, "resources[0]", hosts_.all, hosts_.localities);
    EXPECT_TRUE(built.ok()) << built.status();
    hosts_ = std::move(*built);
    return clusterWithAssignment(base_, hosts_);
  }
  static std::vector<uint64_t> picks(const Cluster& c, LoadBalancer& lb, uint64_t n) {
    std::vector<uint64_t> counts(c.hosts.size(), 0);
    for (uint64_t i = 0; i < n; ++i) {
      const Host* h = lb.chooseHost(nullptr);
      EXPECT_NE(h, nullptr);
      if (h != nullptr) ++counts[testing::indexOf(c, h)];
    }
    return counts;
  }

  stats::Store store_;
  Cluster base_;
  EdsHosts hosts_;
};

// As Envoy, a STATIC cluster's endpoints carry their health_status too.
TEST_F(EdsHealthTest, StaticClusterEndpointsTakeTheirHealthStatus) {
  envoy::config::cluster::v3::Cluster proto;
  ASSERT_TRUE(protobuf::loadFromYamlString(
                  absl::StrCat("{name: st, load_assignment: {endpoints: [{lb_endpoints: [", edsEndpoint(1, "HEALTHY"),
                               ", ", edsEndpoint(2, "UNHEALTHY"), ", ", edsEndpoint(3, "DEGRADED"), ", ",
                               edsEndpoint(4, "HEALTHY"), "]}]}}"),
                  proto)
                  .ok());
  auto c = createCluster(proto, "clusters[0]", store_);
  ASSERT_TRUE(c.ok()) << c.status();
  const Cluster& cluster = **c;
  ASSERT_EQ(cluster.hosts.size(), 4u);
  EXPECT_EQ(cluster.hosts[0]->health_flags.load(), 0u);
  EXPECT_EQ(cluster.hosts[1]->health_flags.load(), health_flag::kFailedEdsHealth);
  EXPECT_EQ(cluster.hosts[2]->health_flags.load(), health_flag::kDegradedEdsHealth);
  EXPECT_EQ(cluster.unhealthy_hosts.load(), 2u);
  EXPECT_EQ(cluster.degraded_hosts.load(), 1u);
  EXPECT_EQ(cluster.stats->membership_total.value(), 4u);
  EXPECT_EQ(cluster.stats->membership_healthy.value(), 2u);
  EXPECT_EQ(cluster.stats->membership_degraded.value(), 1u);
  // Two healthy hosts of four at factor 140 take 70% of the load, the
  // degraded one the other 30%; the unhealthy one nothing.
  auto lb = createLoadBalancer(cluster);
  const auto counts = picks(cluster, *lb, 10000);
  EXPECT_EQ(counts[1], 0u);
  EXPECT_LT(testing::chiSquared({counts[0] + counts[3], counts[2]}, {70, 30}), testing::chiSquaredCritical001(1))
      << counts[0] + counts[3] << " / " << counts[2];
}

TEST_F(EdsHealthTest, EveryStatusIsKeptWithEnvoysFlag) {
  auto c = apply(assignment(absl::StrCat("{cluster_name: s, endpoints: [{lb_endpoints: [", edsEndpoint(1, "UNHEALTHY"),
                                         ", ", edsEndpoint(2, "DRAINING"), ", ", edsEndpoint(3, "TIMEOUT"), ", ",
                                         edsEndpoint(4, "DEGRADED"), ", ", edsEndpoint(5, "HEALTHY"), ", ",
                                         edsEndpoint(6, "UNKNOWN"), "]}]}")));
  ASSERT_EQ(c->hosts.size(), 6u);
  const std::vector<uint32_t> want = {health_flag::kFailedEdsHealth, health_flag::kFailedEdsHealth,
                                      health_flag::kFailedEdsHealth, health_flag::kDegradedEdsHealth, 0, 0};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(c->hosts[i]->health_flags.load(), want[i]) << i;
  EXPECT_EQ(c->unhealthy_hosts.load(), 4u);
  EXPECT_EQ(c->degraded_hosts.load(), 1u);
  EXPECT_EQ(c->stats->membership_total.value(), 6u);
  EXPECT_EQ(c->stats->membership_healthy.value(), 2u);
  EXPECT_EQ(c->stats->membership_degraded.value(), 1u);
  // 2 healthy + 1 degraded of 6: 46 + 23 available, 50% usable (no panic):
  // 67% healthy, 33% degraded, nothing to the failed three.
  auto lb = createLoadBalancer(*c);
  auto counts = picks(*c, *lb, 60000);
  EXPECT_EQ(counts[0] + counts[1] + counts[2], 0u);
  EXPECT_LT(chiSquared({counts[4] + counts[5], counts[3]}, {67, 33}), chiSquaredCritical001(1))
      << counts[4] + counts[5] << " / " << counts[3];
  EXPECT_EQ(c->stats->lb_healthy_panic.value(), 0u);
}

TEST_F(EdsHealthTest, APartlyUnhealthyPriorityZeroSpillsToPriorityOneAndTakesItBack) {
  // Two of P0's four hosts UNHEALTHY: P0 is 50% healthy, 70% available;
  // P1 takes the 30 left. The unhealthy hosts stay listed and get nothing.
  auto c = apply(twoLevelAssignment({"HEALTHY", "UNHEALTHY", "HEALTHY", "UNHEALTHY"}));
  ASSERT_NE(c->layout, nullptr);
  ASSERT_EQ(c->hosts.size(), 6u);
  EXPECT_EQ(c->layout->levels[0].all->unhealthy_hosts.load(), 2u);
  PriorityLoadBalancer lb(*c);
  const uint64_t n = 100000;
  auto counts = picks(*c, lb, n);
  EXPECT_EQ(lb.priorityLoad().load, (std::vector<uint32_t>{70, 30}));
  EXPECT_EQ(counts[1] + counts[3], 0u);
  EXPECT_LT(chiSquared({counts[0] + counts[2], counts[4] + counts[5]}, {70, 30}), chiSquaredCritical001(1))
      << counts[0] + counts[2] << " / " << counts[4] + counts[5];
  const Host* kept = c->hosts[1].get();

  // Healthy again: the same host objects (their pools carry over), the flag
  // cleared, the counts of the new version and its levels right, and all
  // traffic back on P0.
  auto next = apply(twoLevelAssignment({"HEALTHY", "HEALTHY", "HEALTHY", "DEGRADED"}));
  ASSERT_EQ(next->hosts[1].get(), kept);
  EXPECT_EQ(kept->health_flags.load(), 0u);
  EXPECT_EQ(next->hosts[3]->health_flags.load(), health_flag::kDegradedEdsHealth);
  EXPECT_EQ(next->unhealthy_hosts.load(), 1u);
  EXPECT_EQ(next->degraded_hosts.load(), 1u);
  EXPECT_EQ(next->layout->levels[0].all->unhealthy_hosts.load(), 1u);
  EXPECT_EQ(next->layout->levels[0].all->degraded_hosts.load(), 1u);
  EXPECT_EQ(next->stats->membership_healthy.value(), 5u);
  PriorityLoadBalancer next_lb(*next);
  counts = picks(*next, next_lb, 30000);
  // 3 of 4 healthy at 140 hold all the load: the degraded host gets none.
  EXPECT_EQ(next_lb.priorityLoad().load, (std::vector<uint32_t>{100, 0}));
  EXPECT_EQ(counts[3] + counts[4] + counts[5], 0u);
  for (size_t i : {0, 1, 2}) EXPECT_GT(counts[i], 0u) << i;

  // And failed once more: the flag follows the status on the kept host.
  auto third = apply(twoLevelAssignment({"HEALTHY", "TIMEOUT", "HEALTHY", "HEALTHY"}));
  ASSERT_EQ(third->hosts[1].get(), kept);
  EXPECT_EQ(kept->health_flags.load(), health_flag::kFailedEdsHealth);
  EXPECT_EQ(third->hosts[3]->health_flags.load(), 0u);
  EXPECT_EQ(third->unhealthy_hosts.load(), 1u);
  EXPECT_EQ(third->degraded_hosts.load(), 0u);
  EXPECT_EQ(third->stats->membership_degraded.value(), 0u);
}

TEST_F(EdsHealthTest, OtherFlagsOfAKeptHostSurviveAnEdsChange) {
  auto c = apply(twoLevelAssignment({"HEALTHY", "HEALTHY", "HEALTHY", "HEALTHY"}));
  setHealthFlag(*c, *c->hosts[0], health_flag::kFailedActiveHc, true);
  auto next = apply(twoLevelAssignment({"UNHEALTHY", "HEALTHY", "HEALTHY", "HEALTHY"}));
  ASSERT_EQ(next->hosts[0], c->hosts[0]);
  EXPECT_EQ(next->hosts[0]->health_flags.load(), health_flag::kFailedActiveHc | health_flag::kFailedEdsHealth);
  next = apply(twoLevelAssignment({"HEALTHY", "HEALTHY", "HEALTHY", "HEALTHY"}));
  EXPECT_EQ(next->hosts[0]->health_flags.load(), health_flag::kFailedActiveHc);
  EXPECT_EQ(next->unhealthy_hosts.load(), 1u);
}

}  // namespace
}  // namespace courier::upstream
