// The process-wide registry of stats. Lookup/creation takes a mutex and is
// done at configuration time; the returned references stay valid for the
// store's life, so the hot path keeps them and never looks anything up.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "source/common/stats/stats.h"
#include "source/common/stats/tag_producer.h"

namespace courier::stats {

// Envoy's Stats::Utility::sanitizeStatsName: ':' and NUL become '_' (so a
// listener on 0.0.0.0:80 gets stats under "listener.0.0.0.0_80."), and
// leading/trailing dots are dropped.
std::string sanitizeStatName(std::string_view name);

class Store {
 public:
  Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Counter& counter(std::string_view name);
  Gauge& gauge(std::string_view name);
  // A histogram keeps the unit it was created with.
  Histogram& histogram(std::string_view name, Histogram::Unit unit = Histogram::Unit::Milliseconds);

  // Snapshots sorted by name; the pointers stay valid for the store's life.
  std::vector<Counter*> counters() const;
  std::vector<Gauge*> gauges() const;
  std::vector<Histogram*> histograms() const;

  // Interval/cumulative histogram statistics advance here: the server calls
  // it every stats_flush_interval (Envoy: 5 s), or admin on each request when
  // flush_on_admin is set.
  void mergeHistograms();
  // /reset_counters.
  void resetCounters();

 private:
  template <class T, class... Args>
  T& findOrCreate(std::map<std::string, std::unique_ptr<T>, std::less<>>& map,
                  std::string_view name, Args... args);

  const TagProducer tag_producer_;
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters_;
  std::map<std::string, std::unique_ptr<Gauge>, std::less<>> gauges_;
  std::map<std::string, std::unique_ptr<Histogram>, std::less<>> histograms_;
};

// Stats under one prefix, as Envoy's Scope: Scope(store, "cluster.backend")
// .counter("upstream_cx_total") is "cluster.backend.upstream_cx_total".
class Scope {
 public:
  // The prefix is sanitized; a trailing '.' is added when missing.
  Scope(Store& store, std::string_view prefix);

  Counter& counter(std::string_view name) const { return store_.counter(statName(name)); }
  Gauge& gauge(std::string_view name) const { return store_.gauge(statName(name)); }
  Histogram& histogram(std::string_view name,
                       Histogram::Unit unit = Histogram::Unit::Milliseconds) const {
    return store_.histogram(statName(name), unit);
  }
  Scope createScope(std::string_view name) const { return Scope(store_, statName(name)); }

  const std::string& prefix() const { return prefix_; }
  std::string statName(std::string_view name) const;
  Store& store() const { return store_; }

 private:
  Store& store_;
  std::string prefix_;  // empty or ends with '.'
};

}  // namespace courier::stats
