#include "source/common/upstream/thread_local_cluster_manager.h"

#include <memory>

#include "gtest/gtest.h"
#include "test/common/upstream/lb_test_util.h"

namespace courier::upstream {
namespace {

using testing::indexOf;
using testing::makeCluster;

ClusterSetConstSharedPtr setOf(std::initializer_list<std::pair<const char*, ClusterConstSharedPtr>> clusters) {
  auto set = std::make_shared<ClusterSet>();
  for (const auto& [name, cluster] : clusters) set->clusters.emplace(name, cluster);
  return set;
}

TEST(ThreadLocalClusterManagerTest, NothingBeforeTheFirstSet) {
  ThreadLocalClusterManager tlcm;
  EXPECT_EQ(tlcm.get("a"), nullptr);
}

TEST(ThreadLocalClusterManagerTest, BalancersAreMadeOnFirstUseOnly) {
  ThreadLocalClusterManager tlcm;
  auto a = makeCluster(3), b = makeCluster(2), c = makeCluster(1);
  tlcm.update(setOf({{"a", a}, {"b", b}, {"c", c}}));
  EXPECT_EQ(tlcm.clustersInUse(), 0u);
  ThreadLocalCluster* got = tlcm.get("b");
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(&got->info(), b.get());
  EXPECT_EQ(tlcm.clustersInUse(), 1u);
  // The same state on the next request.
  EXPECT_EQ(tlcm.get("b"), got);
  EXPECT_EQ(tlcm.get("missing"), nullptr);
  EXPECT_EQ(tlcm.clustersInUse(), 1u);
}

TEST(ThreadLocalClusterManagerTest, UnchangedClustersKeepTheirBalancerAcrossSets) {
  ThreadLocalClusterManager tlcm;
  auto a = makeCluster(4), b = makeCluster(2);
  tlcm.update(setOf({{"a", a}, {"b", b}}));
  ThreadLocalCluster* first = tlcm.get("a");
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(indexOf(*a, first->loadBalancer().chooseHost(nullptr)), 0u);
  EXPECT_EQ(indexOf(*a, first->loadBalancer().chooseHost(nullptr)), 1u);
  ASSERT_NE(tlcm.get("b"), nullptr);

  // "a" is the same object in the new set, "b" is a new version.
  auto b2 = makeCluster(2);
  tlcm.update(setOf({{"a", a}, {"b", b2}}));
  EXPECT_EQ(tlcm.clustersInUse(), 1u);
  ThreadLocalCluster* again = tlcm.get("a");
  EXPECT_EQ(again, first);
  // Round robin goes on where it was.
  EXPECT_EQ(indexOf(*a, again->loadBalancer().chooseHost(nullptr)), 2u);
  ThreadLocalCluster* fresh = tlcm.get("b");
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(&fresh->info(), b2.get());
}

TEST(ThreadLocalClusterManagerTest, RemovedClustersAreDropped) {
  ThreadLocalClusterManager tlcm;
  auto a = makeCluster(1), b = makeCluster(1);
  tlcm.update(setOf({{"a", a}, {"b", b}}));
  ASSERT_NE(tlcm.get("a"), nullptr);
  ASSERT_NE(tlcm.get("b"), nullptr);
  tlcm.update(setOf({{"b", b}}));
  EXPECT_EQ(tlcm.clustersInUse(), 1u);
  EXPECT_EQ(tlcm.get("a"), nullptr);
  EXPECT_NE(tlcm.get("b"), nullptr);
  // The worker's hold on the removed cluster is gone with it.
  EXPECT_EQ(a.use_count(), 1);
}

}  // namespace
}  // namespace courier::upstream
