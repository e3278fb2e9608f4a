// MAGLEV load balancing (Google's Maglev consistent hashing): a prime-sized
// lookup table filled by each host's own permutation of slots, heavier hosts
// claiming slots more often; a pick is table[hash % size].
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "source/common/upstream/load_balancer.h"

namespace courier::upstream {

inline constexpr uint64_t kDefaultMaglevTableSize = 65537;
// Envoy's upper bound for table_size.
inline constexpr uint64_t kMaxMaglevTableSize = 5000011;

// Immutable and shared by all workers.
class MaglevTable {
 public:
  MaglevTable(const Cluster& cluster, uint64_t table_size, bool use_hostname = false);
  // Index into the cluster's hosts; the table must not be empty.
  uint32_t hostFor(uint64_t hash) const { return table_[hash % table_.size()]; }
  size_t size() const { return table_.size(); }
  size_t hostCount() const { return host_count_; }
  size_t bytes() const { return table_.capacity() * sizeof(uint32_t); }

 private:
  std::vector<uint32_t> table_;
  size_t host_count_ = 0;
};

class MaglevLoadBalancer : public LoadBalancer {
 public:
  MaglevLoadBalancer(const Cluster& cluster, std::shared_ptr<const MaglevTable> table)
      : cluster_(cluster), table_(std::move(table)) {}
  const Host* chooseHost(const LoadBalancerContext* context) override;

 private:
  const Cluster& cluster_;
  const std::shared_ptr<const MaglevTable> table_;
  FastRandom random_;
};

class MaglevLoadBalancerFactory : public LoadBalancerFactory {
 public:
  // table_size must be prime; errors name config_path + ".table_size".
  static absl::StatusOr<std::shared_ptr<const MaglevLoadBalancerFactory>> create(const Cluster& cluster,
                                                                               uint64_t table_size,
                                                                               const std::string& config_path,
                                                                               bool use_hostname = false);
  MaglevLoadBalancerFactory(const Cluster& cluster, uint64_t table_size, bool use_hostname = false)
      : table_size_(table_size),
        use_hostname_(use_hostname),
        table_(std::make_shared<const MaglevTable>(cluster, table_size, use_hostname)) {}
  std::unique_ptr<LoadBalancer> create(const Cluster& cluster) const override;
  std::shared_ptr<const LoadBalancerFactory> forHosts(const Cluster& cluster) const override {
    return std::make_shared<MaglevLoadBalancerFactory>(cluster, table_size_, use_hostname_);
  }
  const MaglevTable& table() const { return *table_; }

 private:
  uint64_t table_size_;
  bool use_hostname_;
  std::shared_ptr<const MaglevTable> table_;
};

bool isPrime(uint64_t n);

}  // namespace courier::upstream
