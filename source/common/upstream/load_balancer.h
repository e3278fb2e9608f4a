// Per-worker host selection over an immutable cluster. The state (round-robin
// position, random generator, EDF queue) lives on the worker, so picks take no
// lock; what is costly to build (hash ring, Maglev table) is shared read-only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "source/common/network/address.h"
#include "source/common/upstream/cluster.h"
#include "source/common/upstream/edf_scheduler.h"

namespace courier::upstream {

// What the caller knows about the request that a balancer may use.
class LoadBalancerContext {
 public:
  virtual ~LoadBalancerContext() = default;
  // The hash the route's (or tcp_proxy's) hash_policy produced, if any did.
  // Callers compute it (source IP included) so balancers stay protocol-blind.
  virtual std::optional<uint64_t> hashKey() const = 0;
  // nullptr when there is no downstream connection (e.g. a health check).
  virtual const network::Address* downstreamRemoteAddress() const = 0;
  // Where the downstream connection was headed (its original destination
  // when redirected); ORIGINAL_DST clusters route there.
  virtual const network::Address* downstreamLocalAddress() const { return nullptr; }
  // The value of the cluster's original_dst_host_header, if the request had it.
  virtual std::optional<std::string_view> originalDstHost() const { return std::nullopt; }
};

// A context whose values are known before the pick.
class FixedLoadBalancerContext : public LoadBalancerContext {
 public:
  FixedLoadBalancerContext() = default;
  FixedLoadBalancerContext(std::optional<uint64_t> hash, const network::Address* remote)
      : hash_(hash), remote_(remote) {}
  std::optional<uint64_t> hashKey() const override { return hash_; }
  const network::Address* downstreamRemoteAddress() const override { return remote_; }
  const network::Address* downstreamLocalAddress() const override { return local_; }
  std::optional<std::string_view> originalDstHost() const override {
    if (!original_dst_host_.has_value()) return std::nullopt;
    return std::string_view(*original_dst_host_);
  }
  void setDownstreamLocalAddress(const network::Address* local) { local_ = local; }
  void setOriginalDstHost(std::optional<std::string> host) { original_dst_host_ = std::move(host); }

 private:
  std::optional<uint64_t> hash_;
  const network::Address* remote_ = nullptr;
  const network::Address* local_ = nullptr;
  std::optional<std::string> original_dst_host_;
};

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // nullptr when the cluster has no usable host. context may be nullptr.
  virtual const Host* chooseHost(const LoadBalancerContext* context) = 0;
};

class LoadBalancerFactory {
 public:
  virtual ~LoadBalancerFactory() = default;
  // Worker thread. The balancer may borrow from this factory and the
  // cluster; the caller keeps both alive longer than the balancer.
  virtual std::unique_ptr<LoadBalancer> create(const Cluster& cluster) const = 0;
  // The same policy and settings for a new host set (an EDS update): whoever
  // replaces a cluster's hosts calls this on the main thread, since a ring or
  // table indexes the hosts it was built from.
  virtual std::shared_ptr<const LoadBalancerFactory> forHosts(const Cluster& cluster) const = 0;
};

// Balancers draw many numbers per second per worker; a xorshift64* is
// plenty for spreading load and costs a few cycles.
class FastRandom {
 public:
  FastRandom();
  explicit FastRandom(uint64_t seed) : state_(seed == 0 ? 0x9e3779b97f4a7c15ULL : seed) {}
  uint64_t next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545f4914f6cdd1dULL;
  }
  // Uniform in [0, n) without the modulo bias mattering at these ranges.
  uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64); }

 private:
  uint64_t state_;
};

// Plain rotation when weights are equal; when they differ, an earliest-
// deadline-first schedule (edf_scheduler.h) with exact proportions over each
// cycle of sum(weights) picks and a heavy host's turns spread out: O(log n)
// per pick, or a table read when the cycle is short. The schedule starts at a
// random point of its cycle per balancer, so workers do not all send their
// first requests to the same host.
class RoundRobinLoadBalancer : public LoadBalancer {
 public:
  explicit RoundRobinLoadBalancer(const Cluster& cluster);
  // `offset` places a weighted schedule's start (WeightedRoundRobin).
  RoundRobinLoadBalancer(const Cluster& cluster, uint32_t offset);
  ~RoundRobinLoadBalancer() override;
  const Host* chooseHost(const LoadBalancerContext* context) override;

 private:
  // next_ when not rotating: before the first pick (the offset still to
  // draw, or given), or following the schedule. Plain rotation, the common
  // case, then costs one comparison.
  static constexpr uint32_t kUndecided = UINT32_MAX;
  static constexpr uint32_t kUndecidedWithOffset = UINT32_MAX - 1;
  static constexpr uint32_t kScheduled = UINT32_MAX - 2;
  const Host* notRotating();

  const Cluster& cluster_;
  // Nothing is looked at until the first pick (a worker may never pick
  // from most of 10k clusters): then the weights are compared, and unequal
  // ones get their schedule. The equal-weight balancer every plain cluster
  // has on every worker stays four words.
  std::unique_ptr<WeightedRoundRobin> schedule_;
  // Rotation position, or one of the states above.
  uint32_t next_;
  uint32_t offset_;
};

// Wraps a policy's balancer with host health: while every host is healthy a
// pick costs one extra relaxed load; otherwise a pick that lands on an
// unhealthy host is redrawn (hash policies with a rehashed key, so the
// choice stays consistent per key), then scanned for. Degraded hosts
// (health_flag::kDegradedMask) take only the share of picks healthy hosts
// cannot, by Envoy's arithmetic for one priority level (singleLevelShare()).
// When too few hosts are healthy or degraded (Cluster::healthy_panic_threshold)
// all hosts serve, as Envoy's panic mode, counted in lb_healthy_panic.
class HealthFilteringLoadBalancer : public LoadBalancer {
 public:
  HealthFilteringLoadBalancer(const Cluster& cluster, std::unique_ptr<LoadBalancer> inner)
      : cluster_(cluster), inner_(std::move(inner)) {}
  const Host* chooseHost(const LoadBalancerContext* context) override {
    const Host* host = inner_->chooseHost(context);
    if (host == nullptr) return nullptr;
    const uint32_t unhealthy = cluster_.unhealthy_hosts.load();
    if (unhealthy == 0) return host;
    return pickHealthy(host, unhealthy, context);
  }
  // For a caller that decides panic and degraded load itself (priority
  // levels): a healthy host only (nullptr if none), a degraded host only,
  // or any host.
  const Host* chooseHealthy(const LoadBalancerContext* context) {
    const Host* host = inner_->chooseHost(context);
    // The count first: while all are healthy the host itself is not read.
    if (host == nullptr || cluster_.unhealthy_hosts.load() == 0 || host->healthy()) return host;
    return redraw(context, HostHealth::kHealthy);
  }
  const Host* chooseDegraded(const LoadBalancerContext* context) {
    const Host* host = inner_->chooseHost(context);
    if (host == nullptr || host->degraded()) return host;
    return redraw(context, HostHealth::kDegraded);
  }
  const Host* chooseAny(const LoadBalancerContext* context) { return inner_->chooseHost(context); }
  LoadBalancer& inner() { return *inner_; }

 private:
  const Host* pickHealthy(const Host* first, uint32_t unhealthy, const LoadBalancerContext* context);
  // A host of coarse health `want` by redraws, then a scan; nullptr if none.
  const Host* redraw(const LoadBalancerContext* context, HostHealth want);

  const Cluster& cluster_;
  std::unique_ptr<LoadBalancer> inner_;
  FastRandom random_;
};

// The cluster's balancer for this worker: its lb_factory's, else round
// robin, behind a HealthFilteringLoadBalancer; with priority levels or
// locality weighting (Cluster::layout) one such per group behind a
// PriorityLoadBalancer (priority_lb.h).
std::unique_ptr<LoadBalancer> createLoadBalancer(const Cluster& cluster);
// The same without the priority layer: for one group's view.
std::unique_ptr<HealthFilteringLoadBalancer> createHealthFilteringLoadBalancer(const Cluster& cluster);

// The string a consistent-hash balancer places a host by: its address, or its
// hostname when asked (hosts without one fall back to the address).
std::string hashKeyOf(const Host& host, bool use_hostname);

// Whether any two hosts' weights differ (the weighted variants cost more).
bool hasUnequalWeights(const Cluster& cluster);

}  // namespace courier::upstream
