#include "source/common/upstream/load_balancer_factory.h"

#include <set>

#include "gtest/gtest.h"
#include "source/common/upstream/least_request_lb.h"
#include "source/common/upstream/maglev_lb.h"
#include "source/common/upstream/ring_hash_lb.h"
#include "test/common/upstream/lb_test_util.h"

namespace courier::upstream {
namespace {

using ProtoCluster = envoy::config::cluster::v3::Cluster;

absl::StatusOr<std::shared_ptr<const LoadBalancerFactory>> build(const ProtoCluster& proto, LbPolicy policy) {
  auto cluster = testing::makeCluster(3);
  cluster->lb_policy = policy;
  return createLoadBalancerFactory(proto, "clusters[0]", *cluster);
}

std::string errorOf(const ProtoCluster& proto, LbPolicy policy) {
  auto r = build(proto, policy);
  return r.ok() ? "" : std::string(r.status().message());
}

TEST(LoadBalancerFactoryTest, RoundRobinNeedsNoFactory) {
  auto r = build(ProtoCluster(), LbPolicy::RoundRobin);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, nullptr);
}

TEST(LoadBalancerFactoryTest, LeastRequestDefaultsAsEnvoy) {
  auto r = build(ProtoCluster(), LbPolicy::LeastRequest);
  ASSERT_TRUE(r.ok());
  auto* f = dynamic_cast<const LeastRequestLoadBalancerFactory*>(r->get());
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->config().choice_count, 2u);
  EXPECT_EQ(f->config().active_request_bias, 1.0);
}

TEST(LoadBalancerFactoryTest, LeastRequestConfigIsRead) {
  ProtoCluster proto;
  proto.mutable_least_request_lb_config()->mutable_choice_count()->set_value(5);
  proto.mutable_least_request_lb_config()->mutable_active_request_bias()->set_default_value(0.5);
  auto r = build(proto, LbPolicy::LeastRequest);
  ASSERT_TRUE(r.ok());
  auto* f = dynamic_cast<const LeastRequestLoadBalancerFactory*>(r->get());
  EXPECT_EQ(f->config().choice_count, 5u);
  EXPECT_EQ(f->config().active_request_bias, 0.5);
}

TEST(LoadBalancerFactoryTest, ChoiceCountBelowTwoNamesTheField) {
  ProtoCluster proto;
  proto.mutable_least_request_lb_config()->mutable_choice_count()->set_value(1);
  EXPECT_EQ(errorOf(proto, LbPolicy::LeastRequest),
            "clusters[0].least_request_lb_config.choice_count: must be at least 2");
}

TEST(LoadBalancerFactoryTest, NegativeBiasNamesTheField) {
  ProtoCluster proto;
  proto.mutable_least_request_lb_config()->mutable_active_request_bias()->set_default_value(-1);
  EXPECT_NE(errorOf(proto, LbPolicy::LeastRequest).find("least_request_lb_config.active_request_bias"),
            std::string::npos);
}

TEST(LoadBalancerFactoryTest, RingHashConfigIsRead) {
  ProtoCluster proto;
  proto.mutable_ring_hash_lb_config()->mutable_minimum_ring_size()->set_value(3000);
  proto.mutable_ring_hash_lb_config()->set_hash_function(ProtoCluster::RingHashLbConfig::MURMUR_HASH_2);
  auto r = build(proto, LbPolicy::RingHash);
  ASSERT_TRUE(r.ok());
  auto* f = dynamic_cast<const RingHashLoadBalancerFactory*>(r->get());
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->ring().size(), 3000u);
}

TEST(LoadBalancerFactoryTest, RingSizeErrorsNameTheField) {
  ProtoCluster proto;
  proto.mutable_ring_hash_lb_config()->mutable_maximum_ring_size()->set_value(100);
  EXPECT_EQ(errorOf(proto, LbPolicy::RingHash),
            "clusters[0].ring_hash_lb_config.minimum_ring_size: 1024 is greater than maximum_ring_size 100");
  proto.mutable_ring_hash_lb_config()->mutable_maximum_ring_size()->set_value(kMaxRingSize * 2);
  EXPECT_NE(errorOf(proto, LbPolicy::RingHash).find("clusters[0].ring_hash_lb_config.maximum_ring_size"),
            std::string::npos);
}

TEST(LoadBalancerFactoryTest, MaglevTableSizeDefaultsToPrime65537) {
  auto r = build(ProtoCluster(), LbPolicy::Maglev);
  ASSERT_TRUE(r.ok());
  auto* f = dynamic_cast<const MaglevLoadBalancerFactory*>(r->get());
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->table().size(), 65537u);
}

TEST(LoadBalancerFactoryTest, MaglevNonPrimeTableSizeNamesTheField) {
  ProtoCluster proto;
  proto.mutable_maglev_lb_config()->mutable_table_size()->set_value(1000);
  EXPECT_EQ(errorOf(proto, LbPolicy::Maglev), "clusters[0].maglev_lb_config.table_size: 1000 is not a prime number");
}

TEST(LoadBalancerFactoryTest, TypedLoadBalancingPolicyIsRefused) {
  ProtoCluster proto;
  proto.mutable_load_balancing_policy()->add_policies();
  EXPECT_NE(errorOf(proto, LbPolicy::RoundRobin).find("clusters[0].load_balancing_policy"), std::string::npos);
}

TEST(LoadBalancerFactoryTest, FactoryMakesWorkingBalancers) {
  for (LbPolicy policy : {LbPolicy::Random, LbPolicy::LeastRequest, LbPolicy::RingHash, LbPolicy::Maglev}) {
    auto cluster = testing::makeCluster(3);
    cluster->lb_policy = policy;
    auto f = createLoadBalancerFactory(ProtoCluster(), "c", *cluster);
    ASSERT_TRUE(f.ok());
    cluster->lb_factory = *f;
    EXPECT_NE(createLoadBalancer(*cluster)->chooseHost(nullptr), nullptr);
  }
}

TEST(LoadBalancerFactoryTest, ForHostsRebuildsForANewHostSet) {
  for (LbPolicy policy : {LbPolicy::Random, LbPolicy::LeastRequest, LbPolicy::RingHash, LbPolicy::Maglev}) {
    auto cluster = testing::makeCluster(3);
    cluster->lb_policy = policy;
    auto f = createLoadBalancerFactory(ProtoCluster(), "c", *cluster);
    ASSERT_TRUE(f.ok());
    auto grown = testing::makeCluster(5);
    grown->lb_factory = (*f)->forHosts(*grown);
    auto lb = createLoadBalancer(*grown);
    std::set<const Host*> seen;
    for (int i = 0; i < 500; ++i) seen.insert(lb->chooseHost(nullptr));
    EXPECT_EQ(seen.size(), 5u) << int(policy);
  }
}

TEST(LoadBalancerFactoryTest, StaleHashTableIsNotUsedForADifferentHostSet) {
  // A cluster whose hosts shrank but kept the old factory must still pick
  // only its own hosts (never index past them).
  for (LbPolicy policy : {LbPolicy::RingHash, LbPolicy::Maglev}) {
    auto cluster = testing::makeCluster(10);
    cluster->lb_policy = policy;
    auto f = createLoadBalancerFactory(ProtoCluster(), "c", *cluster);
    ASSERT_TRUE(f.ok());
    auto shrunk = testing::makeCluster(2);
    shrunk->lb_factory = *f;
    auto lb = createLoadBalancer(*shrunk);
    for (int i = 0; i < 200; ++i) {
      EXPECT_NE(testing::indexOf(*shrunk, lb->chooseHost(nullptr)), SIZE_MAX);
    }
  }
}

TEST(LoadBalancerFactoryTest, HostnameHashingPlacesByHostname) {
  // Same hostnames on different addresses: with use_hostname_for_hashing the
  // ring and table agree; by address they differ.
  for (LbPolicy policy : {LbPolicy::RingHash, LbPolicy::Maglev}) {
    auto a = testing::makeCluster(5);
    auto b = testing::makeCluster(10);
    b->hosts.erase(b->hosts.begin(), b->hosts.begin() + 5);
    for (int i = 0; i < 5; ++i) {
      std::const_pointer_cast<Host>(a->hosts[i])->hostname = "h" + std::to_string(i);
      std::const_pointer_cast<Host>(b->hosts[i])->hostname = "h" + std::to_string(i);
    }
    a->lb_policy = b->lb_policy = policy;
    ProtoCluster proto;
    proto.mutable_common_lb_config()->mutable_consistent_hashing_lb_config()->set_use_hostname_for_hashing(true);
    a->lb_factory = *createLoadBalancerFactory(proto, "c", *a);
    b->lb_factory = *createLoadBalancerFactory(proto, "c", *b);
    auto la = createLoadBalancer(*a), lb = createLoadBalancer(*b);
    for (uint64_t k = 0; k < 200; ++k) {
      FixedLoadBalancerContext context(k * 0x9e3779b97f4a7c15ULL, nullptr);
      EXPECT_EQ(la->chooseHost(&context)->hostname, lb->chooseHost(&context)->hostname);
    }
  }
}

TEST(LoadBalancerFactoryTest, HashBalanceFactorIsRefused) {
  ProtoCluster proto;
  proto.mutable_common_lb_config()->mutable_consistent_hashing_lb_config()->mutable_hash_balance_factor()->set_value(150);
  EXPECT_NE(errorOf(proto, LbPolicy::RingHash).find("consistent_hashing_lb_config.hash_balance_factor"),
            std::string::npos);
  EXPECT_TRUE(build(proto, LbPolicy::RoundRobin).ok());
}

}  // namespace
}  // namespace courier::upstream
