#include "source/common/upstream/load_balancer.h"

#include "source/common/common/random.h"
#include "source/common/upstream/priority_lb.h"

namespace courier::upstream {

// Seeded from the thread's generator: a std::random_device per balancer
// (two per cluster per worker) was most of the CPU of applying 10k clusters.
FastRandom::FastRandom() : FastRandom(threadRandom()()) {}

std::string hashKeyOf(const Host& host, bool use_hostname) {
  return use_hostname && !host.hostname.empty() ? host.hostname : host.address.asString();
}

bool hasUnequalWeights(const Cluster& cluster) {
  for (const auto& h : cluster.hosts) {
    if (h->weight != cluster.hosts.front()->weight) return true;
  }
  return false;
}

RoundRobinLoadBalancer::RoundRobinLoadBalancer(const Cluster& cluster)
    : cluster_(cluster), next_(kUndecided), offset_(0) {}

RoundRobinLoadBalancer::RoundRobinLoadBalancer(const Cluster& cluster, uint32_t offset)
    : cluster_(cluster), next_(kUndecidedWithOffset), offset_(offset) {}

RoundRobinLoadBalancer::~RoundRobinLoadBalancer() = default;

const Host* RoundRobinLoadBalancer::chooseHost(const LoadBalancerContext*) {
  if (next_ >= kScheduled) return notRotating();
  const auto& hosts = cluster_.hosts;
  const Host* h = hosts[next_].get();
  if (++next_ >= hosts.size()) next_ = 0;
  return h;
}

const Host* RoundRobinLoadBalancer::notRotating() {
  const auto& hosts = cluster_.hosts;
  if (next_ == kScheduled) return hosts[schedule_->pick()].get();
  // The first pick.
  if (hosts.empty()) return nullptr;
  if (!hasUnequalWeights(cluster_)) {
    next_ = hosts.size() > 1 ? 1 : 0;
    return hosts[0].get();
  }
  // A random start per balancer, so workers do not all begin on one host.
  if (next_ == kUndecided) offset_ = static_cast<uint32_t>(threadRandom()());
  schedule_ = std::make_unique<WeightedRoundRobin>(
      static_cast<uint32_t>(hosts.size()), [&hosts](uint32_t i) { return hosts[i]->weight; }, offset_);
  next_ = kScheduled;
  return hosts[schedule_->pick()].get();
}

namespace {

// The caller's context with its hash key moved to another point: redraws of
// a hashing balancer are then as consistent per key as the first draw.
class RehashedContext : public LoadBalancerContext {
 public:
  RehashedContext(const LoadBalancerContext* inner, uint64_t attempt) : inner_(inner), attempt_(attempt) {}
  std::optional<uint64_t> hashKey() const override {
    if (inner_ == nullptr) return std::nullopt;
    auto hash = inner_->hashKey();
    if (!hash.has_value()) return std::nullopt;
    // splitmix64's finaliser over the key and the attempt number.
    uint64_t z = *hash + attempt_ * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  const network::Address* downstreamRemoteAddress() const override {
    return inner_ == nullptr ? nullptr : inner_->downstreamRemoteAddress();
  }

 private:
  const LoadBalancerContext* inner_;
  uint64_t attempt_;
};

}  // namespace

const Host* HealthFilteringLoadBalancer::pickHealthy(const Host* first, uint32_t unhealthy,
                                                     const LoadBalancerContext* context) {
  const auto& hosts = cluster_.hosts;
  if (inHealthyPanic(cluster_, hosts.size(), std::min<size_t>(unhealthy, hosts.size()))) {
    cluster_.stats->lb_healthy_panic.inc();
    return first;
  }
  if (first->healthy()) return first;
  return redraw(context);
}

const Host* HealthFilteringLoadBalancer::redraw(const LoadBalancerContext* context) {
  const auto& hosts = cluster_.hosts;
  // Redraws keep the policy's distribution over the healthy hosts; a bounded
  // number of them, then a scan from a random start finds any healthy host.
  constexpr uint64_t kRedraws = 8;
  for (uint64_t attempt = 1; attempt <= kRedraws; ++attempt) {
    RehashedContext rehashed(context, attempt);
    const Host* host = inner_->chooseHost(&rehashed);
    if (host != nullptr && host->healthy()) return host;
  }
  const size_t start = random_.below(hosts.size());
  for (size_t i = 0; i < hosts.size(); ++i) {
    const Host* host = hosts[(start + i) % hosts.size()].get();
    if (host->healthy()) return host;
  }
  return nullptr;
}

std::unique_ptr<LoadBalancer> createLoadBalancer(const Cluster& cluster) {
  // A zone-only layout serves zone-aware balancers (zone_aware_lb.h); the
  // plain balancer ignores it.
  if (cluster.layout != nullptr && !cluster.layout->zone_only) return std::make_unique<PriorityLoadBalancer>(cluster);
  return createHealthFilteringLoadBalancer(cluster);
}

std::unique_ptr<HealthFilteringLoadBalancer> createHealthFilteringLoadBalancer(const Cluster& cluster) {
  std::unique_ptr<LoadBalancer> inner = cluster.lb_factory != nullptr
                                            ? cluster.lb_factory->create(cluster)
                                            : std::make_unique<RoundRobinLoadBalancer>(cluster);
  return std::make_unique<HealthFilteringLoadBalancer>(cluster, std::move(inner));
}

}  // namespace courier::upstream
