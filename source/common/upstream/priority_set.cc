#include "source/common/upstream/priority_set.h"

#include <algorithm>

namespace courier::upstream {

namespace {

uint32_t availability(uint32_t factor, uint32_t count, uint32_t hosts) {
  if (hosts == 0) return 0;
  return static_cast<uint32_t>(std::min<uint64_t>(100, uint64_t{factor} * count / hosts));
}

// Hands out up to `total` percent over the levels by availability scaled by
// the normalised total; returns the first level with any availability (-1:
// none) and leaves the percent not handed out in `total`.
int distribute(std::vector<uint32_t>& load, const std::vector<uint32_t>& available, uint32_t& total,
               uint32_t normalised) {
  int first = -1;
  for (size_t i = 0; i < available.size(); ++i) {
    if (first < 0 && available[i] > 0) first = static_cast<int>(i);
    load[i] = std::min(total, available[i] * 100 / normalised);
    total -= load[i];
  }
  return first;
}

bool levelInPanic(const LevelHealth& level, double panic_threshold) {
  const double usable = level.hosts == 0 ? 0.0 : 100.0 * (level.healthy + level.degraded) / level.hosts;
  return usable < panic_threshold;
}

}  // namespace

PriorityLoad computePriorityLoad(const std::vector<LevelHealth>& levels, uint32_t overprovisioning_factor,
                                 double panic_threshold) {
  const size_t n = std::max<size_t>(levels.size(), 1);
  PriorityLoad out;
  out.load.assign(n, 0);
  out.degraded.assign(n, 0);
  out.panic.assign(n, false);
  std::vector<uint32_t> healthy(n, 0);
  std::vector<uint32_t> degraded(n, 0);
  uint64_t sum = 0;
  for (size_t i = 0; i < levels.size(); ++i) {
    healthy[i] = availability(overprovisioning_factor, levels[i].healthy, levels[i].hosts);
    degraded[i] = availability(overprovisioning_factor, levels[i].degraded, levels[i].hosts);
    sum += healthy[i] + degraded[i];
  }
  const uint32_t total = static_cast<uint32_t>(std::min<uint64_t>(100, sum));
  if (total > 0) {
    uint32_t left = 100;
    const int first_healthy = distribute(out.load, healthy, left, total);
    const int first_degraded = distribute(out.degraded, degraded, left, total);
    if (left > 0) {
      if (first_healthy >= 0) {
        out.load[first_healthy] += left;
      } else {
        out.degraded[first_degraded] += left;
      }
    }
  }
  // Panic disabled and nothing available: the load must still add up to 100;
  // level 0 takes it and its healthy-only picks find nothing.
  if (panic_threshold == 0 && total == 0) {
    out.load[0] = 100;
    return out;
  }
  bool all_panic = true;
  for (size_t i = 0; i < n; ++i) {
    if (total < 100) out.panic[i] = levelInPanic(i < levels.size() ? levels[i] : LevelHealth{}, panic_threshold);
    all_panic = all_panic && out.panic[i];
  }
  if (!all_panic) return out;
  // Every level in panic: load by host count, regardless of health.
  uint64_t total_hosts = 0;
  for (const auto& l : levels) total_hosts += l.hosts;
  std::fill(out.load.begin(), out.load.end(), 0);
  std::fill(out.degraded.begin(), out.degraded.end(), 0);
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

PriorityChoice choosePriority(const PriorityLoad& load, uint64_t draw) {
  const uint64_t point = draw % 100 + 1;
  uint64_t running = 0;
  for (uint32_t i = 0; i < load.load.size(); ++i) {
    running += load.load[i];
    if (point <= running) return {i, false};
  }
  for (uint32_t i = 0; i < load.degraded.size(); ++i) {
    running += load.degraded[i];
    if (point <= running) return {i, true};
  }
  return {0, false};
}

LevelShare singleLevelShare(const LevelHealth& level, uint32_t overprovisioning_factor, double panic_threshold) {
  LevelShare out;
  const uint32_t healthy = availability(overprovisioning_factor, level.healthy, level.hosts);
  const uint32_t degraded = availability(overprovisioning_factor, level.degraded, level.hosts);
  const uint32_t total = std::min<uint32_t>(100, healthy + degraded);
  if (total > 0) {
    // Degraded hosts take what healthy ones leave, up to their share;
    // rounding leftovers go to healthy hosts when there are any.
    const uint32_t degraded_load =
        std::min<uint32_t>(100 - std::min<uint32_t>(100, healthy * 100 / total), degraded * 100 / total);
    out.healthy_load = healthy == 0 ? 0 : 100 - degraded_load;
  }
  if (panic_threshold == 0 && total == 0) return out;
  // With one level, a level in panic is a total panic: all hosts serve.
  out.panic = total < 100 && levelInPanic(level, panic_threshold);
  return out;
}

double effectiveLocalityWeight(uint32_t weight, uint32_t hosts, uint32_t healthy, uint32_t overprovisioning_factor) {
  if (hosts == 0) return 0;
  const double availability = std::min(1.0, overprovisioning_factor / 100.0 * healthy / hosts);
  return weight * availability;
}

void PriorityLayout::onHealthChange(const Host& host, int32_t unhealthy_delta, int32_t degraded_delta) const {
  if (host.priority >= levels.size()) return;
  const Level& level = levels[host.priority];
  level.all->unhealthy_hosts.add(unhealthy_delta);
  level.all->degraded_hosts.add(degraded_delta);
  generation.add(1);
  for (size_t i = 0; i < level.locality_index.size(); ++i) {
    if (level.locality_index[i] == host.locality) {
      level.localities[i]->unhealthy_hosts.add(unhealthy_delta);
      level.localities[i]->degraded_hosts.add(degraded_delta);
      return;
    }
  }
}

void PriorityLayout::recount() const {
  generation.add(1);
  for (const auto& level : levels) {
    recountHostCounts(*level.all);
    for (const auto& l : level.localities) recountHostCounts(*l);
  }
}

}  // namespace courier::upstream
