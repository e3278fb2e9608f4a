// Renders a Store the way Envoy's admin does: text and JSON for /stats and
// the Prometheus exposition format for /stats/prometheus, with the same
// ordering, number formatting and `filter` / `usedonly` / `type` semantics.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "source/common/stats/store.h"

namespace re2 {
class RE2;
}

namespace courier::stats {

enum class StatsType { All, Counters, Gauges, Histograms, TextReadouts };
enum class HistogramBuckets { None, Cumulative, Disjoint };

struct RenderParams {
  bool used_only = false;
  // RE2 searched anywhere in the full stat name (Envoy: "Regular expression
  // (Google re2) for filtering stats"); null shows everything.
  std::shared_ptr<const re2::RE2> filter;
  StatsType type = StatsType::All;
  HistogramBuckets histogram_buckets = HistogramBuckets::None;
};

// "name: value" lines for counters and gauges sorted by name, then
// "name: P0(interval,cumulative) ..." lines for histograms.
std::string renderText(const Store& store, const RenderParams& params);
// {"stats":[{"name":..,"value":..},...,{"histograms":{...}}]}
std::string renderJson(const Store& store, const RenderParams& params);
// "# TYPE envoy_cluster_upstream_cx_total counter" and tagged samples.
std::string renderPrometheus(const Store& store, const RenderParams& params);

// Prometheus metric/label name: every char outside [a-zA-Z0-9_] becomes '_'.
std::string prometheusSanitize(std::string_view name);

}  // namespace courier::stats
