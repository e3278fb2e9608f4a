#include "source/common/upstream/host_discovery.h"

#include "gtest/gtest.h"
#include "source/common/stats/store.h"
#include "test/common/upstream/lb_test_util.h"

namespace courier::upstream {
namespace {

// A DNS re-resolve keeps the hosts that stay, with the flags active checks
// or outlier detection put on them: the new version counts them.
TEST(WithHostsTest, KeptHostsFlagsAreCountedInTheNewVersion) {
  stats::Store store;
  auto base = testing::makeCluster(3);
  base->stats = &ClusterStats::of(store, "dns");
  setHealthFlag(*base, *base->hosts[1], health_flag::kFailedActiveHc, true);
  setHealthFlag(*base, *base->hosts[2], health_flag::kDegradedActiveHc, true);
  // The discovery's base version never had its counts updated.
  auto fresh_base = testing::makeCluster(0);
  fresh_base->stats = base->stats;
  auto next = withHosts(*fresh_base, base->hosts);
  EXPECT_EQ(next->unhealthy_hosts.load(), 2u);
  EXPECT_EQ(next->degraded_hosts.load(), 1u);
  EXPECT_EQ(next->stats->membership_total.value(), 3u);
  EXPECT_EQ(next->stats->membership_healthy.value(), 1u);
  EXPECT_EQ(next->stats->membership_degraded.value(), 1u);
  // The failed host is not picked.
  auto lb = createLoadBalancer(*next);
  for (int i = 0; i < 20; ++i) EXPECT_NE(lb->chooseHost(nullptr), next->hosts[1].get());
}

}  // namespace
}  // namespace courier::upstream
