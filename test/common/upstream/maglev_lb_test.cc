#include "source/common/upstream/maglev_lb.h"

#include "gtest/gtest.h"
#include "test/common/upstream/lb_test_util.h"

namespace courier::upstream {
namespace {

using namespace testing;

TEST(MaglevLoadBalancerTest, SameHashAlwaysSameHost) {
  auto cluster = makeCluster(10);
  MaglevLoadBalancerFactory factory(*cluster, kDefaultMaglevTableSize);
  auto lb1 = factory.create(*cluster);
  auto lb2 = factory.create(*cluster);
  for (uint64_t key = 0; key < 1000; ++key) {
    FixedLoadBalancerContext context(key * 0x9e3779b97f4a7c15ULL, nullptr);
    const Host* first = lb1->chooseHost(&context);
    EXPECT_EQ(lb1->chooseHost(&context), first);
    EXPECT_EQ(lb2->chooseHost(&context), first);
  }
}

TEST(MaglevLoadBalancerTest, EveryHostGetsAnEqualShareOfSlots) {
  auto cluster = makeCluster(7);
  MaglevLoadBalancerFactory factory(*cluster, kDefaultMaglevTableSize);
  std::vector<uint64_t> slots(7, 0);
  for (uint64_t s = 0; s < factory.table().size(); ++s) ++slots[factory.table().hostFor(s)];
  for (auto n : slots) EXPECT_NEAR(double(n), kDefaultMaglevTableSize / 7.0, 1.0);
}

TEST(MaglevLoadBalancerTest, WeightsGiveProportionalSlots) {
  const std::vector<uint32_t> weights{1, 2, 3};
  auto cluster = makeCluster(weights);
  MaglevLoadBalancerFactory factory(*cluster, kDefaultMaglevTableSize);
  std::vector<uint64_t> slots(3, 0);
  for (uint64_t s = 0; s < factory.table().size(); ++s) ++slots[factory.table().hostFor(s)];
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(slots[i] / double(kDefaultMaglevTableSize), weights[i] / 6.0, 0.01 * weights[i] / 6.0);
  }
}

TEST(MaglevLoadBalancerTest, AddingAHostRemapsAboutItsShare) {
  auto c1 = makeCluster(10);
  auto c2 = makeCluster(11);
  MaglevLoadBalancerFactory f1(*c1, kDefaultMaglevTableSize), f2(*c2, kDefaultMaglevTableSize);
  uint64_t moved = 0;
  for (uint64_t s = 0; s < kDefaultMaglevTableSize; ++s) {
    if (c1->hosts[f1.table().hostFor(s)]->address.asString() != c2->hosts[f2.table().hostFor(s)]->address.asString()) {
      ++moved;
    }
  }
  const double fraction = double(moved) / kDefaultMaglevTableSize;
  EXPECT_GT(fraction, 0.0);
  EXPECT_LT(fraction, 2.0 / 11);
}

TEST(MaglevLoadBalancerTest, RequestWithoutHashStillGetsAHost) {
  auto cluster = makeCluster(3);
  MaglevLoadBalancerFactory factory(*cluster, kDefaultMaglevTableSize);
  auto lb = factory.create(*cluster);
  for (auto c : countPicks(*lb, *cluster, 3000)) EXPECT_GT(c, 700u);
}

TEST(MaglevLoadBalancerTest, EmptyClusterGivesNoHost) {
  auto cluster = makeCluster(0);
  MaglevLoadBalancerFactory factory(*cluster, kDefaultMaglevTableSize);
  EXPECT_EQ(factory.create(*cluster)->chooseHost(nullptr), nullptr);
}

TEST(MaglevLoadBalancerTest, TableSizeMustBePrime) {
  auto cluster = makeCluster(2);
  auto r = MaglevLoadBalancerFactory::create(*cluster, 65536, "clusters[1].maglev_lb_config");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("clusters[1].maglev_lb_config.table_size"), absl::string_view::npos);
  EXPECT_NE(r.status().message().find("prime"), absl::string_view::npos);
  EXPECT_FALSE(MaglevLoadBalancerFactory::create(*cluster, kMaxMaglevTableSize + 2, "p").ok());
  auto ok = MaglevLoadBalancerFactory::create(*cluster, 251, "p");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)->table().size(), 251u);
}

TEST(MaglevLoadBalancerTest, PrimalityCheck) {
  EXPECT_TRUE(isPrime(2));
  EXPECT_TRUE(isPrime(65537));
  EXPECT_TRUE(isPrime(5000011));
  EXPECT_FALSE(isPrime(1));
  EXPECT_FALSE(isPrime(65535));
}

}  // namespace
}  // namespace courier::upstream
