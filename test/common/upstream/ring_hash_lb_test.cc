#include "source/common/upstream/ring_hash_lb.h"

#include "gtest/gtest.h"
#include "test/common/upstream/lb_test_util.h"

namespace courier::upstream {
namespace {

using namespace testing;

// Moved keys when a host joins, as a fraction of keys.
double remappedFraction(LoadBalancer& before, const Cluster& c1, LoadBalancer& after, const Cluster& c2) {
  FastRandom random(99);
  int moved = 0;
  constexpr int kKeys = 20000;
  for (int i = 0; i < kKeys; ++i) {
    FixedLoadBalancerContext context(random.next(), nullptr);
    if (before.chooseHost(&context)->address.asString() != after.chooseHost(&context)->address.asString()) ++moved;
  }
  return double(moved) / kKeys;
}

TEST(RingHashLoadBalancerTest, SameHashAlwaysSameHost) {
  auto cluster = makeCluster(10);
  RingHashLoadBalancerFactory factory(*cluster, {});
  auto lb1 = factory.create(*cluster);
  auto lb2 = factory.create(*cluster);  // another worker
  for (uint64_t key = 0; key < 1000; ++key) {
    FixedLoadBalancerContext context(key * 0x9e3779b97f4a7c15ULL, nullptr);
    const Host* first = lb1->chooseHost(&context);
    EXPECT_EQ(lb1->chooseHost(&context), first);
    EXPECT_EQ(lb2->chooseHost(&context), first);
  }
}

TEST(RingHashLoadBalancerTest, AddingAHostRemapsAboutItsShare) {
  for (HashFunction fn : {HashFunction::XxHash, HashFunction::MurmurHash2}) {
    RingHashConfig config;
    config.hash_function = fn;
    auto c1 = makeCluster(10);
    auto c2 = makeCluster(11);
    RingHashLoadBalancerFactory f1(*c1, config), f2(*c2, config);
    auto lb1 = f1.create(*c1);
    auto lb2 = f2.create(*c2);
    const double ideal = 1.0 / 11;
    const double moved = remappedFraction(*lb1, *c1, *lb2, *c2);
    EXPECT_GT(moved, 0.0);
    EXPECT_LT(moved, 2 * ideal) << "hash function " << int(fn);
  }
}

TEST(RingHashLoadBalancerTest, WeightsGiveProportionalShares) {
  const std::vector<uint32_t> weights{1, 2, 3};
  auto cluster = makeCluster(weights);
  RingHashConfig config;
  config.minimum_ring_size = 60000;
  RingHashLoadBalancerFactory factory(*cluster, config);
  auto lb = factory.create(*cluster);
  FastRandom random(5);
  std::vector<uint64_t> counts(3, 0);
  constexpr int kKeys = 120000;
  for (int i = 0; i < kKeys; ++i) {
    FixedLoadBalancerContext context(random.next(), nullptr);
    ++counts[indexOf(*cluster, lb->chooseHost(&context))];
  }
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(counts[i] / double(kKeys), weights[i] / 6.0, 0.05 * weights[i] / 6.0);
}

TEST(RingHashLoadBalancerTest, RingEntriesFollowWeights) {
  auto cluster = makeCluster({1, 3});
  RingHashConfig config;
  config.minimum_ring_size = 1000;
  RingHashLoadBalancerFactory factory(*cluster, config);
  // The lightest host gets ceil(1000 / 4) = 250 entries, the other three times that.
  EXPECT_EQ(factory.ring().size(), 1000u);
}

TEST(RingHashLoadBalancerTest, MaximumRingSizeCapsTheRing) {
  auto cluster = makeCluster(100);
  RingHashConfig config;
  config.minimum_ring_size = 2000;
  config.maximum_ring_size = 2000;
  RingHashLoadBalancerFactory factory(*cluster, config);
  EXPECT_EQ(factory.ring().size(), 2000u);
  config.minimum_ring_size = 1000;
  config.maximum_ring_size = 1000;
  auto big = makeCluster({1, 1000000});
  RingHashLoadBalancerFactory capped(*big, config);
  EXPECT_LE(capped.ring().size(), 1001u);
}

TEST(RingHashLoadBalancerTest, RequestWithoutHashStillGetsAHost) {
  auto cluster = makeCluster(3);
  RingHashLoadBalancerFactory factory(*cluster, {});
  auto lb = factory.create(*cluster);
  std::vector<uint64_t> counts = countPicks(*lb, *cluster, 3000);
  for (auto c : counts) EXPECT_GT(c, 700u);  // random points spread
}

TEST(RingHashLoadBalancerTest, EmptyClusterGivesNoHost) {
  auto cluster = makeCluster(0);
  RingHashLoadBalancerFactory factory(*cluster, {});
  EXPECT_EQ(factory.create(*cluster)->chooseHost(nullptr), nullptr);
}

TEST(RingHashLoadBalancerTest, RingSizeValidationNamesTheField) {
  auto cluster = makeCluster(1);
  RingHashConfig config;
  config.minimum_ring_size = kMaxRingSize + 1;
  auto r = RingHashLoadBalancerFactory::create(*cluster, config, "clusters[0].ring_hash_lb_config");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("clusters[0].ring_hash_lb_config.minimum_ring_size"), absl::string_view::npos);

  config = {};
  config.maximum_ring_size = kMaxRingSize + 1;
  r = RingHashLoadBalancerFactory::create(*cluster, config, "p");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("p.maximum_ring_size"), absl::string_view::npos);

  config = {};
  config.minimum_ring_size = 4096;
  config.maximum_ring_size = 2048;
  r = RingHashLoadBalancerFactory::create(*cluster, config, "p");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("p.minimum_ring_size"), absl::string_view::npos);

  EXPECT_TRUE(RingHashLoadBalancerFactory::create(*cluster, {}, "p").ok());
}

}  // namespace
}  // namespace courier::upstream
