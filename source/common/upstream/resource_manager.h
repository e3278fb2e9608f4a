// Envoy's circuit breakers for one cluster: how many connections, pending
// requests, requests and retries are open across every worker, against the
// limits of one routing priority's thresholds (a cluster has a DEFAULT and a
// HIGH one). Atomics, not locks:
// a worker checks and counts without waiting for another.
#pragma once

#include <atomic>
#include <algorithm>
#include <cstdint>
#include <optional>

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

// circuit_breakers.thresholds[].retry_budget: concurrent retries limited to a
// share of the requests (active and pending) instead of max_retries.
struct RetryBudget {
  double budget_percent = 20.0;
  uint32_t min_retry_concurrency = 3;
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
  // Set: `retries` counts, and this budget (not retries.max()) limits.
  std::optional<RetryBudget> retry_budget;

  // The retry limit now: max_retries, or with a budget
  // max(budget_percent of active + pending requests, min_retry_concurrency).
  uint64_t maxRetries() const {
    if (!retry_budget.has_value()) return retries.max();
    const double active = static_cast<double>(requests.count() + pending_requests.count());
    const uint64_t by_share = static_cast<uint64_t>(retry_budget->budget_percent / 100.0 * active);
    return std::max<uint64_t>(by_share, retry_budget->min_retry_concurrency);
  }
  bool canRetry() const { return retries.count() < maxRetries(); }
};

}  // namespace courier::upstream
