#include "source/common/upstream/priority_set.h"

#include <algorithm>

namespace courier::upstream {

PriorityLoad computePriorityLoad(const std::vector<LevelHealth>& levels, uint32_t overprovisioning_factor,
                                 double panic_threshold) {
  const size_t n = std::max<size_t>(levels.size(), 1);
  PriorityLoad out;
  out.load.assign(n, 0);
  out.panic.assign(n, false);
  std::vector<uint32_t> availability(n, 0);
  uint64_t sum = 0;
  for (size_t i = 0; i < levels.size(); ++i) {
    if (levels[i].hosts == 0) continue;
    availability[i] = static_cast<uint32_t>(
        std::min<uint64_t>(100, uint64_t{overprovisioning_factor} * levels[i].healthy / levels[i].hosts));
    sum += availability[i];
  }
  const uint32_t total = static_cast<uint32_t>(std::min<uint64_t>(100, sum));
  if (total > 0) {
    uint32_t left = 100;
    int first = -1;
    for (size_t i = 0; i < n; ++i) {
      if (first < 0 && availability[i] > 0) first = static_cast<int>(i);
      out.load[i] = std::min(left, availability[i] * 100 / total);
      left -= out.load[i];
    }
    out.load[first] += left;
  }
  // Panic disabled and nothing available: the load must still add up to 100;
  // level 0 takes it and its healthy-only picks find nothing.
  if (panic_threshold == 0 && total == 0) {
    out.load[0] = 100;
    return out;
  }
  bool all_panic = true;
  for (size_t i = 0; i < n; ++i) {
    if (total < 100) {
      const uint32_t hosts = i < levels.size() ? levels[i].hosts : 0;
      const double healthy_pct = hosts == 0 ? 0.0 : 100.0 * levels[i].healthy / hosts;
      out.panic[i] = healthy_pct < panic_threshold;
    }
    all_panic = all_panic && out.panic[i];
  }
  if (!all_panic) return out;
  // Every level in panic: load by host count, regardless of health.
  uint64_t total_hosts = 0;
  for (const auto& l : levels) total_hosts += l.hosts;
  std::fill(out.load.begin(), out.load.end(), 0);
  if (total_hosts == 0) {
    out.load[0] = 100;
    return out;
  }
  uint32_t left = 100;
  int first = -1;
  for (size_t i = 0; i < levels.size(); ++i) {
    if (first < 0 && levels[i].hosts > 0) first = static_cast<int>(i);
    out.load[i] = static_cast<uint32_t>(100 * uint64_t{levels[i].hosts} / total_hosts);
    left -= out.load[i];
  }
  out.load[first] += left;
  return out;
}

uint32_t choosePriority(const std::vector<uint32_t>& load, uint64_t draw) {
  const uint64_t point = draw % 100 + 1;
  uint64_t running = 0;
  for (uint32_t i = 0; i < load.size(); ++i) {
    running += load[i];
    if (point <= running) return i;
  }
  return 0;
}

double effectiveLocalityWeight(uint32_t weight, uint32_t hosts, uint32_t healthy, uint32_t overprovisioning_factor) {
  if (hosts == 0) return 0;
  const double availability = std::min(1.0, overprovisioning_factor / 100.0 * healthy / hosts);
  return weight * availability;
}

void PriorityLayout::onHealthChange(const Host& host, int32_t delta) const {
  if (host.priority >= levels.size()) return;
  const Level& level = levels[host.priority];
  level.all->unhealthy_hosts.add(delta);
  generation.add(1);
  for (size_t i = 0; i < level.locality_index.size(); ++i) {
    if (level.locality_index[i] == host.locality) {
      level.localities[i]->unhealthy_hosts.add(delta);
      return;
    }
  }
}

namespace {
void recountView(const Cluster& view) {
  uint32_t unhealthy = 0;
  for (const auto& h : view.hosts) unhealthy += h->healthy() ? 0 : 1;
  view.unhealthy_hosts.set(unhealthy);
}
}  // namespace

void PriorityLayout::recount() const {
  generation.add(1);
  for (const auto& level : levels) {
    recountView(*level.all);
    for (const auto& l : level.localities) recountView(*l);
  }
}

}  // namespace courier::upstream
