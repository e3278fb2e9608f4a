// RING_HASH load balancing (Ketama-style consistent hashing): each host owns
// points on a 64-bit ring in proportion to its weight; a request's hash goes to
// the first point at or after it. The ring is built once per cluster version.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "source/common/upstream/load_balancer.h"

namespace courier::upstream {

enum class HashFunction { XxHash, MurmurHash2 };

struct RingHashConfig {
  uint64_t minimum_ring_size = 1024;
  uint64_t maximum_ring_size = 8 * 1024 * 1024;
  HashFunction hash_function = HashFunction::XxHash;
  // common_lb_config.consistent_hashing_lb_config.use_hostname_for_hashing:
  // place hosts by endpoint hostname, so placement survives IP changes.
  bool use_hostname_for_hashing = false;
};

// Envoy's upper bound for both ring sizes.
inline constexpr uint64_t kMaxRingSize = 8 * 1024 * 1024;

// Immutable and shared by all workers: lookups only read it.
class HashRing {
 public:
  HashRing(const Cluster& cluster, const RingHashConfig& config);
  // Index into the cluster's hosts; the ring must not be empty.
  uint32_t hostFor(uint64_t hash) const;
  size_t size() const { return hashes_.size(); }
  size_t hostCount() const { return host_count_; }
  // Bytes held by the ring (for the memory-per-host figure).
  size_t bytes() const { return hashes_.capacity() * sizeof(uint64_t) + hosts_.capacity() * sizeof(uint32_t); }

 private:
  // Two parallel arrays sorted by hash: the binary search touches only hashes_.
  std::vector<uint64_t> hashes_;
  std::vector<uint32_t> hosts_;
  size_t host_count_ = 0;
};

class RingHashLoadBalancer : public LoadBalancer {
 public:
  RingHashLoadBalancer(const Cluster& cluster, std::shared_ptr<const HashRing> ring)
      : cluster_(cluster), ring_(std::move(ring)) {}
  const Host* chooseHost(const LoadBalancerContext* context) override;

 private:
  const Cluster& cluster_;
  const std::shared_ptr<const HashRing> ring_;
  FastRandom random_;
};

class RingHashLoadBalancerFactory : public LoadBalancerFactory {
 public:
  // Errors name the field under config_path (e.g. "...ring_hash_lb_config").
  static absl::StatusOr<std::shared_ptr<const RingHashLoadBalancerFactory>> create(const Cluster& cluster,
                                                                                 const RingHashConfig& config,
                                                                                 const std::string& config_path);
  RingHashLoadBalancerFactory(const Cluster& cluster, const RingHashConfig& config)
      : config_(config), ring_(std::make_shared<const HashRing>(cluster, config)) {}
  std::unique_ptr<LoadBalancer> create(const Cluster& cluster) const override;
  std::shared_ptr<const LoadBalancerFactory> forHosts(const Cluster& cluster) const override {
    return std::make_shared<RingHashLoadBalancerFactory>(cluster, config_);
  }
  const HashRing& ring() const { return *ring_; }

 private:
  RingHashConfig config_;
  std::shared_ptr<const HashRing> ring_;
};

}  // namespace courier::upstream
