// The main thread's owner of the listeners: static ones from the bootstrap
// and dynamic ones applied from LDS. Builds and binds a whole update before
// any worker sees it, then tells every worker to add, replace (the old one
// drains beside the new) or drain listeners.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "google/protobuf/repeated_field.h"
#include "google/protobuf/timestamp.pb.h"
#include "source/common/config/subscription.h"
#include "source/common/event/dispatcher.h"
#include "source/common/stats/store.h"
#include "source/server/filter_config.h"
#include "source/server/listener_config.h"
#include "source/server/worker.h"

namespace courier::server {

// listener_manager.* and listener_manager.lds.* as Envoy names them.
struct ListenerManagerStats {
  explicit ListenerManagerStats(stats::Store& store);
  stats::Counter& listener_added;
  stats::Counter& listener_modified;
  stats::Counter& listener_in_place_updated;
  stats::Counter& listener_removed;
  stats::Counter& listener_create_success;
  stats::Gauge& total_listeners_active;
  stats::Gauge& total_listeners_warming;
  stats::Gauge& total_listeners_draining;
  stats::Counter& lds_update_attempt;
  stats::Counter& lds_update_success;
  stats::Counter& lds_update_rejected;
  stats::Counter& lds_update_failure;
  stats::Gauge& lds_version;
};

class ListenerManager : public config::SubscriptionCallbacks {
 public:
  // One active listener as configured and bound, for the admin pages.
  struct Entry {
    envoy::config::listener::v3::Listener proto;
    ListenerConfigConstSharedPtr config;
    network::Address bound_address;
    bool added_via_api = false;
    std::string version_info;
    google::protobuf::Timestamp last_updated;
  };
  // Builds the context listeners are created with (the current cluster set
  // for route validation, the access-log manager).
  using ContextProvider = std::function<FactoryContext()>;

  // `workers` may be empty (--mode validate): then nothing is bound.
  ListenerManager(event::Dispatcher& main, std::vector<std::unique_ptr<Worker>>& workers, stats::Store& stats,
                  ContextProvider context, std::chrono::seconds drain_time, bool bind);
  ~ListenerManager() override;

  absl::Status addStaticListeners(
      const google::protobuf::RepeatedPtrField<envoy::config::listener::v3::Listener>& listeners);

  // In the order they were added.
  const std::vector<Entry>& listeners() const { return entries_; }
  // Listeners waiting for their route tables (RDS) or secrets (SDS) before
  // they take traffic; a changed one's predecessor keeps serving meanwhile.
  std::vector<const Entry*> warmingListeners() const;
  const std::string& ldsVersion() const { return version_info_; }

  // Runs once, after the first LDS delivery or failure and once every
  // listener warmed (static ones included: their route tables and secrets),
  // as Envoy's server initializes. Static listeners take connections from
  // then on: until their route tables (RDS) arrived or timed out a request
  // would meet no table and get 404.
  void setInitialLoadCallback(std::function<void()> cb) { on_initial_load_ = std::move(cb); }
  // The first LDS delivery or failure; for a bootstrap without LDS, the
  // server calls it once the clusters warmed.
  void markInitialLoadDone();

  // Server drain: every listener stops accepting (workers are told separately).
  void stopListeners();

  // config::SubscriptionCallbacks (LDS).
  absl::Status onConfigUpdate(const std::vector<config::DecodedResource>& resources,
                              const std::string& version_info) override;
  absl::Status onConfigUpdate(const std::vector<config::DecodedResource>& added,
                              const std::vector<std::string>& removed,
                              const std::string& system_version_info) override;
  void onConfigUpdateFailed(config::UpdateFailureReason reason, const absl::Status& error) override;

 private:
  // A listener built and (if its address is new) bound, not yet live.
  struct Pending {
    size_t resource_index;
    Entry entry;
    // One socket per worker; empty when the old listener's sockets carry over.
    std::vector<network::SocketFd> fds;
    bool replaces = false;
    // The RDS tables its connection managers use.
    std::vector<std::shared_ptr<router::RouteConfigProvider>> rds;
    // The SDS secrets its TLS contexts use.
    std::vector<std::shared_ptr<tls::SecretProvider>> secrets;
    // Takes over the sockets of the warming listener of the same name.
    bool take_warming_fds = false;
  };
  struct Warming {
    Pending pending;
    size_t waiting = 0;
    uint64_t generation = 0;
  };

  absl::Status apply(const std::vector<config::DecodedResource>& added, const std::vector<std::string>& removed,
                     const std::string& version_info);
  // One socket per worker (SO_REUSEPORT), or one shared by dup() when the
  // listener turned reuse_port off. Returns the bound address too.
  // `listen` false: bound only, listen() is the caller's (static listeners
  // refuse connections until the server initialized, as Envoy's).
  absl::Status bindSockets(const ListenerConfig& config, const std::string& path,
                           std::vector<network::SocketFd>& fds, network::Address& bound, bool listen = true);
  Entry* find(const std::string& name);
  // Runs `fn` on every worker's loop; `done` on main once all have run it.
  void onEveryWorker(std::function<void(Worker&)> fn, std::function<void()> done);
  // Starts the drain-time clock for a listener that stopped accepting.
  void scheduleDrainEnd(uint64_t drain_tag);
  void updateGauges();
  void maybeInitialLoadDone();
  // Hands the static listeners, bound since start-up, to the workers.
  void startStaticListeners();
  // Hands a built listener to every worker (added, or replacing its predecessor).
  void activate(Pending& p);
  // Holds `p` until its route tables and secrets are warm, then activates it.
  void startWarming(Pending p);
  void onWarm(const std::string& name, uint64_t generation);

  event::Dispatcher& main_;
  std::vector<std::unique_ptr<Worker>>& workers_;
  stats::Store& store_;
  ListenerManagerStats stats_;
  ContextProvider context_;
  const std::chrono::seconds drain_time_;
  const bool bind_;
  std::vector<Entry> entries_;
  std::string version_info_;
  uint64_t next_drain_tag_ = 1;
  absl::flat_hash_map<uint64_t, std::unique_ptr<event::Timer>> drain_timers_;
  std::function<void()> on_initial_load_;
  bool lds_initial_done_ = false;
  bool initial_load_done_ = false;
  absl::flat_hash_map<std::string, Warming> warming_;
  // Static listeners bound but not yet listening (the server initializes),
  // and how many of their route tables are still to arrive.
  struct HeldStatic {
    ListenerConfigConstSharedPtr config;
    std::vector<network::SocketFd> fds;
  };
  std::vector<HeldStatic> held_static_;
  size_t static_rds_waiting_ = 0;
  uint64_t next_warming_generation_ = 1;
  // Lets callbacks posted back from workers notice the manager is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace courier::server
