#include "source/common/upstream/priority_lb.h"

#include <algorithm>
#include <cstdint>

namespace courier::upstream {
namespace {

std::shared_ptr<const Cluster> makeView(const Cluster& parent, std::vector<HostConstSharedPtr> hosts) {
  auto view = std::make_shared<Cluster>(parent);
  view->layout = nullptr;
  // Only the parent's table is read (by the priority balancer).
  view->localities = {};
  view->hosts = std::move(hosts);
  if (parent.lb_factory != nullptr) view->lb_factory = parent.lb_factory->forHosts(*view);
  recountHostCounts(*view);
  return view;
}

}  // namespace

void buildPriorityLayout(Cluster& cluster) {
  cluster.layout = nullptr;
  uint32_t max_priority = 0;
  bool several = false;
  for (const auto& h : cluster.hosts) {
    if (h->priority != cluster.hosts.front()->priority) several = true;
    max_priority = std::max<uint32_t>(max_priority, h->priority);
  }
  const bool weighted = cluster.locality_weighted && !cluster.localities.empty() && !cluster.hosts.empty();
  // Zone routing needs one view per locality of the single level.
  const bool zone = !several && !weighted && cluster.zone_aware.has_value() && cluster.localities.size() >= 2 &&
                    !cluster.hosts.empty();
  if (!several && !weighted && !zone) return;
  std::vector<std::vector<HostConstSharedPtr>> by_level(max_priority + 1);
  for (const auto& h : cluster.hosts) by_level[h->priority].push_back(h);
  auto layout = std::make_shared<PriorityLayout>();
  layout->levels.resize(by_level.size());
  for (size_t p = 0; p < by_level.size(); ++p) {
    auto& level = layout->levels[p];
    if (weighted || zone) {
      std::vector<std::vector<HostConstSharedPtr>> by_locality(cluster.localities.size());
      for (const auto& h : by_level[p]) {
        if (h->locality < by_locality.size()) by_locality[h->locality].push_back(h);
      }
      for (size_t l = 0; l < by_locality.size(); ++l) {
        if (by_locality[l].empty()) continue;
        level.localities.push_back(makeView(cluster, std::move(by_locality[l])));
        level.locality_index.push_back(static_cast<uint16_t>(l));
      }
    }
    level.all = makeView(cluster, std::move(by_level[p]));
  }
  layout->zone_only = zone;
  cluster.layout = std::move(layout);
}

PriorityLoadBalancer::PriorityLoadBalancer(const Cluster& cluster) : cluster_(cluster), layout_(*cluster.layout) {
  balancers_.resize(layout_.levels.size());
  for (size_t p = 0; p < layout_.levels.size(); ++p) {
    const auto& level = layout_.levels[p];
    balancers_[p].all = createHealthFilteringLoadBalancer(*level.all);
    for (const auto& view : level.localities) {
      balancers_[p].localities.push_back(createHealthFilteringLoadBalancer(*view));
    }
    balancers_[p].cumulative.resize(level.localities.size());
    balancers_[p].degraded_cumulative.resize(level.localities.size());
  }
}

void PriorityLoadBalancer::recompute(uint32_t generation) {
  fresh_ = true;
  seen_generation_ = generation;
  const auto healthyOf = [](const Cluster& view) {
    const auto hosts = static_cast<uint32_t>(view.hosts.size());
    const uint32_t unhealthy = std::min(hosts, view.unhealthy_hosts.load());
    return LevelHealth{hosts, hosts - unhealthy, std::min(unhealthy, view.degraded_hosts.load())};
  };
  std::vector<LevelHealth> levels(layout_.levels.size());
  for (size_t p = 0; p < levels.size(); ++p) {
    const auto& level = layout_.levels[p];
    levels[p] = healthyOf(*level.all);
    double total = 0;
    double degraded_total = 0;
    for (size_t i = 0; i < level.localities.size(); ++i) {
      const LevelHealth h = healthyOf(*level.localities[i]);
      const uint32_t weight = cluster_.localities[level.locality_index[i]].weight;
      total += effectiveLocalityWeight(weight, h.hosts, h.healthy, cluster_.overprovisioning_factor);
      balancers_[p].cumulative[i] = total;
      // Picks for degraded hosts weigh localities by their degraded share.
      degraded_total += effectiveLocalityWeight(weight, h.hosts, h.degraded, cluster_.overprovisioning_factor);
      balancers_[p].degraded_cumulative[i] = degraded_total;
    }
  }
  load_ = computePriorityLoad(levels, cluster_.overprovisioning_factor, cluster_.healthy_panic_threshold);
}

const Host* PriorityLoadBalancer::chooseHost(const LoadBalancerContext* context) {
  refresh();
  std::optional<uint64_t> hash;
  if (context != nullptr) hash = context->hashKey();
  const PriorityChoice choice = choosePriority(load_, hash.has_value() ? *hash : random_.next());
  if (choice.priority >= balancers_.size()) return nullptr;
  return chooseInLevel(choice.priority, choice.degraded, context);
}

const Host* PriorityLoadBalancer::chooseInLevel(uint32_t priority, bool degraded, const LoadBalancerContext* context) {
  auto& lbs = balancers_[priority];
  // A locality by weight times availability; none available falls through
  // to the level's own rules, as Envoy's.
  const std::vector<double>& cumulative = degraded ? lbs.degraded_cumulative : lbs.cumulative;
  if (!cumulative.empty() && cumulative.back() > 0) {
    const double draw = static_cast<double>(random_.next() >> 11) * 0x1.0p-53 * cumulative.back();
    // The first running total above the draw; a locality of weight zero
    // never is (its total equals the one before it).
    size_t chosen = std::upper_bound(cumulative.begin(), cumulative.end(), draw) - cumulative.begin();
    if (chosen >= cumulative.size()) chosen = cumulative.size() - 1;
    return degraded ? lbs.localities[chosen]->chooseDegraded(context) : lbs.localities[chosen]->chooseHealthy(context);
  }
  if (load_.panic[priority]) {
    if (cluster_.stats != nullptr) cluster_.stats->lb_healthy_panic.inc();
    return lbs.all->chooseAny(context);
  }
  return degraded ? lbs.all->chooseDegraded(context) : lbs.all->chooseHealthy(context);
}

}  // namespace courier::upstream
