#include "source/common/upstream/load_balancer_factory.h"
#include "source/common/common/field_error.h"

#include "absl/strings/str_cat.h"
#include "source/common/upstream/least_request_lb.h"
#include "source/common/upstream/maglev_lb.h"
#include "source/common/upstream/random_lb.h"
#include "source/common/upstream/ring_hash_lb.h"

namespace courier::upstream {
namespace {

using ProtoCluster = envoy::config::cluster::v3::Cluster;

absl::StatusOr<LeastRequestConfig> leastRequestConfig(const ProtoCluster& config, const std::string& path) {
  LeastRequestConfig out;
  if (!config.has_least_request_lb_config()) return out;
  const auto& lr = config.least_request_lb_config();
  if (lr.has_choice_count()) {
    if (lr.choice_count().value() < 2) return fieldError(path + ".choice_count", "must be at least 2");
    out.choice_count = lr.choice_count().value();
  }
  if (lr.has_active_request_bias()) {
    // The runtime override (runtime_key) has no runtime layer to read here.
    const double bias = lr.active_request_bias().default_value();
    if (!(bias >= 0.0)) return fieldError(path + ".active_request_bias.default_value", "must be at least 0.0");
    out.active_request_bias = bias;
  }
  if (lr.has_slow_start_config()) return fieldError(path + ".slow_start_config", "slow start is not supported");
  return out;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const LoadBalancerFactory>> createLoadBalancerFactory(const ProtoCluster& config,
                                                                                      const std::string& path,
                                                                                      const Cluster& cluster) {
  if (config.has_load_balancing_policy()) {
    // The envoy.load_balancing_policies.* protos are not in api/ yet, so the
    // typed form cannot be decoded; refusing beats silently round-robining.
    return fieldError(path + ".load_balancing_policy",
                      "typed load balancing policy extensions are not supported; use lb_policy");
  }
  // Consistent-hashing options shared by RING_HASH and MAGLEV.
  const auto& ch = config.common_lb_config().consistent_hashing_lb_config();
  const bool hashing = cluster.lb_policy == LbPolicy::RingHash || cluster.lb_policy == LbPolicy::Maglev;
  if (hashing && ch.has_hash_balance_factor()) {
    return fieldError(path + ".common_lb_config.consistent_hashing_lb_config.hash_balance_factor",
                      "bounded-load consistent hashing is not supported");
  }
  switch (cluster.lb_policy) {
    case LbPolicy::RoundRobin:
      return std::shared_ptr<const LoadBalancerFactory>();
    case LbPolicy::Random:
      return std::shared_ptr<const LoadBalancerFactory>(std::make_shared<RandomLoadBalancerFactory>());
    case LbPolicy::LeastRequest: {
      auto lr = leastRequestConfig(config, path + ".least_request_lb_config");
      if (!lr.ok()) return lr.status();
      return std::shared_ptr<const LoadBalancerFactory>(std::make_shared<LeastRequestLoadBalancerFactory>(*lr));
    }
    case LbPolicy::RingHash: {
      RingHashConfig rh;
      const auto& c = config.ring_hash_lb_config();
      if (c.has_minimum_ring_size()) rh.minimum_ring_size = c.minimum_ring_size().value();
      if (c.has_maximum_ring_size()) rh.maximum_ring_size = c.maximum_ring_size().value();
      rh.use_hostname_for_hashing = ch.use_hostname_for_hashing();
      rh.hash_function = c.hash_function() == ProtoCluster::RingHashLbConfig::MURMUR_HASH_2
                             ? HashFunction::MurmurHash2
                             : HashFunction::XxHash;
      auto f = RingHashLoadBalancerFactory::create(cluster, rh, path + ".ring_hash_lb_config");
      if (!f.ok()) return f.status();
      return std::shared_ptr<const LoadBalancerFactory>(*f);
    }
    case LbPolicy::Maglev: {
      const auto& c = config.maglev_lb_config();
      auto f = MaglevLoadBalancerFactory::create(
          cluster, c.has_table_size() ? c.table_size().value() : kDefaultMaglevTableSize, path + ".maglev_lb_config",
          ch.use_hostname_for_hashing());
      if (!f.ok()) return f.status();
      return std::shared_ptr<const LoadBalancerFactory>(*f);
    }
  }
  return std::shared_ptr<const LoadBalancerFactory>();
}

}  // namespace courier::upstream
