#include "source/common/upstream/ring_hash_lb.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "source/common/upstream/hash.h"

namespace courier::upstream {

HashRing::HashRing(const Cluster& cluster, const RingHashConfig& config) {
  const auto& hosts = cluster.hosts;
  host_count_ = hosts.size();
  if (hosts.empty()) return;
  double total = 0;
  uint32_t min_weight = UINT32_MAX;
  for (const auto& h : hosts) {
    total += h->weight;
    min_weight = std::min(min_weight, h->weight);
  }
  // Scale so the lightest host gets at least its share of minimum_ring_size
  // entries (whole entries), capped at maximum_ring_size, as Envoy sizes it.
  const double min_share = min_weight / total;
  const double scale =
      std::min(std::ceil(min_share * config.minimum_ring_size) / min_share, double(config.maximum_ring_size));
  const size_t expected = static_cast<size_t>(scale) + hosts.size();

  std::vector<std::pair<uint64_t, uint32_t>> points;
  points.reserve(expected);
  // Running totals round fairly: host i ends at floor(sum of shares so far).
  double target = 0;
  size_t placed = 0;
  std::string key;
  for (uint32_t i = 0; i < hosts.size(); ++i) {
    target += scale * (hosts[i]->weight / total);
    const std::string address = hashKeyOf(*hosts[i], config.use_hostname_for_hashing);
    for (uint64_t n = 0; placed < target; ++n, ++placed) {
      // Ketama keys: "<address>_<replica>".
      key = absl::StrCat(address, "_", n);
      const uint64_t hash =
          config.hash_function == HashFunction::XxHash ? xxHash64(key) : murmurHash2_64(key);
      points.emplace_back(hash, i);
    }
  }
  std::sort(points.begin(), points.end());
  hashes_.reserve(points.size());
  hosts_.reserve(points.size());
  for (const auto& [hash, host] : points) {
    hashes_.push_back(hash);
    hosts_.push_back(host);
  }
}

uint32_t HashRing::hostFor(uint64_t hash) const {
  auto it = std::lower_bound(hashes_.begin(), hashes_.end(), hash);
  // Past the last point the ring wraps to the first.
  if (it == hashes_.end()) it = hashes_.begin();
  return hosts_[it - hashes_.begin()];
}

std::unique_ptr<LoadBalancer> RingHashLoadBalancerFactory::create(const Cluster& cluster) const {
  // A ring built for another host set would index past these hosts: a
  // cluster whose hosts changed without forHosts() gets a private ring.
  if (ring_->hostCount() != cluster.hosts.size()) {
    return std::make_unique<RingHashLoadBalancer>(cluster, std::make_shared<const HashRing>(cluster, config_));
  }
  return std::make_unique<RingHashLoadBalancer>(cluster, ring_);
}

const Host* RingHashLoadBalancer::chooseHost(const LoadBalancerContext* context) {
  if (ring_->size() == 0) return nullptr;
  std::optional<uint64_t> hash;
  if (context != nullptr) hash = context->hashKey();
  // No hash policy matched: Envoy sends the request to a random point.
  return cluster_.hosts[ring_->hostFor(hash.has_value() ? *hash : random_.next())].get();
}

absl::StatusOr<std::shared_ptr<const RingHashLoadBalancerFactory>> RingHashLoadBalancerFactory::create(
    const Cluster& cluster, const RingHashConfig& config, const std::string& config_path) {
  if (config.minimum_ring_size > kMaxRingSize) {
    return absl::InvalidArgumentError(absl::StrCat(config_path, ".minimum_ring_size: ", config.minimum_ring_size,
                                                   " exceeds the limit of ", kMaxRingSize));
  }
  if (config.maximum_ring_size > kMaxRingSize) {
    return absl::InvalidArgumentError(absl::StrCat(config_path, ".maximum_ring_size: ", config.maximum_ring_size,
                                                   " exceeds the limit of ", kMaxRingSize));
  }
  if (config.minimum_ring_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat(config_path, ".minimum_ring_size: must be at least 1"));
  }
  if (config.minimum_ring_size > config.maximum_ring_size) {
    return absl::InvalidArgumentError(absl::StrCat(config_path, ".minimum_ring_size: ", config.minimum_ring_size,
                                                   " is greater than maximum_ring_size ", config.maximum_ring_size));
  }
  return std::make_shared<const RingHashLoadBalancerFactory>(cluster, config);
}

}  // namespace courier::upstream
