// RDS: route tables that arrive by name from a config source (ADS or a
// watched file) instead of inline in the HTTP connection manager. Every HCM
// naming the same route_config_name from the same source shares one
// subscription and one RouteConfigProvider; an update compiles the table once
// on the main thread and posts the immutable result to every worker, where
// new streams pick it up. A stream keeps the table it started with.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "source/common/config/subscription.h"
#include "source/common/event/dispatcher.h"
#include "source/common/router/route_table.h"
#include "source/common/stats/store.h"

namespace courier::router {

// The per-worker current table of one route_config_name. Shared by the HCM
// configs that name it (they may be destroyed on any thread), so it holds no
// main-thread state.
class RouteConfigProvider {
 public:
  explicit RouteConfigProvider(size_t workers) : per_worker_(workers) {}
  // Worker `worker`'s thread only. nullptr until the first update arrived
  // (requests then get 404, as Envoy answers with no route table).
  const std::shared_ptr<const RouteTable>& current(size_t worker) const { return per_worker_[worker].table; }

  // Main thread: whether the first fetch ended (a table arrived, was refused,
  // or the fetch failed or timed out), which is when a listener using this
  // table stops warming, as Envoy's RDS init target.
  bool warm() const { return warm_; }
  // Main thread: runs `cb` once warm (at once when already).
  void onWarm(std::function<void()> cb) {
    if (warm_) {
      cb();
    } else {
      on_warm_.push_back(std::move(cb));
    }
  }

 private:
  friend class RdsManager;
  void setWarm() {
    if (warm_) return;
    warm_ = true;
    auto callbacks = std::move(on_warm_);
    for (auto& cb : callbacks) cb();
  }
  bool warm_ = false;
  std::vector<std::function<void()>> on_warm_;
  struct alignas(64) PerWorker {
    std::shared_ptr<const RouteTable> table;
  };
  std::vector<PerWorker> per_worker_;
};

// http.<stat_prefix>.rds.<route_config_name>.* as Envoy names them.
struct RdsStats {
  RdsStats(stats::Store& store, const std::string& prefix);
  stats::Counter& update_attempt;
  stats::Counter& update_success;
  stats::Counter& update_rejected;
  stats::Counter& update_failure;
  stats::Counter& update_empty;
  stats::Gauge& version;
};

// Main thread. Owns the RDS subscriptions.
class RdsManager {
 public:
  // Returns nullptr when subscriptions are only checked (--mode validate).
  using SubscriptionFactory = config::SubscriptionFactory;

  // A route configuration as last accepted, for /config_dump.
  struct Dump {
    std::string name;
    std::string version_info;
    envoy::config::route::v3::RouteConfiguration config;
    google::protobuf::Timestamp last_updated;
  };

  RdsManager(event::Dispatcher& main, std::vector<event::Dispatcher*> workers, stats::Store& stats);
  ~RdsManager();

  // Set before the first provider() (the server sets it once the ADS client exists).
  void setSubscriptionFactory(SubscriptionFactory factory) { factory_ = std::move(factory); }

  // The provider for `route_config_name` from `source`, subscribing on first
  // use. `stat_prefix` is the HCM's; the first HCM to ask names the stats.
  // `field_path` names the HCM's rds field in errors.
  absl::StatusOr<std::shared_ptr<RouteConfigProvider>> provider(const envoy::config::core::v3::ConfigSource& source,
                                                                const std::string& route_config_name,
                                                                const std::string& stat_prefix,
                                                                const std::string& field_path);

  // Accepted dynamic route configurations, by name.
  std::vector<Dump> dumps() const;
  // Subscriptions alive (those no HCM uses any more are dropped lazily).
  size_t subscriptionCount() const { return subscriptions_.size(); }

 private:
  class Subscription;
  // Drops subscriptions no HCM uses any more, except `keep`'s.
  void sweep(const std::string& keep);

  event::Dispatcher& main_;
  std::vector<event::Dispatcher*> workers_;
  stats::Store& stats_;
  SubscriptionFactory factory_;
  // Keyed by route_config_name and the serialized config source.
  absl::flat_hash_map<std::string, std::unique_ptr<Subscription>> subscriptions_;
};

}  // namespace courier::router
