// Envoy's circuit breakers for one cluster: how many connections, pending
// requests, requests and retries are open across every worker, against the
// limits of the cluster's DEFAULT-priority thresholds. Atomics, not locks:
// a worker checks and counts without waiting for another.
#pragma once

#include <atomic>
#include <cstdint>

namespace courier::upstream {

class ResourceLimit {
 public:
  explicit ResourceLimit(uint64_t max) : max_(max) {}
  bool canCreate() const { return count_.load(std::memory_order_relaxed) < max_; }
  void inc() { count_.fetch_add(1, std::memory_order_relaxed); }
  void dec() { count_.fetch_sub(1, std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  uint64_t max() const { return max_; }

 private:
  const uint64_t max_;
  std::atomic<uint64_t> count_{0};
};

// Envoy's defaults: 1024 of each, 3 retries.
struct ResourceManager {
  ResourceManager(uint64_t max_connections = 1024, uint64_t max_pending_requests = 1024,
                  uint64_t max_requests = 1024, uint64_t max_retries = 3)
      : connections(max_connections),
        pending_requests(max_pending_requests),
        requests(max_requests),
        retries(max_retries) {}
  ResourceLimit connections;
  ResourceLimit pending_requests;
  ResourceLimit requests;
  ResourceLimit retries;
};

}  // namespace courier::upstream
