// The server instance: owns the main dispatcher, stats, admin, the workers,
// the cluster and listener managers with their CDS/LDS subscriptions, and
// the life cycle (initialize, warm, serve, drain on SIGTERM, exit).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "source/common/event/dispatcher.h"
#include "source/common/stats/store.h"
#include "source/common/thread_local/snapshot_slot.h"
#include "source/common/config/grpc_mux.h"
#include "source/common/config/subscription.h"
#include "source/common/upstream/cluster.h"
#include "source/common/upstream/cluster_manager.h"
#include "source/extensions/transport_sockets/tls/secret_manager.h"
#include "source/server/listener_config.h"
#include "source/server/listener_manager.h"
#include "source/server/options.h"
#include "source/server/worker.h"

struct event;

namespace courier::upstream {
class OutlierDetector;
}  // namespace courier::upstream

namespace courier::server {

class AdminServer;

// Envoy's server.state values.
enum class ServerState { Live = 0, Draining = 1, PreInitializing = 2, Initializing = 3 };

class Server {
 public:
  Server(Options options, envoy::config::bootstrap::v3::Bootstrap bootstrap);
  ~Server();

  // Builds clusters and listeners, binds every socket and starts admin.
  // Nothing serves unless all of it succeeded.
  absl::Status initialize();
  // --mode validate: builds every cluster and listener as initialize() would,
  // but binds nothing and starts nothing.
  absl::Status validate();
  // Serves until shutdown; returns the process exit code.
  int run();
  // Thread-safe: stop accepting, drain for --drain-time-s, then exit.
  void shutdown();

  stats::Store& stats() { return stats_; }
  event::Dispatcher& dispatcher() { return main_; }
  ServerState state() const { return state_; }
  // Admin /healthcheck/fail (true) and /healthcheck/ok (false), as Envoy's
  // Server::healthCheckFailed(): what a health_check filter would answer from.
  bool healthCheckFailed() const { return health_check_failed_.load(std::memory_order_relaxed); }

 private:
  // Managers with the static resources; `bind`: sockets for the workers.
  absl::Status createManagers(bool bind);
  // CDS, then LDS once CDS delivered its first update (or failed), as Envoy
  // warms; the server goes live when both initial loads are done.
  absl::Status startDynamicResources();
  void onInitialLoadsDone();
  void maybeGoLive();
  absl::Status startAdmin();
  void registerAdminHandlers();
  void startDrain();
  void checkDrained();
  std::string serverInfoJson() const;
  std::string configDumpJson(const std::string& resource, bool include_eds, const std::string& mask) const;
  std::string listenersText(bool json) const;
  std::string clustersText(bool json) const;
  const upstream::OutlierDetector* outlierDetectorOf(const std::string& cluster_name) const;

  const Options options_;
  const envoy::config::bootstrap::v3::Bootstrap bootstrap_;
  const std::chrono::steady_clock::time_point start_time_;
  event::Dispatcher main_;
  stats::Store stats_;
  std::unique_ptr<access_log::AccessLogManager> access_logs_;
  std::atomic<int64_t> total_connections_{0};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<thread_local_::SnapshotSlot<upstream::ClusterSet>> clusters_;
  // Secrets (static and SDS), shared by listeners' and clusters' TLS contexts;
  // declared before them so it outlives their factories' registrations.
  std::unique_ptr<tls::SecretManager> secrets_;
  std::unique_ptr<upstream::ClusterManager> cluster_manager_;
  // RDS subscriptions, shared by the listeners' connection managers.
  std::unique_ptr<router::RdsManager> rds_;
  std::unique_ptr<ListenerManager> listener_manager_;
  // Declared after the managers they call into, so they go first; the
  // subscriptions before the mux they were made by.
  std::unique_ptr<config::GrpcMux> ads_;
  std::unique_ptr<config::SubscriptionCallbacks> cds_callbacks_;
  std::unique_ptr<config::SubscriptionCallbacks> lds_callbacks_;
  std::unique_ptr<config::Subscription> cds_;
  std::unique_ptr<config::Subscription> lds_;
  bool initial_loads_done_ = false;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<event::Timer> stats_timer_;
  std::unique_ptr<event::Timer> flush_timer_;
  std::unique_ptr<event::Timer> drain_timer_;
  std::chrono::steady_clock::time_point drain_deadline_;
  std::vector<struct event*> signal_events_;
  std::atomic<ServerState> state_{ServerState::Initializing};
  bool workers_started_ = false;
  std::atomic<bool> health_check_failed_{false};
};

}  // namespace courier::server
