#include "source/common/stats/stats_render.h"

#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <vector>

namespace courier::stats {

namespace {

bool matchesFilter(const RenderParams& params, const std::string& name) {
  return params.filter == nullptr || re2::RE2::PartialMatch(name, *params.filter);
}

bool showCounterOrGauge(const RenderParams& params, const Metric& m) {
  return (!params.used_only || m.used()) && matchesFilter(params, m.name());
}

bool showHistogram(const RenderParams& params, const Histogram& h) {
  return (!params.used_only || h.usedSinceMerge()) && matchesFilter(params, h.name());
}

bool wantCounters(const RenderParams& p) {
  return p.type == StatsType::All || p.type == StatsType::Counters;
}
bool wantGauges(const RenderParams& p) {
  return p.type == StatsType::All || p.type == StatsType::Gauges;
}
bool wantHistograms(const RenderParams& p) {
  return p.type == StatsType::All || p.type == StatsType::Histograms;
}

// Counters and gauges interleaved by name, as Envoy's sorted map of both.
std::map<std::string, uint64_t> countersAndGauges(const Store& store, const RenderParams& params) {
  std::map<std::string, uint64_t> out;
  if (wantCounters(params)) {
    for (const Counter* c : store.counters()) {
      if (showCounterOrGauge(params, *c)) out.emplace(c->name(), c->value());
    }
  }
  if (wantGauges(params)) {
    for (const Gauge* g : store.gauges()) {
      if (showCounterOrGauge(params, *g)) out.emplace(g->name(), g->value());
    }
  }
  return out;
}

std::vector<const Histogram*> shownHistograms(const Store& store, const RenderParams& params) {
  std::vector<const Histogram*> out;
  if (!wantHistograms(params)) return out;
  for (const Histogram* h : store.histograms()) {
    if (showHistogram(params, *h)) out.push_back(h);
  }
  return out;
}

void appendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::string jsonNumber(double d) { return std::isnan(d) ? "null" : formatDouble(d); }

// Envoy's fmt "{:.32g}" for Prometheus bucket bounds and sums.
std::string longDouble(double d) {
  char buf[64];
  snprintf(buf, sizeof(buf), "%.32g", d);
  return buf;
}

// Envoy orders Prometheus groups by StatName, i.e. token by token: '.' sorts
// before every other character.
bool statNameLess(const std::string& a, const std::string& b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i] == b[i]) continue;
    if (a[i] == '.') return true;
    if (b[i] == '.') return false;
    return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]);
  }
  return a.size() < b.size();
}

struct StatNameLess {
  bool operator()(const std::string& a, const std::string& b) const { return statNameLess(a, b); }
};

std::string formattedTags(const std::vector<Tag>& tags) {
  std::string out;
  for (size_t i = 0; i < tags.size(); ++i) {
    if (i != 0) out += ',';
    out += prometheusSanitize(tags[i].name);
    out += "=\"";
    out += tags[i].value;
    out += '"';
  }
  return out;
}

template <class T, class Gen>
void prometheusGroups(std::string& out, const std::vector<T*>& metrics, const char* type,
                      const std::function<bool(const T&)>& show, Gen generate) {
  // Tags are computed from each name once per scrape (stats do not store them).
  struct Entry {
    std::string name;
    std::vector<Tag> tags;
    const T* metric;
  };
  std::map<std::string, std::vector<Entry>, StatNameLess> groups;
  for (const T* m : metrics) {
    if (!show(*m)) continue;
    std::vector<Tag> tags;
    std::string extracted = m->tagExtractedName(tags);
    groups[std::move(extracted)].push_back(Entry{m->name(), std::move(tags), m});
  }
  for (auto& [extracted, list] : groups) {
    const std::string name = "envoy_" + prometheusSanitize(extracted);
    out += "# TYPE " + name + " " + type + "\n";
    std::sort(list.begin(), list.end(), [](const Entry& a, const Entry& b) { return statNameLess(a.name, b.name); });
    for (const Entry& e : list) generate(out, name, *e.metric, e.tags);
    out += '\n';
  }
}

}  // namespace

std::string prometheusSanitize(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) c = '_';
  }
  return out;
}

std::string renderText(const Store& store, const RenderParams& params) {
  std::string out;
  for (const auto& [name, value] : countersAndGauges(store, params)) {
    out += name;
    out += ": ";
    out += std::to_string(value);
    out += '\n';
  }
  // Histograms come sorted from the store.
  for (const Histogram* h : shownHistograms(store, params)) {
    out += h->name();
    out += ": ";
    switch (params.histogram_buckets) {
      case HistogramBuckets::None:
        out += h->quantileSummary();
        break;
      case HistogramBuckets::Cumulative:
        out += h->bucketSummary(false);
        break;
      case HistogramBuckets::Disjoint:
        out += h->bucketSummary(true);
        break;
    }
    out += '\n';
  }
  return out;
}

std::string renderJson(const Store& store, const RenderParams& params) {
  std::string out = "{\"stats\":[";
  bool first = true;
  for (const auto& [name, value] : countersAndGauges(store, params)) {
    if (!first) out += ',';
    first = false;
    out += "{\"name\":";
    appendJsonString(out, name);
    out += ",\"value\":";
    out += std::to_string(value);
    out += '}';
  }

  const std::vector<const Histogram*> histograms = shownHistograms(store, params);
  if (!histograms.empty()) {
    if (!first) out += ',';
    out += "{\"histograms\":";
    if (params.histogram_buckets == HistogramBuckets::None) {
      out +=
          "{\"supported_quantiles\":[0,25,50,75,90,95,99,99.5,99.9,100],"
          "\"computed_quantiles\":[";
      for (size_t i = 0; i < histograms.size(); ++i) {
        if (i != 0) out += ',';
        const HistogramStatistics interval = histograms[i]->intervalStatistics();
        const HistogramStatistics cumulative = histograms[i]->cumulativeStatistics();
        out += "{\"name\":";
        appendJsonString(out, histograms[i]->name());
        out += ",\"values\":[";
        for (size_t q = 0; q < HistogramStatistics::kNumQuantiles; ++q) {
          if (q != 0) out += ',';
          out += "{\"cumulative\":" + jsonNumber(cumulative.quantiles[q]) +
                 ",\"interval\":" + jsonNumber(interval.quantiles[q]) + "}";
        }
        out += "]}";
      }
      out += "]}";
    } else {
      // Envoy's bucket modes: one entry per histogram with per-bound counts.
      const bool disjoint = params.histogram_buckets == HistogramBuckets::Disjoint;
      const auto& bounds = HistogramStatistics::supportedBuckets();
      out += '[';
      for (size_t i = 0; i < histograms.size(); ++i) {
        if (i != 0) out += ',';
        const HistogramStatistics interval = histograms[i]->intervalStatistics();
        const HistogramStatistics cumulative = histograms[i]->cumulativeStatistics();
        out += "{\"name\":";
        appendJsonString(out, histograms[i]->name());
        out += ",\"buckets\":[";
        for (size_t b = 0; b < bounds.size(); ++b) {
          uint64_t iv = interval.bucket_counts[b];
          uint64_t cv = cumulative.bucket_counts[b];
          if (disjoint && b > 0) {
            iv -= interval.bucket_counts[b - 1];
            cv -= cumulative.bucket_counts[b - 1];
          }
          if (b != 0) out += ',';
          out += "{\"upper_bound\":" + formatDouble(bounds[b]) +
                 ",\"interval\":" + std::to_string(iv) + ",\"cumulative\":" + std::to_string(cv) +
                 "}";
        }
        out += "]}";
      }
      out += ']';
    }
    out += '}';
  }
  out += "]}";
  return out;
}

std::string renderPrometheus(const Store& store, const RenderParams& params) {
  std::string out;
  const std::function<bool(const Counter&)> show_counter = [&](const Counter& c) {
    return showCounterOrGauge(params, c);
  };
  const std::function<bool(const Gauge&)> show_gauge = [&](const Gauge& g) {
    return showCounterOrGauge(params, g);
  };
  const std::function<bool(const Histogram&)> show_histogram = [&](const Histogram& h) {
    return showHistogram(params, h);
  };
  auto numeric = [](std::string& o, const std::string& name, const auto& m, const std::vector<Tag>& tags) {
    o += name + "{" + formattedTags(tags) + "} " + std::to_string(m.value()) + "\n";
  };

  if (wantCounters(params))
    prometheusGroups(out, store.counters(), "counter", show_counter, numeric);
  if (wantGauges(params)) prometheusGroups(out, store.gauges(), "gauge", show_gauge, numeric);
  if (wantHistograms(params)) {
    prometheusGroups(out, store.histograms(), "histogram", show_histogram,
                     [](std::string& o, const std::string& name, const Histogram& h,
                        const std::vector<Tag>& tag_list) {
                       const std::string tags = formattedTags(tag_list);
                       const std::string bucket_tags = tag_list.empty() ? "" : tags + ",";
                       // Prometheus histograms are cumulative over the process life.
                       const HistogramStatistics stats = h.cumulativeStatistics();
                       const auto& bounds = HistogramStatistics::supportedBuckets();
                       for (size_t i = 0; i < bounds.size(); ++i) {
                         o += name + "_bucket{" + bucket_tags + "le=\"" + longDouble(bounds[i]) +
                              "\"} " + std::to_string(stats.bucket_counts[i]) + "\n";
                       }
                       o += name + "_bucket{" + bucket_tags + "le=\"+Inf\"} " +
                            std::to_string(stats.sample_count) + "\n";
                       o += name + "_sum{" + tags + "} " + longDouble(stats.sample_sum) + "\n";
                       o += name + "_count{" + tags + "} " + std::to_string(stats.sample_count) +
                            "\n";
                     });
  }
  return out;
}

}  // namespace courier::stats
