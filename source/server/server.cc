#include "source/server/server.h"

#include <event2/event.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "envoy/admin/v3/clusters.pb.h"
#include "envoy/admin/v3/config_dump.pb.h"
#include "envoy/admin/v3/listeners.pb.h"
#include "envoy/admin/v3/server_info.pb.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/common/version.h"
#include "source/common/protobuf/yaml_loader.h"
#include "source/common/upstream/cluster_factory.h"
#include "source/server/admin/admin_server.h"
#include "source/server/listener_factory.h"
#include "spdlog/spdlog.h"

namespace courier::server {
namespace {

using google::protobuf::util::TimeUtil;

const char* stateName(ServerState s) {
  switch (s) {
    case ServerState::Live:
      return "LIVE";
    case ServerState::Draining:
      return "DRAINING";
    case ServerState::PreInitializing:
      return "PRE_INITIALIZING";
    case ServerState::Initializing:
      return "INITIALIZING";
  }
  return "UNKNOWN";
}

}  // namespace

Server::Server(Options options, envoy::config::bootstrap::v3::Bootstrap bootstrap)
    : options_(std::move(options)),
      bootstrap_(std::move(bootstrap)),
      start_time_(std::chrono::steady_clock::now()),
      main_("main") {}

Server::~Server() {
  for (auto& w : workers_) w->stop();
  workers_.clear();
  for (struct event* ev : signal_events_) event_free(ev);
}

absl::Status Server::initialize() {
  const uint32_t concurrency = options_.concurrency;
  std::vector<event::Dispatcher*> dispatchers;
  for (uint32_t i = 0; i < concurrency; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, total_connections_));
    dispatchers.push_back(&workers_.back()->dispatcher());
  }
  // Each worker keeps its load-balancer state across swaps of the cluster set.
  clusters_ = std::make_unique<thread_local_::SnapshotSlot<upstream::ClusterSet>>(
      main_, dispatchers, [this](size_t worker, const upstream::ClusterSetConstSharedPtr& set) {
        workers_[worker]->clusterManager().update(set);
      });
  if (auto s = createClusters(); !s.ok()) return s;
  if (auto s = createListeners(true); !s.ok()) return s;
  if (auto s = startAdmin(); !s.ok()) return s;

  stats_.gauge("server.concurrency").set(concurrency);
  stats_.gauge("server.hot_restart_epoch").set(0);
  stats_.gauge("server.version").set(0);
  stats_.gauge("server.state").set(static_cast<uint64_t>(ServerState::Initializing));
  return absl::OkStatus();
}

absl::Status Server::validate() {
  clusters_ = std::make_unique<thread_local_::SnapshotSlot<upstream::ClusterSet>>(main_, std::vector<event::Dispatcher*>{});
  if (auto s = createClusters(); !s.ok()) return s;
  if (auto s = createListeners(false); !s.ok()) return s;
  if (bootstrap_.has_admin() && bootstrap_.admin().has_address() &&
      !bootstrap_.admin().address().has_socket_address()) {
    return absl::InvalidArgumentError("admin.address: a socket_address is required");
  }
  return absl::OkStatus();
}

absl::Status Server::createClusters() {
  auto set = std::make_shared<upstream::ClusterSet>();
  const auto& clusters = bootstrap_.static_resources().clusters();
  for (int i = 0; i < clusters.size(); ++i) {
    const std::string path = absl::StrCat("static_resources.clusters[", i, "]");
    auto cluster = upstream::createCluster(clusters[i], path, stats_);
    if (!cluster.ok()) return cluster.status();
    if (!set->clusters.emplace((*cluster)->name, *cluster).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".name: duplicate cluster name \"", (*cluster)->name, "\""));
    }
  }
  stats_.gauge("cluster_manager.active_clusters").set(set->clusters.size());
  stats_.gauge("cluster_manager.warming_clusters").set(0);
  clusters_->publish(std::move(set));
  return absl::OkStatus();
}

absl::Status Server::createListeners(bool bind) {
  if (!access_logs_) {
    access_logs_ = std::make_unique<access_log::AccessLogManager>(
        std::chrono::milliseconds(options_.file_flush_interval_msec));
  }
  FactoryContext context{stats_, clusters_->latest().get(), access_logs_.get()};
  const auto& listeners = bootstrap_.static_resources().listeners();
  std::vector<std::string> names;
  for (int i = 0; i < listeners.size(); ++i) {
    const std::string path = absl::StrCat("static_resources.listeners[", i, "]");
    auto config = createListener(listeners[i], path, context);
    if (!config.ok()) return config.status();
    for (const auto& n : names) {
      if (n == (*config)->name) {
        return absl::InvalidArgumentError(absl::StrCat(path, ".name: duplicate listener name \"", n, "\""));
      }
    }
    names.push_back((*config)->name);
    if (!bind) continue;
    // One socket per worker with SO_REUSEPORT; the first one fixes the port
    // when the config asks for an ephemeral one.
    network::Address address = (*config)->address;
    std::vector<network::SocketFd> fds;
    for (size_t w = 0; w < workers_.size(); ++w) {
      if (w > 0 && !(*config)->reuse_port) {
        fds.emplace_back(::dup(fds.front().get()));
        continue;
      }
      auto fd = network::listenOn(address, (*config)->reuse_port, (*config)->backlog);
      if (!fd.ok()) {
        return absl::UnavailableError(absl::StrCat(path, ".address: ", fd.status().message()));
      }
      if (w == 0) address = network::Address::localOf(fd->get());
      fds.push_back(std::move(*fd));
    }
    listeners_.push_back({*config, address});
    for (size_t w = 0; w < workers_.size(); ++w) {
      Worker* worker = workers_[w].get();
      auto cfg = *config;
      auto fd = std::make_shared<network::SocketFd>(std::move(fds[w]));
      worker->dispatcher().post([worker, cfg, fd] { worker->addListener(cfg, std::move(*fd)); });
    }
    spdlog::info("listener '{}' on {}", (*config)->name, address.asString());
  }
  stats_.gauge("listener_manager.total_listeners_active").set(listeners_.size());
  stats_.gauge("listener_manager.total_listeners_warming").set(0);
  stats_.gauge("listener_manager.total_listeners_draining").set(0);
  return absl::OkStatus();
}

absl::Status Server::startAdmin() {
  if (!bootstrap_.has_admin() || !bootstrap_.admin().has_address()) return absl::OkStatus();
  const auto& addr = bootstrap_.admin().address();
  if (!addr.has_socket_address()) {
    return absl::InvalidArgumentError("admin.address: a socket_address is required");
  }
  admin_ = std::make_unique<AdminServer>(main_.base(), stats_);
  admin_->setFlushOnAdmin(bootstrap_.stats_flush_on_admin());
  registerAdminHandlers();
  auto s = admin_->listen(addr.socket_address().address(), addr.socket_address().port_value());
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("admin.address: ", s.message()));
  spdlog::info("admin address: {}:{}", addr.socket_address().address(), admin_->port());
  if (!options_.admin_address_path.empty()) {
    std::ofstream out(options_.admin_address_path);
    out << addr.socket_address().address() << ":" << admin_->port() << "\n";
  }
  return absl::OkStatus();
}

void Server::registerAdminHandlers() {
  admin_->addHandler("/ready", "print server state, return 200 if LIVE, otherwise return 503", false,
                     [this](const AdminRequest&) {
                       ServerState s = state_.load();
                       return AdminResponse{s == ServerState::Live ? 200 : 503, "text/plain",
                                            absl::StrCat(stateName(s), "\n")};
                     });
  admin_->addHandler("/server_info", "print server version/status information", false,
                     [this](const AdminRequest&) {
                       return AdminResponse{200, "application/json", serverInfoJson()};
                     });
  admin_->addHandler("/config_dump", "dump current Envoy configs", false, [this](const AdminRequest& req) {
    return AdminResponse{200, "application/json", configDumpJson(req.get("resource"))};
  });
  admin_->addHandler("/listeners", "print listener info", false, [this](const AdminRequest& req) {
    bool json = req.get("format") == "json";
    return AdminResponse{200, json ? "application/json" : "text/plain", listenersText(json)};
  });
  admin_->addHandler("/clusters", "upstream cluster status", false, [this](const AdminRequest& req) {
    bool json = req.get("format") == "json";
    return AdminResponse{200, json ? "application/json" : "text/plain", clustersText(json)};
  });
  admin_->addHandler("/quitquitquit", "exit the server", true, [this](const AdminRequest&) {
    spdlog::info("shutting down from admin /quitquitquit");
    main_.post([this] { main_.exit(); });
    return AdminResponse{200, "text/plain", "OK\n"};
  });
  admin_->addHandler("/drain_listeners", "drain listeners", true, [this](const AdminRequest&) {
    main_.post([this] { startDrain(); });
    return AdminResponse{200, "text/plain", "OK\n"};
  });
}

int Server::run() {
  // SIGTERM and SIGINT drain; SIGHUP is ignored as Envoy does; SIGPIPE would
  // kill us on a write to a closed peer.
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  for (int sig : {SIGTERM, SIGINT}) {
    struct event* ev = evsignal_new(
        main_.base(), sig, [](int, short, void* arg) { static_cast<Server*>(arg)->startDrain(); }, this);
    evsignal_add(ev, nullptr);
    signal_events_.push_back(ev);
  }
  for (auto& w : workers_) w->start();
  workers_started_ = true;
  state_ = ServerState::Live;
  stats_.gauge("server.state").set(static_cast<uint64_t>(ServerState::Live));
  stats_.gauge("server.live").set(1);
  stats_timer_ = main_.createTimer([this] {
    auto up = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start_time_);
    stats_.gauge("server.uptime").set(up.count());
    stats_.gauge("server.total_connections").set(std::max<int64_t>(0, total_connections_.load()));
    stats_timer_->enable(std::chrono::milliseconds(1000));
  });
  stats_timer_->enable(std::chrono::milliseconds(0));
  // Histograms publish interval/cumulative figures at each flush, as Envoy's.
  const auto flush_interval = std::chrono::milliseconds(
      bootstrap_.has_stats_flush_interval()
          ? TimeUtil::DurationToMilliseconds(bootstrap_.stats_flush_interval())
          : 5000);
  flush_timer_ = main_.createTimer([this, flush_interval] {
    stats_.mergeHistograms();
    flush_timer_->enable(flush_interval);
  });
  if (!bootstrap_.stats_flush_on_admin()) flush_timer_->enable(flush_interval);
  spdlog::info("courier is live with {} worker(s)", workers_.size());
  main_.run();
  state_ = ServerState::Draining;
  stats_.gauge("server.live").set(0);
  for (auto& w : workers_) w->stop();
  spdlog::info("courier exited");
  return 0;
}

void Server::shutdown() {
  main_.post([this] { startDrain(); });
}

void Server::startDrain() {
  if (state_ == ServerState::Draining) return;
  state_ = ServerState::Draining;
  stats_.gauge("server.state").set(static_cast<uint64_t>(ServerState::Draining));
  stats_.gauge("server.live").set(0);
  stats_.gauge("listener_manager.total_listeners_draining").set(listeners_.size());
  stats_.gauge("listener_manager.total_listeners_active").set(0);
  spdlog::info("draining: no new connections; waiting up to {}s for {} open connection(s)",
               options_.drain_time_s, total_connections_.load());
  for (auto& w : workers_) {
    Worker* worker = w.get();
    worker->dispatcher().post([worker] { worker->stopAcceptingAll(); });
  }
  drain_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(options_.drain_time_s);
  drain_timer_ = main_.createTimer([this] { checkDrained(); });
  checkDrained();
}

void Server::checkDrained() {
  if (total_connections_.load() <= 0 || std::chrono::steady_clock::now() >= drain_deadline_) {
    main_.exit();
    return;
  }
  // Polling a counter is cheaper than a cross-thread callback per connection close.
  drain_timer_->enable(std::chrono::milliseconds(50));
}

std::string Server::serverInfoJson() const {
  envoy::admin::v3::ServerInfo info;
  info.set_version(absl::StrCat(kCourierVersion, "/courier/RELEASE/Envoy-compatible"));
  ServerState s = state_.load();
  info.set_state(s == ServerState::Live       ? envoy::admin::v3::ServerInfo::LIVE
                 : s == ServerState::Draining ? envoy::admin::v3::ServerInfo::DRAINING
                 : s == ServerState::PreInitializing ? envoy::admin::v3::ServerInfo::PRE_INITIALIZING
                                                     : envoy::admin::v3::ServerInfo::INITIALIZING);
  auto up = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start_time_);
  *info.mutable_uptime_current_epoch() = TimeUtil::SecondsToDuration(up.count());
  *info.mutable_uptime_all_epochs() = TimeUtil::SecondsToDuration(up.count());
  info.set_hot_restart_version("disabled");
  auto* cl = info.mutable_command_line_options();
  cl->set_base_id(options_.base_id);
  cl->set_concurrency(options_.concurrency);
  cl->set_config_path(options_.config_path);
  cl->set_config_yaml(options_.config_yaml);
  cl->set_log_level(options_.log_level);
  cl->set_service_cluster(options_.service_cluster);
  cl->set_service_node(options_.service_node);
  cl->set_service_zone(options_.service_zone);
  *cl->mutable_drain_time() = TimeUtil::SecondsToDuration(options_.drain_time_s);
  *cl->mutable_parent_shutdown_time() = TimeUtil::SecondsToDuration(options_.parent_shutdown_time_s);
  cl->set_mode(options_.mode == Mode::Validate ? envoy::admin::v3::CommandLineOptions::Validate
                                               : envoy::admin::v3::CommandLineOptions::Serve);
  cl->set_disable_hot_restart(true);
  *info.mutable_node() = bootstrap_.node();
  return protobuf::toJson(info, true, true);
}

std::string Server::configDumpJson(const std::string& resource) const {
  envoy::admin::v3::ConfigDump dump;
  auto now = TimeUtil::GetCurrentTime();
  {
    envoy::admin::v3::BootstrapConfigDump b;
    *b.mutable_bootstrap() = bootstrap_;
    *b.mutable_last_updated() = now;
    dump.add_configs()->PackFrom(b);
  }
  {
    envoy::admin::v3::ClustersConfigDump c;
    for (const auto& cluster : bootstrap_.static_resources().clusters()) {
      auto* sc = c.add_static_clusters();
      sc->mutable_cluster()->PackFrom(cluster);
      *sc->mutable_last_updated() = now;
    }
    dump.add_configs()->PackFrom(c);
  }
  {
    envoy::admin::v3::ListenersConfigDump l;
    for (const auto& listener : bootstrap_.static_resources().listeners()) {
      auto* sl = l.add_static_listeners();
      sl->mutable_listener()->PackFrom(listener);
      *sl->mutable_last_updated() = now;
    }
    dump.add_configs()->PackFrom(l);
  }
  if (resource.empty()) return protobuf::toJson(dump, true);
  // ?resource=static_clusters etc: Envoy returns the matching repeated field's
  // entries, each as its own config.
  envoy::admin::v3::ConfigDump filtered;
  for (const auto& any : dump.configs()) {
    envoy::admin::v3::ClustersConfigDump c;
    envoy::admin::v3::ListenersConfigDump l;
    if (any.UnpackTo(&c)) {
      if (resource == "static_clusters") {
        for (const auto& x : c.static_clusters()) filtered.add_configs()->PackFrom(x);
      }
    }
    if (any.UnpackTo(&l)) {
      if (resource == "static_listeners") {
        for (const auto& x : l.static_listeners()) filtered.add_configs()->PackFrom(x);
      }
    }
  }
  return protobuf::toJson(filtered, true);
}

std::string Server::listenersText(bool json) const {
  if (json) {
    envoy::admin::v3::Listeners out;
    for (const auto& l : listeners_) {
      auto* st = out.add_listener_statuses();
      st->set_name(l.config->name);
      auto* sa = st->mutable_local_address()->mutable_socket_address();
      sa->set_address(l.bound_address.ip());
      sa->set_port_value(l.bound_address.port());
    }
    return protobuf::toJson(out, true, true);
  }
  std::string out;
  for (const auto& l : listeners_) absl::StrAppend(&out, l.config->name, "::", l.bound_address.asString(), "\n");
  return out;
}

std::string Server::clustersText(bool json) const {
  const auto& set = clusters_->latest();
  if (json) {
    envoy::admin::v3::Clusters out;
    for (const auto& [name, cluster] : set->clusters) {
      auto* cs = out.add_cluster_statuses();
      cs->set_name(name);
      cs->set_observability_name(name);
      for (const auto& host : cluster->hosts) {
        auto* hs = cs->add_host_statuses();
        auto* sa = hs->mutable_address()->mutable_socket_address();
        sa->set_address(host->address.ip());
        sa->set_port_value(host->address.port());
        hs->set_hostname(host->hostname);
        hs->set_weight(host->weight);
        hs->mutable_health_status()->set_eds_health_status(envoy::config::core::v3::HEALTHY);
      }
    }
    return protobuf::toJson(out, true, true);
  }
  std::string out;
  for (const auto& [name, cluster] : set->clusters) {
    absl::StrAppend(&out, name, "::observability_name::", name, "\n");
    for (const char* prio : {"default_priority", "high_priority"}) {
      absl::StrAppend(&out, name, "::", prio, "::max_connections::1024\n", name, "::", prio,
                      "::max_pending_requests::1024\n", name, "::", prio, "::max_requests::1024\n", name, "::",
                      prio, "::max_retries::3\n");
    }
    absl::StrAppend(&out, name, "::added_via_api::false\n");
    for (const auto& host : cluster->hosts) {
      const std::string h = absl::StrCat(name, "::", host->address.asString(), "::");
      for (const char* stat : {"cx_active", "cx_connect_fail", "cx_total", "rq_active", "rq_error", "rq_success",
                               "rq_timeout", "rq_total"}) {
        absl::StrAppend(&out, h, stat, "::0\n");
      }
      absl::StrAppend(&out, h, "hostname::", host->hostname, "\n", h, "health_flags::healthy\n", h,
                      "weight::", host->weight, "\n", h, "region::\n", h, "zone::\n", h, "sub_zone::\n", h,
                      "canary::false\n", h, "priority::0\n", h, "success_rate::-1\n", h,
                      "local_origin_success_rate::-1\n");
    }
  }
  return out;
}

}  // namespace courier::server
