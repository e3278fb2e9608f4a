#include "source/common/upstream/maglev_lb.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "source/common/upstream/hash.h"

namespace courier::upstream {

bool isPrime(uint64_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint64_t d = 3; d * d <= n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

MaglevTable::MaglevTable(const Cluster& cluster, uint64_t table_size, bool use_hostname) {
  const auto& hosts = cluster.hosts;
  host_count_ = hosts.size();
  if (hosts.empty()) return;
  const uint64_t m = table_size;
  // Each host walks its own permutation of the slots: start at offset, step
  // by skip. A prime size makes every skip visit every slot.
  struct Walker {
    uint64_t offset;
    uint64_t skip;
    uint64_t next = 0;    // position in the permutation
    uint64_t filled = 0;  // slots claimed
  };
  std::vector<Walker> walkers;
  walkers.reserve(hosts.size());
  uint32_t max_weight = 0;
  for (const auto& h : hosts) {
    const std::string key = hashKeyOf(*h, use_hostname);
    walkers.push_back({xxHash64(key, 0) % m, xxHash64(key, 1) % (m - 1) + 1});
    max_weight = std::max(max_weight, h->weight);
  }
  constexpr uint32_t kEmpty = UINT32_MAX;
  table_.assign(m, kEmpty);
  uint64_t filled = 0;
  // Round r lets host i hold up to r * weight_i / max_weight slots, so the
  // heaviest host claims one slot per round and the others in proportion.
  for (uint64_t round = 1; filled < m; ++round) {
    for (uint32_t i = 0; i < hosts.size() && filled < m; ++i) {
      Walker& w = walkers[i];
      if (static_cast<double>(w.filled) >= static_cast<double>(round) * hosts[i]->weight / max_weight) continue;
      uint64_t slot;
      do {
        slot = (w.offset + w.next * w.skip) % m;
        ++w.next;
      } while (table_[slot] != kEmpty);
      table_[slot] = i;
      ++w.filled;
      ++filled;
    }
  }
}

std::unique_ptr<LoadBalancer> MaglevLoadBalancerFactory::create(const Cluster& cluster) const {
  // A table built for another host set would index past these hosts: a
  // cluster whose hosts changed without forHosts() gets a private table.
  if (table_->hostCount() != cluster.hosts.size()) {
    return std::make_unique<MaglevLoadBalancer>(cluster, std::make_shared<const MaglevTable>(cluster, table_size_, use_hostname_));
  }
  return std::make_unique<MaglevLoadBalancer>(cluster, table_);
}

const Host* MaglevLoadBalancer::chooseHost(const LoadBalancerContext* context) {
  if (table_->size() == 0) return nullptr;
  std::optional<uint64_t> hash;
  if (context != nullptr) hash = context->hashKey();
  // No hash policy matched: a random slot, as Envoy does.
  return cluster_.hosts[table_->hostFor(hash.has_value() ? *hash : random_.next())].get();
}

absl::StatusOr<std::shared_ptr<const MaglevLoadBalancerFactory>> MaglevLoadBalancerFactory::create(
    const Cluster& cluster, uint64_t table_size, const std::string& config_path, bool use_hostname) {
  if (table_size > kMaxMaglevTableSize) {
    return absl::InvalidArgumentError(absl::StrCat(config_path, ".table_size: ", table_size,
                                                   " exceeds the limit of ", kMaxMaglevTableSize));
  }
  if (!isPrime(table_size)) {
    return absl::InvalidArgumentError(absl::StrCat(config_path, ".table_size: ", table_size, " is not a prime number"));
  }
  return std::make_shared<const MaglevLoadBalancerFactory>(cluster, table_size, use_hostname);
}

}  // namespace courier::upstream
