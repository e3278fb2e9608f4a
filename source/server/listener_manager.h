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
  stats::Counter& listener_create_failure;
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
  // Listeners LDS added or changed once the server initialized, waiting for
  // their route tables (RDS) or secrets (SDS) before they take traffic: their
  // own sockets are bound but not listening (a connect is refused), and a
  // changed one's predecessor keeps serving meanwhile.
  std::vector<const Entry*> warmingListeners() const;
  const std::string& ldsVersion() const { return version_info_; }

  // Runs once, after the first LDS delivery or failure and once every
  // listener known by then warmed (static ones and those of the LDS updates
  // applied so far: their route tables and secrets), as Envoy's server
  // initializes. Those listeners are active from the start (Envoy puts them
  // in its active list before its workers start) but take connections only
  // from then on, all together: until their route tables (RDS) arrived or
  // timed out a request would meet no table and get 404. Listeners LDS adds
  // later warm one by one (total_listeners_warming) and then start.
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
  // listener turned reuse_port off. Returns the bound address too. Bound
  // only: listen() waits until the listener goes to the workers (listenAll),
  // as Envoy's doFinalPreWorkerInit(), so a listener that is not serving yet
  // refuses connections instead of leaving them in a backlog nobody accepts.
  absl::Status bindSockets(const ListenerConfig& config, const std::string& path,
                           std::vector<network::SocketFd>& fds, network::Address& bound);
  // listen() on every socket of a listener about to go to the workers.
  static bool listenAll(const ListenerConfig& config, std::vector<network::SocketFd>& fds);
  Entry* find(const std::string& name);
  // Runs `fn` on every worker's loop; `done` on main once all have run it.
  void onEveryWorker(std::function<void(Worker&)> fn, std::function<void()> done);
  // Starts the drain-time clock for a listener that stopped accepting.
  void scheduleDrainEnd(uint64_t drain_tag);
  void updateGauges();
  void maybeInitialLoadDone();
  // Before the server initialized: `p` is active at once and held, bound,
  // until the server initializes; its tables and secrets hold that.
  void addDuringInit(Pending p);
  // Counts `name`'s cold route tables and secrets into the server's init.
  void waitDuringInit(const std::string& name, const std::vector<std::shared_ptr<router::RouteConfigProvider>>& rds,
                      const std::vector<std::shared_ptr<tls::SecretProvider>>& secrets);
  void onInitWarm(const std::string& name, uint64_t generation);
  // Hands the listeners held during initialization to the workers.
  void startHeldListeners();
  // Hands a built listener to every worker (added, or replacing its
  // predecessor). False when its new sockets cannot listen: then it is
  // dropped and its predecessor, if any, keeps serving.
  bool activate(Pending& p);
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
  // Listeners (static, and LDS's while the server initializes) active but
  // bound only, in the order they were added, until the server initialized.
  struct Held {
    ListenerConfigConstSharedPtr config;
    std::vector<network::SocketFd> fds;
  };
  std::vector<Held> held_;
  std::vector<Held>::iterator findHeld(const std::string& name);
  // Per held listener, how many of its route tables and secrets are still
  // to arrive; the generation tells a replaced version's callbacks apart.
  struct InitWait {
    uint64_t generation = 0;
    size_t waiting = 0;
  };
  absl::flat_hash_map<std::string, InitWait> init_waiting_;
  uint64_t next_warming_generation_ = 1;
  // Lets callbacks posted back from workers notice the manager is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace courier::server
