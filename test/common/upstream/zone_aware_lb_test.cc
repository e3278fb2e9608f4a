// Zone-aware routing as Envoy's: the arithmetic on healthy-host shares per
// locality (checked against hand-computed figures), pick distributions over
// clusters built from config (chi-squared against the expected shares), each
// case where routing does not apply with its stat, routing_enabled, panic,
// recomputation only on health changes, and the worker wiring.
#include "source/common/upstream/zone_aware_lb.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "gtest/gtest.h"
#include "source/common/protobuf/yaml_loader.h"
#include "source/common/upstream/cluster_factory.h"
#include "source/common/upstream/thread_local_cluster_manager.h"
#include "test/common/upstream/lb_test_util.h"

namespace courier::upstream {
namespace {

using testing::chiSquared;
using testing::chiSquaredCritical001;

TEST(ZoneRoutingTest, EnvoysExampleRoutesFiveEighthsLocallyAndSpreadsTheRestBySpareCapacity) {
  // Envoy's worked example: local cluster 40/40/20 percent per locality,
  // upstream 25/50/25. 25/40 of picks stay local (6250 of 10000); the
  // others have 10 and 5 points spare: residual running totals 0, 1000, 1500.
  ZoneInputs in;
  in.upstream_healthy = {2, 4, 2};
  in.local_healthy = {4, 4, 2};
  in.upstream_localities = 3;
  in.local_localities = 3;
  in.local_cluster_present = true;
  in.upstream_has_local_zone = true;
  ZoneSkip skip = ZoneSkip::kTooSmall;
  auto r = computeZoneRouting(in, 6, &skip);
  EXPECT_EQ(skip, ZoneSkip::kNone);
  EXPECT_EQ(r.mode, ZoneRouting::Mode::kResidual);
  EXPECT_EQ(r.local_percent_to_route, 6250u);
  EXPECT_EQ(r.residual_capacity, (std::vector<uint64_t>{0, 1000, 1500}));
}

TEST(ZoneRoutingTest, AnUpstreamLocalShareAtLeastTheLocalClustersGoesAllDirectly) {
  ZoneInputs in;
  in.upstream_healthy = {4, 2};
  in.local_healthy = {2, 2};
  in.upstream_localities = in.local_localities = 2;
  in.local_cluster_present = in.upstream_has_local_zone = true;
  EXPECT_EQ(computeZoneRouting(in, 6, nullptr).mode, ZoneRouting::Mode::kDirect);
  // Equal shares too.
  in.upstream_healthy = {3, 3};
  EXPECT_EQ(computeZoneRouting(in, 6, nullptr).mode, ZoneRouting::Mode::kDirect);
}

TEST(ZoneRoutingTest, EachPreconditionSaysWhyItFailed) {
  ZoneInputs good;
  good.upstream_healthy = {3, 3};
  good.local_healthy = {2, 1};
  good.upstream_localities = good.local_localities = 2;
  good.local_cluster_present = good.upstream_has_local_zone = true;
  ZoneSkip skip;
  auto check = [&](ZoneInputs in, uint64_t min, ZoneSkip want) {
    skip = ZoneSkip::kNone;
    EXPECT_EQ(computeZoneRouting(in, min, &skip).mode, ZoneRouting::Mode::kNone);
    EXPECT_EQ(skip, want);
  };
  auto in = good;
  in.upstream_localities = 1;
  check(in, 6, ZoneSkip::kTooFewLocalities);
  in = good;
  in.local_cluster_present = false;
  check(in, 6, ZoneSkip::kLocalClusterNotOk);
  in = good;
  in.local_healthy = {0, 0};
  check(in, 6, ZoneSkip::kLocalClusterNotOk);
  in = good;
  in.upstream_has_local_zone = false;
  check(in, 6, ZoneSkip::kLocalClusterNotOk);
  in = good;
  in.local_localities = 3;
  check(in, 6, ZoneSkip::kNumberDiffers);
  check(good, 7, ZoneSkip::kTooSmall);
  EXPECT_EQ(computeZoneRouting(good, 6, &skip).mode, ZoneRouting::Mode::kResidual);
}

// zone name and host count per locality.
using Zones = std::vector<std::pair<std::string, int>>;

class ZoneAwareTest : public ::testing::Test {
 protected:
  ClusterConstSharedPtr build(const std::string& name, const Zones& zones, const std::string& common = "") {
    std::string endpoints;
    for (const auto& [zone, n] : zones) {
      std::string lbs;
      for (int i = 0; i < n; ++i) {
        lbs += absl::StrCat(lbs.empty() ? "" : ", ", "{endpoint: {address: {socket_address: {address: 10.0.", ++next_,
                            ".1, port_value: 80}}}}");
      }
      endpoints +=
          absl::StrCat(endpoints.empty() ? "" : ", ", "{locality: {zone: '", zone, "'}, lb_endpoints: [", lbs, "]}");
    }
    const std::string yaml =
        absl::StrCat("{name: ", name, ", type: STATIC, ", common.empty() ? "" : "common_lb_config: " + common + ", ",
                     "load_assignment: {cluster_name: ", name, ", endpoints: [", endpoints, "]}}");
    envoy::config::cluster::v3::Cluster proto;
    auto s = protobuf::loadFromYamlString(yaml, proto);
    EXPECT_TRUE(s.ok()) << s;
    auto c = createCluster(proto, "clusters[0]", store_);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : nullptr;
  }
  std::unique_ptr<LoadBalancer> lbFor(const Cluster& upstream, const Cluster* local) {
    return createZoneAwareOrPlainLoadBalancer(upstream, true, local, zone_a_);
  }
  // Picks per locality index of `c`.
  static std::vector<uint64_t> perZone(const Cluster& c, LoadBalancer& lb, uint64_t n) {
    std::vector<uint64_t> counts(c.localities.size(), 0);
    for (uint64_t i = 0; i < n; ++i) {
      const Host* h = lb.chooseHost(nullptr);
      EXPECT_NE(h, nullptr);
      if (h != nullptr) ++counts[h->locality];
    }
    return counts;
  }
  static void setUnhealthy(const Cluster& c, size_t host, bool on = true) {
    setHealthFlag(c, *c.hosts[host], health_flag::kFailedActiveHc, on);
  }

  stats::Store store_;
  int next_ = 0;
  LocalityEntry zone_a_{"", "a", "", 0};
};

TEST_F(ZoneAwareTest, TheLayoutIsBuiltForMultiZoneClustersOnlyAndPlainBalancersIgnoreIt) {
  auto one = build("one", {{"a", 3}});
  EXPECT_EQ(one->layout, nullptr);
  auto two = build("two", {{"a", 3}, {"b", 3}});
  ASSERT_NE(two->layout, nullptr);
  EXPECT_TRUE(two->layout->zone_only);
  ASSERT_TRUE(two->zone_aware.has_value());
  EXPECT_EQ(two->zone_aware->routing_enabled, 100u);
  EXPECT_EQ(two->zone_aware->min_cluster_size, 6u);
  EXPECT_FALSE(two->zone_aware->fail_traffic_on_panic);
  // Without a local cluster: plain round robin over all six.
  auto lb = createZoneAwareOrPlainLoadBalancer(*two, false, nullptr, zone_a_);
  auto counts = perZone(*two, *lb, 600);
  EXPECT_EQ(counts, (std::vector<uint64_t>{300, 300}));
  // Locality weighting and hashing policies do not route by zone.
  auto weighted = build("w", {{"a", 3}, {"b", 3}}, "{locality_weighted_lb_config: {}}");
  EXPECT_FALSE(weighted->zone_aware.has_value());
  EXPECT_FALSE(routesByZone(*weighted));
}

TEST_F(ZoneAwareTest, AllDirectlyWhenTheUpstreamHasTheLargerLocalShare) {
  auto local = build("local", {{"a", 2}, {"b", 2}});  // 50% in a
  auto upstream = build("up", {{"a", 4}, {"b", 2}});  // 66% in a
  auto lb = lbFor(*upstream, local.get());
  auto counts = perZone(*upstream, *lb, 10000);
  EXPECT_EQ(counts, (std::vector<uint64_t>{10000, 0}));
  EXPECT_EQ(upstream->stats->zone->lb_zone_routing_all_directly.value(), 10000u);
  EXPECT_EQ(upstream->stats->zone->lb_zone_routing_sampled.value(), 0u);
  EXPECT_EQ(upstream->stats->zone->lb_zone_routing_cross_zone.value(), 0u);
}

TEST_F(ZoneAwareTest, ResidualSpreadingMatchesEnvoysExample) {
  // Local cluster 40/40/20, upstream 25/50/25: a gets 62.5% of picks, b the
  // 25% from its 10 spare points, c the 12.5% from its 5.
  auto local = build("local", {{"a", 4}, {"b", 4}, {"c", 2}});
  auto upstream = build("up", {{"a", 2}, {"b", 4}, {"c", 2}});
  auto lb = lbFor(*upstream, local.get());
  const uint64_t n = 80000;
  auto counts = perZone(*upstream, *lb, n);
  EXPECT_LT(chiSquared(counts, {5, 2, 1}), chiSquaredCritical001(2))
      << counts[0] << " " << counts[1] << " " << counts[2];
  ASSERT_NE(upstream->stats->zone, nullptr);
  const auto& s = *upstream->stats->zone;
  EXPECT_EQ(s.lb_zone_routing_sampled.value() + s.lb_zone_routing_cross_zone.value(), n);
  EXPECT_EQ(s.lb_zone_routing_sampled.value(), counts[0]);
  EXPECT_EQ(s.lb_zone_routing_all_directly.value(), 0u);
  auto* zl = dynamic_cast<ZoneAwareLoadBalancer*>(lb.get());
  ASSERT_NE(zl, nullptr);
  EXPECT_EQ(zl->routing().local_percent_to_route, 6250u);
}

TEST_F(ZoneAwareTest, AMissingOrEmptyLocalClusterCountsLocalClusterNotOkOncePerRecompute) {
  auto upstream = build("up", {{"a", 3}, {"b", 3}});
  auto lb = lbFor(*upstream, nullptr);
  auto counts = perZone(*upstream, *lb, 600);
  EXPECT_EQ(counts, (std::vector<uint64_t>{300, 300}));  // plain round robin
  EXPECT_EQ(upstream->stats->zone->lb_local_cluster_not_ok.value(), 1u);

  auto empty = build("empty", {});
  auto lb2 = lbFor(*upstream, empty.get());
  perZone(*upstream, *lb2, 100);
  EXPECT_EQ(upstream->stats->zone->lb_local_cluster_not_ok.value(), 2u);
}

TEST_F(ZoneAwareTest, NoUpstreamHostsInTheLocalZoneCountsLocalClusterNotOk) {
  auto local = build("local", {{"a", 2}, {"b", 2}});
  auto upstream = build("up", {{"b", 3}, {"c", 3}});
  auto lb = lbFor(*upstream, local.get());
  auto counts = perZone(*upstream, *lb, 600);
  EXPECT_EQ(counts, (std::vector<uint64_t>{300, 300}));
  EXPECT_EQ(upstream->stats->zone->lb_local_cluster_not_ok.value(), 1u);
}

TEST_F(ZoneAwareTest, DifferentZoneCountsCountZoneNumberDiffers) {
  auto local = build("local", {{"a", 2}, {"b", 2}, {"c", 2}});
  auto upstream = build("up", {{"a", 3}, {"b", 3}});
  auto lb = lbFor(*upstream, local.get());
  auto counts = perZone(*upstream, *lb, 600);
  EXPECT_EQ(counts, (std::vector<uint64_t>{300, 300}));
  EXPECT_EQ(upstream->stats->zone->lb_zone_number_differs.value(), 1u);
  EXPECT_EQ(upstream->stats->zone->lb_zone_routing_all_directly.value(), 0u);
}

TEST_F(ZoneAwareTest, AnUpstreamBelowMinClusterSizeCountsTooSmall) {
  auto local = build("local", {{"a", 2}, {"b", 2}});
  auto small = build("small", {{"a", 3}, {"b", 2}});  // 5 < 6
  auto lb = lbFor(*small, local.get());
  auto counts = perZone(*small, *lb, 500);
  EXPECT_EQ(counts, (std::vector<uint64_t>{300, 200}));
  EXPECT_EQ(small->stats->zone->lb_zone_cluster_too_small.value(), 1u);
  // With min_cluster_size 5 the same hosts route by zone (60% >= 50%: all
  // directly).
  auto five = build("five", {{"a", 3}, {"b", 2}}, "{zone_aware_lb_config: {min_cluster_size: 5}}");
  auto lb5 = lbFor(*five, local.get());
  EXPECT_EQ(perZone(*five, *lb5, 500), (std::vector<uint64_t>{500, 0}));
  EXPECT_EQ(five->stats->zone->lb_zone_cluster_too_small.value(), 0u);
  EXPECT_EQ(five->stats->zone->lb_zone_routing_all_directly.value(), 500u);
}

TEST_F(ZoneAwareTest, RoutingEnabledZeroLeavesEveryPickToThePlainBalancer) {
  auto local = build("local", {{"a", 4}, {"b", 1}});
  auto upstream = build("up", {{"a", 3}, {"b", 3}}, "{zone_aware_lb_config: {routing_enabled: {value: 0}}}");
  EXPECT_EQ(upstream->zone_aware->routing_enabled, 0u);
  auto lb = lbFor(*upstream, local.get());
  EXPECT_EQ(perZone(*upstream, *lb, 600), (std::vector<uint64_t>{300, 300}));
  ASSERT_NE(upstream->stats->zone, nullptr);
  const auto& s = *upstream->stats->zone;
  EXPECT_EQ(
      s.lb_zone_routing_all_directly.value() + s.lb_zone_routing_sampled.value() + s.lb_zone_routing_cross_zone.value(),
      0u);
}

TEST_F(ZoneAwareTest, RoutingEnabledHalfRoutesHalfTheTimeByZone) {
  // All directly when routed; otherwise round robin (half to a): 75% to a.
  auto local = build("local", {{"a", 1}, {"b", 1}});
  auto upstream = build("up", {{"a", 3}, {"b", 3}}, "{zone_aware_lb_config: {routing_enabled: {value: 50}}}");
  auto lb = lbFor(*upstream, local.get());
  auto counts = perZone(*upstream, *lb, 40000);
  EXPECT_LT(chiSquared(counts, {3, 1}), chiSquaredCritical001(1)) << counts[0] << " " << counts[1];
}

TEST_F(ZoneAwareTest, HealthChangesRecomputeButPicksDoNot) {
  auto local = build("local", {{"a", 1}, {"b", 1}});
  auto upstream = build("up", {{"a", 3}, {"b", 3}});  // 50% >= 50%: direct
  auto lb = lbFor(*upstream, local.get());
  auto* zl = dynamic_cast<ZoneAwareLoadBalancer*>(lb.get());
  ASSERT_NE(zl, nullptr);
  perZone(*upstream, *lb, 100);
  EXPECT_EQ(zl->routing().mode, ZoneRouting::Mode::kDirect);
  // One upstream host of a fails: 5 healthy is below min_cluster_size 6.
  setUnhealthy(*upstream, 0);
  auto counts = perZone(*upstream, *lb, 1000);
  EXPECT_EQ(zl->routing().mode, ZoneRouting::Mode::kNone);
  EXPECT_EQ(upstream->stats->zone->lb_zone_cluster_too_small.value(), 1u);  // once, not per pick
  EXPECT_EQ(counts[0] + counts[1], 1000u);
  setUnhealthy(*upstream, 0, false);
  perZone(*upstream, *lb, 100);
  EXPECT_EQ(zl->routing().mode, ZoneRouting::Mode::kDirect);
  // The local cluster's health counts too: b's only local host fails, so
  // the local cluster is all in a (100%) and a keeps only half.
  setUnhealthy(*local, 1);
  perZone(*upstream, *lb, 10);
  EXPECT_EQ(zl->routing().mode, ZoneRouting::Mode::kResidual);
  EXPECT_EQ(zl->routing().local_percent_to_route, 5000u);
  EXPECT_EQ(upstream->stats->zone->lb_zone_cluster_too_small.value(), 1u);
}

TEST_F(ZoneAwareTest, ALocalClusterInPanicRoutesPlainlyOrFailsWhenAsked) {
  // Local cluster: one of four healthy (25% < 50% panic threshold).
  auto local = build("local", {{"a", 2}, {"b", 2}});
  for (size_t i = 1; i < 4; ++i) setUnhealthy(*local, i);
  auto upstream = build("up", {{"a", 3}, {"b", 3}});
  auto lb = lbFor(*upstream, local.get());
  EXPECT_EQ(perZone(*upstream, *lb, 600), (std::vector<uint64_t>{300, 300}));
  EXPECT_EQ(upstream->stats->zone->lb_local_cluster_not_ok.value(), 600u);

  auto failing = build("failing", {{"a", 3}, {"b", 3}}, "{zone_aware_lb_config: {fail_traffic_on_panic: true}}");
  auto lbf = lbFor(*failing, local.get());
  EXPECT_EQ(lbf->chooseHost(nullptr), nullptr);
}

TEST_F(ZoneAwareTest, AnUpstreamInPanicFailsTrafficWhenAsked) {
  auto local = build("local", {{"a", 1}, {"b", 1}});
  auto failing = build("failing", {{"a", 3}, {"b", 3}}, "{zone_aware_lb_config: {fail_traffic_on_panic: true}}");
  for (size_t i = 0; i < 5; ++i) setUnhealthy(*failing, i);
  auto lb = lbFor(*failing, local.get());
  EXPECT_EQ(lb->chooseHost(nullptr), nullptr);
  EXPECT_EQ(failing->stats->lb_healthy_panic.value(), 1u);
}

TEST_F(ZoneAwareTest, ARoutingEnabledOutOfRangeIsRejectedWithItsPath) {
  envoy::config::cluster::v3::Cluster proto;
  ASSERT_TRUE(
      protobuf::loadFromYamlString(
          "{name: c, type: STATIC, common_lb_config: {zone_aware_lb_config: {routing_enabled: {value: 150}}}}", proto)
          .ok());
  auto c = createCluster(proto, "clusters[0]", store_);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("clusters[0].common_lb_config.zone_aware_lb_config.routing_enabled.value"),
            std::string::npos)
      << c.status();
}

// Without a local cluster (the common mesh), a cluster carries no zone state
// and none of the seven zone stats.
TEST_F(ZoneAwareTest, WithoutZoneRoutingAClusterHasNoZoneStateOrStats) {
  envoy::config::cluster::v3::Cluster proto;
  ASSERT_TRUE(protobuf::loadFromYamlString("{name: plain, type: STATIC}", proto).ok());
  auto without = createCluster(proto, "clusters[0]", store_, nullptr, nullptr, /*zone_routing=*/false);
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_FALSE((*without)->zone_aware.has_value());
  EXPECT_EQ((*without)->stats->zone, nullptr);
  for (stats::Counter* c : store_.counters()) EXPECT_EQ(c->name().find("lb_zone"), std::string::npos) << c->name();
  proto.set_name("zoned");
  auto with = createCluster(proto, "clusters[0]", store_, nullptr, nullptr, /*zone_routing=*/true);
  ASSERT_TRUE(with.ok()) << with.status();
  EXPECT_TRUE((*with)->zone_aware.has_value());
  ASSERT_NE((*with)->stats->zone, nullptr);
  EXPECT_EQ((*with)->stats->zone->lb_zone_routing_sampled.name(), "cluster.zoned.lb_zone_routing_sampled");
}

TEST_F(ZoneAwareTest, WorkersRouteAgainstTheSetsLocalClusterAndRebuildWhenItChanges) {
  auto local = build("local", {{"a", 1}, {"b", 1}});
  auto upstream = build("up", {{"a", 3}, {"b", 3}});
  auto set = std::make_shared<ClusterSet>();
  set->clusters.emplace("local", local);
  set->clusters.emplace("up", upstream);
  set->local_cluster_name = "local";
  set->local_locality = zone_a_;
  ThreadLocalClusterManager tlcm;
  tlcm.update(set);
  EXPECT_EQ(perZone(*upstream, tlcm.get("up")->loadBalancer(), 600), (std::vector<uint64_t>{600, 0}));
  EXPECT_EQ(tlcm.get("up")->local(), local);
  // A new version of the local cluster (three zones now): the balancer is
  // rebuilt against it and zone counts differ.
  auto local2 = build("local", {{"a", 1}, {"b", 1}, {"c", 1}});
  auto set2 = std::make_shared<ClusterSet>(*set);
  set2->clusters["local"] = local2;
  tlcm.update(set2);
  EXPECT_EQ(tlcm.get("up")->local(), local2);
  EXPECT_EQ(perZone(*upstream, tlcm.get("up")->loadBalancer(), 600), (std::vector<uint64_t>{300, 300}));
  EXPECT_EQ(upstream->stats->zone->lb_zone_number_differs.value(), 1u);
  // Without a local cluster name the plain balancer serves.
  auto set3 = std::make_shared<ClusterSet>(*set2);
  set3->local_cluster_name.clear();
  tlcm.update(set3);
  EXPECT_EQ(tlcm.get("up")->local(), nullptr);
  EXPECT_EQ(perZone(*upstream, tlcm.get("up")->loadBalancer(), 600), (std::vector<uint64_t>{300, 300}));
}

}  // namespace
}  // namespace courier::upstream
