#include "source/server/server.h"

#include <event2/event.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "source/common/common/field_error.h"
#include "envoy/admin/v3/clusters.pb.h"
#include "envoy/admin/v3/config_dump.pb.h"
#include "envoy/admin/v3/listeners.pb.h"
#include "envoy/admin/v3/server_info.pb.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/common/version.h"
#include "source/common/config/path_subscription.h"
#include "source/common/protobuf/field_mask.h"
#include "source/common/protobuf/yaml_loader.h"
#include "source/common/upstream/cluster_factory.h"
#include "source/common/upstream/cluster_health.h"
#include "source/extensions/transport_sockets/tls/secret_manager.h"
#include "source/server/admin/admin_server.h"
#include "source/server/dynamic_resources.h"
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
        // Pools of removed or changed clusters finish what they carry, then go.
        workers_[worker]->httpPools().drainStale(*set);
      });
  if (auto s = createManagers(true); !s.ok()) return s;
  if (auto s = startAdmin(); !s.ok()) return s;

  stats_.gauge("server.concurrency").set(concurrency);
  stats_.gauge("server.hot_restart_epoch").set(0);
  stats_.gauge("server.version").set(0);
  stats_.gauge("server.state").set(static_cast<uint64_t>(ServerState::Initializing));
  return startDynamicResources();
}

absl::Status Server::validate() {
  clusters_ = std::make_unique<thread_local_::SnapshotSlot<upstream::ClusterSet>>(main_, std::vector<event::Dispatcher*>{});
  if (auto s = createManagers(false); !s.ok()) return s;
  if (auto s = checkDynamicResources(bootstrap_, *cluster_manager_); !s.ok()) return s;
  // Static EDS clusters' eds_config gets the checks a real subscription would.
  const bool have_ads = bootstrap_.dynamic_resources().has_ads_config();
  auto check = [have_ads](const envoy::config::core::v3::ConfigSource& source, const std::string& path,
                          const std::string&, config::SubscriptionCallbacks&)
      -> absl::StatusOr<std::unique_ptr<config::Subscription>> {
    if (auto s = checkConfigSource(source, path, have_ads); !s.ok()) return s;
    return std::unique_ptr<config::Subscription>();
  };
  if (auto s = cluster_manager_->startEds(check); !s.ok()) return s;
  if (bootstrap_.has_admin() && bootstrap_.admin().has_address() &&
      !bootstrap_.admin().address().has_socket_address()) {
    return absl::InvalidArgumentError("admin.address: a socket_address is required");
  }
  return absl::OkStatus();
}

absl::Status Server::createManagers(bool bind) {
  secrets_ = std::make_unique<tls::SecretManager>(stats_);
  if (auto s = secrets_->addStaticSecrets(bootstrap_.static_resources().secrets()); !s.ok()) return s;
  cluster_manager_ = std::make_unique<upstream::ClusterManager>(stats_, *clusters_, bind ? &main_ : nullptr);
  cluster_manager_->setSecretManager(secrets_.get());
  const auto& node_locality = bootstrap_.node().locality();
  cluster_manager_->setLocalCluster(
      bootstrap_.cluster_manager().local_cluster_name(),
      upstream::LocalityEntry{node_locality.region(), node_locality.zone(), node_locality.sub_zone(), 0});
  if (auto s = cluster_manager_->addStaticClusters(bootstrap_.static_resources().clusters()); !s.ok()) return s;
  // As Envoy: the local cluster is a static one.
  if (const auto& local = bootstrap_.cluster_manager().local_cluster_name();
      !local.empty() && cluster_manager_->entries().find(local) == cluster_manager_->entries().end()) {
    return fieldError("cluster_manager.local_cluster_name",
                      absl::StrCat("local cluster \"", local, "\" must be defined in static_resources.clusters"));
  }
  if (!access_logs_) {
    access_logs_ = std::make_unique<access_log::AccessLogManager>(
        std::chrono::milliseconds(options_.file_flush_interval_msec));
  }
  std::vector<event::Dispatcher*> dispatchers;
  for (auto& w : workers_) dispatchers.push_back(&w->dispatcher());
  rds_ = std::make_unique<router::RdsManager>(main_, std::move(dispatchers), stats_);
  if (bind) {
    // The ADS client exists before any listener, so static listeners can
    // name their route tables over ADS; it starts after CDS subscribed.
    auto mux = createAdsMux(bootstrap_, options_, *cluster_manager_, main_, stats_);
    if (!mux.ok()) return mux.status();
    ads_ = std::move(*mux);
    auto factory = [this](const envoy::config::core::v3::ConfigSource& source, const std::string& path,
                          const std::string& type_url, config::SubscriptionCallbacks& callbacks) {
      return createSubscription(source, path, main_, ads_.get(), type_url, callbacks);
    };
    rds_->setSubscriptionFactory(factory);
    // Static clusters' secrets were asked for before the mux existed.
    if (auto s = secrets_->setSubscriptionFactory(factory); !s.ok()) return s;
  } else {
    const bool have_ads = bootstrap_.dynamic_resources().has_ads_config();
    auto check = [have_ads](const envoy::config::core::v3::ConfigSource& source, const std::string& path,
                            const std::string&, config::SubscriptionCallbacks&)
        -> absl::StatusOr<std::unique_ptr<config::Subscription>> {
      if (auto s = checkConfigSource(source, path, have_ads); !s.ok()) return s;
      return std::unique_ptr<config::Subscription>();
    };
    rds_->setSubscriptionFactory(check);
    if (auto s = secrets_->setSubscriptionFactory(check); !s.ok()) return s;
  }
  listener_manager_ = std::make_unique<ListenerManager>(
      main_, workers_, stats_,
      [this] {
        FactoryContext context{stats_, cluster_manager_->knownClusters().get(), access_logs_.get()};
        context.rds = rds_.get();
        context.secrets = secrets_.get();
        return context;
      },
      std::chrono::seconds(options_.drain_time_s), bind);
  return listener_manager_->addStaticListeners(bootstrap_.static_resources().listeners());
}

absl::Status Server::startDynamicResources() {
  const auto& dynamic = bootstrap_.dynamic_resources();
  auto factory = [this](const envoy::config::core::v3::ConfigSource& source, const std::string& path,
                        const std::string& type_url, config::SubscriptionCallbacks& callbacks) {
    return createSubscription(source, path, main_, ads_.get(), type_url, callbacks);
  };
  // Static EDS clusters subscribe now; their requests wait for the stream.
  if (auto s = cluster_manager_->startEds(factory); !s.ok()) return s;
  // Both subscriptions are created before either starts, so a bad config
  // source fails start-up instead of half-applying.
  if (dynamic.has_cds_config()) {
    config::SubscriptionCallbacks* callbacks = cluster_manager_.get();
    if (ads_ && dynamic.cds_config().has_ads()) {
      cds_callbacks_ = std::make_unique<PausingCdsCallbacks>(*ads_, *cluster_manager_);
      callbacks = cds_callbacks_.get();
    }
    auto sub = createSubscription(dynamic.cds_config(), "dynamic_resources.cds_config", main_, ads_.get(),
                                  config::type_url::kCluster, *callbacks);
    if (!sub.ok()) return sub.status();
    cds_ = std::move(*sub);
  }
  if (dynamic.has_lds_config()) {
    config::SubscriptionCallbacks* callbacks = listener_manager_.get();
    if (ads_ && dynamic.lds_config().has_ads()) {
      lds_callbacks_ = std::make_unique<PausingLdsCallbacks>(*ads_, *listener_manager_);
      callbacks = lds_callbacks_.get();
    }
    auto sub = createSubscription(dynamic.lds_config(), "dynamic_resources.lds_config", main_, ads_.get(),
                                  config::type_url::kListener, *callbacks);
    if (!sub.ok()) return sub.status();
    lds_ = std::move(*sub);
  }
  listener_manager_->setInitialLoadCallback([this] { onInitialLoadsDone(); });
  cluster_manager_->setInitialLoadCallback([this] {
    if (lds_) {
      lds_->start({});
    } else {
      // Static listeners may still wait for their route tables and secrets.
      listener_manager_->markInitialLoadDone();
    }
  });
  if (cds_) {
    cds_->start({});
  } else {
    cluster_manager_->markInitialLoadDone();
  }
  // After CDS registered its interest, so the stream's first request is CDS.
  if (ads_) ads_->start();
  return absl::OkStatus();
}

void Server::onInitialLoadsDone() {
  if (initial_loads_done_) return;
  initial_loads_done_ = true;
  spdlog::info("initial CDS/LDS loads done");
  maybeGoLive();
}

void Server::maybeGoLive() {
  if (!initial_loads_done_ || !workers_started_ || state_ != ServerState::Initializing) return;
  state_ = ServerState::Live;
  stats_.gauge("server.state").set(static_cast<uint64_t>(ServerState::Live));
  stats_.gauge("server.live").set(1);
  spdlog::info("courier is live with {} worker(s)", workers_.size());
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
    return AdminResponse{200, "application/json", configDumpJson(req.get("resource"), req.has("include_eds"), req.get("mask"))};
  });
  admin_->addHandler("/listeners", "print listener info", false, [this](const AdminRequest& req) {
    bool json = req.get("format") == "json";
    return AdminResponse{200, json ? "application/json" : "text/plain", listenersText(json)};
  });
  admin_->addHandler("/clusters", "upstream cluster status", false, [this](const AdminRequest& req) {
    bool json = req.get("format") == "json";
    return AdminResponse{200, json ? "application/json" : "text/plain", clustersText(json)};
  });
  // Envoy's health-check fail switch: the state a health_check HTTP filter
  // answers from (Server::healthCheckFailed()). No such filter exists here
  // yet, so for now it only flips the flag.
  admin_->addHandler("/healthcheck/fail", "cause the server to fail health checks", true,
                     [this](const AdminRequest&) {
                       health_check_failed_ = true;
                       return AdminResponse{200, "text/plain", "OK\n"};
                     });
  admin_->addHandler("/healthcheck/ok", "cause the server to pass health checks", true,
                     [this](const AdminRequest&) {
                       health_check_failed_ = false;
                       return AdminResponse{200, "text/plain", "OK\n"};
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
  stats_.gauge("listener_manager.workers_started").set(1);
  maybeGoLive();
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
  listener_manager_->stopListeners();
  // A draining server takes no more config: an LDS update now would open
  // listeners that nobody drains.
  lds_.reset();
  cds_.reset();
  ads_.reset();
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

namespace {
// ?mask=: applied to each config of the dump (each top-level dump, or with
// ?resource= each element), as Envoy does.
std::string maskedJson(envoy::admin::v3::ConfigDump& dump, const std::string& mask_text) {
  const protobuf::FieldMask mask = protobuf::parseFieldMask(mask_text);
  for (auto& any : *dump.mutable_configs()) protobuf::trimPacked(mask, any);
  return protobuf::toJson(dump, true);
}
}  // namespace

std::string Server::configDumpJson(const std::string& resource, bool include_eds, const std::string& mask) const {
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
    c.set_version_info(cluster_manager_->cdsVersion());
    // Static clusters in bootstrap order, dynamic ones by name, as Envoy lists them.
    for (const auto& cluster : bootstrap_.static_resources().clusters()) {
      auto* sc = c.add_static_clusters();
      sc->mutable_cluster()->PackFrom(cluster);
      *sc->mutable_last_updated() = now;
    }
    std::map<std::string, const upstream::ClusterManager::Entry*> dynamic;
    for (const auto& [name, entry] : cluster_manager_->entries()) {
      if (entry.added_via_api) dynamic.emplace(name, &entry);
    }
    for (const auto& [name, entry] : dynamic) {
      auto* dc = c.add_dynamic_active_clusters();
      dc->set_version_info(entry->version_info);
      dc->mutable_cluster()->PackFrom(entry->proto());
      *dc->mutable_last_updated() = entry->last_updated;
    }
    dump.add_configs()->PackFrom(c);
  }
  {
    envoy::admin::v3::ListenersConfigDump l;
    l.set_version_info(listener_manager_->ldsVersion());
    for (const auto& listener : bootstrap_.static_resources().listeners()) {
      auto* sl = l.add_static_listeners();
      sl->mutable_listener()->PackFrom(listener);
      *sl->mutable_last_updated() = now;
    }
    for (const auto& entry : listener_manager_->listeners()) {
      if (!entry.added_via_api) continue;
      auto* dl = l.add_dynamic_listeners();
      dl->set_name(entry.config->name);
      auto* active = dl->mutable_active_state();
      active->set_version_info(entry.version_info);
      active->mutable_listener()->PackFrom(entry.proto);
      *active->mutable_last_updated() = entry.last_updated;
    }
    for (const auto* entry : listener_manager_->warmingListeners()) {
      envoy::admin::v3::ListenersConfigDump::DynamicListener* dl = nullptr;
      for (auto& existing : *l.mutable_dynamic_listeners()) {
        if (existing.name() == entry->config->name) dl = &existing;
      }
      if (dl == nullptr) {
        dl = l.add_dynamic_listeners();
        dl->set_name(entry->config->name);
      }
      auto* warming = dl->mutable_warming_state();
      warming->set_version_info(entry->version_info);
      warming->mutable_listener()->PackFrom(entry->proto);
      *warming->mutable_last_updated() = entry->last_updated;
    }
    dump.add_configs()->PackFrom(l);
  }
  if (include_eds || resource == "dynamic_endpoint_configs") {
    // Envoy lists endpoints only when asked (?include_eds).
    envoy::admin::v3::EndpointsConfigDump e;
    for (const auto& d : cluster_manager_->endpointDumps()) {
      auto* de = e.add_dynamic_endpoint_configs();
      de->set_version_info(d.version_info);
      de->mutable_endpoint_config()->PackFrom(d.assignment);
      *de->mutable_last_updated() = d.last_updated;
    }
    dump.add_configs()->PackFrom(e);
  }
  {
    // Inline route_config tables are part of their listeners; Envoy lists
    // them here too, but tools read them from the listener.
    envoy::admin::v3::RoutesConfigDump r;
    for (const auto& d : rds_->dumps()) {
      auto* dr = r.add_dynamic_route_configs();
      dr->set_version_info(d.version_info);
      dr->mutable_route_config()->PackFrom(d.config);
      *dr->mutable_last_updated() = d.last_updated;
    }
    dump.add_configs()->PackFrom(r);
  }
  {
    envoy::admin::v3::SecretsConfigDump secrets;
    for (const auto& d : secrets_->staticDumps()) {
      auto* ss = secrets.add_static_secrets();
      ss->set_name(d.name);
      *ss->mutable_last_updated() = d.last_updated;
      ss->mutable_secret()->PackFrom(d.secret);
    }
    for (const auto& d : secrets_->dynamicDumps()) {
      auto* ds = secrets.add_dynamic_active_secrets();
      ds->set_name(d.name);
      ds->set_version_info(d.version_info);
      *ds->mutable_last_updated() = d.last_updated;
      ds->mutable_secret()->PackFrom(d.secret);
    }
    for (const auto& name : secrets_->warmingNames()) secrets.add_dynamic_warming_secrets()->set_name(name);
    dump.add_configs()->PackFrom(secrets);
  }
  if (resource.empty()) return maskedJson(dump, mask);
  // ?resource=static_clusters etc: Envoy returns the matching repeated field's
  // entries, each as its own config.
  envoy::admin::v3::ConfigDump filtered;
  for (const auto& any : dump.configs()) {
    envoy::admin::v3::ClustersConfigDump c;
    envoy::admin::v3::ListenersConfigDump l;
    envoy::admin::v3::RoutesConfigDump r;
    envoy::admin::v3::EndpointsConfigDump e;
    envoy::admin::v3::SecretsConfigDump sd;
    if (any.Is<envoy::admin::v3::SecretsConfigDump>() && any.UnpackTo(&sd)) {
      if (resource == "static_secrets") {
        for (const auto& x : sd.static_secrets()) filtered.add_configs()->PackFrom(x);
      }
      if (resource == "dynamic_active_secrets") {
        for (const auto& x : sd.dynamic_active_secrets()) filtered.add_configs()->PackFrom(x);
      }
      if (resource == "dynamic_warming_secrets") {
        for (const auto& x : sd.dynamic_warming_secrets()) filtered.add_configs()->PackFrom(x);
      }
    }
    if (any.Is<envoy::admin::v3::EndpointsConfigDump>() && any.UnpackTo(&e) &&
        resource == "dynamic_endpoint_configs") {
      for (const auto& x : e.dynamic_endpoint_configs()) filtered.add_configs()->PackFrom(x);
    }
    if (any.Is<envoy::admin::v3::RoutesConfigDump>() && any.UnpackTo(&r) && resource == "dynamic_route_configs") {
      for (const auto& x : r.dynamic_route_configs()) filtered.add_configs()->PackFrom(x);
    }
    if (any.UnpackTo(&c)) {
      if (resource == "static_clusters") {
        for (const auto& x : c.static_clusters()) filtered.add_configs()->PackFrom(x);
      }
      if (resource == "dynamic_active_clusters") {
        for (const auto& x : c.dynamic_active_clusters()) filtered.add_configs()->PackFrom(x);
      }
    }
    if (any.UnpackTo(&l)) {
      if (resource == "static_listeners") {
        for (const auto& x : l.static_listeners()) filtered.add_configs()->PackFrom(x);
      }
      if (resource == "dynamic_listeners") {
        for (const auto& x : l.dynamic_listeners()) filtered.add_configs()->PackFrom(x);
      }
    }
  }
  return maskedJson(filtered, mask);
}

std::string Server::listenersText(bool json) const {
  if (json) {
    envoy::admin::v3::Listeners out;
    for (const auto& l : listener_manager_->listeners()) {
      auto* st = out.add_listener_statuses();
      st->set_name(l.config->name);
      auto* sa = st->mutable_local_address()->mutable_socket_address();
      sa->set_address(l.bound_address.ip());
      sa->set_port_value(l.bound_address.port());
    }
    return protobuf::toJson(out, true, true);
  }
  std::string out;
  for (const auto& l : listener_manager_->listeners()) absl::StrAppend(&out, l.config->name, "::", l.bound_address.asString(), "\n");
  return out;
}

namespace {

// Envoy's /clusters spelling of a host's health flags.
std::string healthFlagsText(uint32_t flags) {
  if (flags == 0) return "healthy";
  std::string out;
  if (flags & upstream::health_flag::kFailedActiveHc) out += "/failed_active_hc";
  if (flags & upstream::health_flag::kFailedOutlierCheck) out += "/failed_outlier_check";
  if (flags & upstream::health_flag::kFailedEdsHealth) out += "/failed_eds_health";
  if (flags & upstream::health_flag::kDegradedActiveHc) out += "/degraded_active_hc";
  if (flags & upstream::health_flag::kDegradedEdsHealth) out += "/degraded_eds_health";
  if (flags & upstream::health_flag::kPendingActiveHc) out += "/pending_active_hc";
  return out;
}

}  // namespace

const upstream::OutlierDetector* Server::outlierDetectorOf(const std::string& cluster_name) const {
  const auto& entries = cluster_manager_->entries();
  auto it = entries.find(cluster_name);
  if (it == entries.end() || it->second.health == nullptr) return nullptr;
  return it->second.health->outlierDetector();
}

std::string Server::clustersText(bool json) const {
  const auto& set = clusters_->latest();
  if (json) {
    envoy::admin::v3::Clusters out;
    for (const auto& [name, cluster] : set->clusters) {
      auto* cs = out.add_cluster_statuses();
      cs->set_name(name);
      cs->set_observability_name(name);
      const upstream::OutlierDetector* detector = outlierDetectorOf(name);
      for (const auto& host : cluster->hosts) {
        auto* hs = cs->add_host_statuses();
        auto* sa = hs->mutable_address()->mutable_socket_address();
        sa->set_address(host->address.ip());
        sa->set_port_value(host->address.port());
        hs->set_hostname(host->hostname);
        hs->set_weight(host->weight);
        const uint32_t flags = host->health_flags.load(std::memory_order_relaxed);
        auto* health = hs->mutable_health_status();
        health->set_failed_active_health_check(flags & upstream::health_flag::kFailedActiveHc);
        health->set_failed_outlier_check(flags & upstream::health_flag::kFailedOutlierCheck);
        health->set_pending_active_hc(flags & upstream::health_flag::kPendingActiveHc);
        health->set_failed_active_degraded_check(flags & upstream::health_flag::kDegradedActiveHc);
        auto eds_health = envoy::config::core::v3::HEALTHY;
        if (flags & upstream::health_flag::kDegradedEdsHealth) eds_health = envoy::config::core::v3::DEGRADED;
        if (flags & upstream::health_flag::kFailedEdsHealth) eds_health = envoy::config::core::v3::UNHEALTHY;
        health->set_eds_health_status(eds_health);
        const double rate = detector != nullptr ? detector->successRate(*host) : -1;
        if (rate >= 0) hs->mutable_success_rate()->set_value(rate);
        const double local_rate = detector != nullptr ? detector->localOriginSuccessRate(*host) : -1;
        if (local_rate >= 0) hs->mutable_local_origin_success_rate()->set_value(local_rate);
        auto stat = [hs](const char* n, uint64_t v, bool gauge) {
          auto* m = hs->add_stats();
          m->set_name(n);
          m->set_value(v);
          if (gauge) m->set_type(envoy::admin::v3::SimpleMetric::GAUGE);
        };
        stat("rq_active", host->active_requests.load(std::memory_order_relaxed), true);
      }
    }
    return protobuf::toJson(out, true, true);
  }
  std::string out;
  for (const auto& [name, cluster] : set->clusters) {
    absl::StrAppend(&out, name, "::observability_name::", name, "\n");
    for (const bool high : {false, true}) {
      const upstream::ResourceManager& limits = cluster->resourcesFor(high);
      const char* prio = high ? "high_priority" : "default_priority";
      absl::StrAppend(&out, name, "::", prio, "::max_connections::", limits.connections.max(), "\n", name, "::", prio,
                      "::max_pending_requests::", limits.pending_requests.max(), "\n", name, "::", prio,
                      "::max_requests::", limits.requests.max(), "\n", name, "::", prio,
                      "::max_retries::", limits.retries.max(), "\n");
    }
    const auto& entries = cluster_manager_->entries();
    auto entry = entries.find(name);
    const bool via_api = entry != entries.end() && entry->second.added_via_api;
    absl::StrAppend(&out, name, "::added_via_api::", via_api ? "true" : "false", "\n");
    const upstream::OutlierDetector* detector = outlierDetectorOf(name);
    for (const auto& host : cluster->hosts) {
      const std::string h = absl::StrCat(name, "::", host->address.asString(), "::");
      for (const char* stat : {"cx_active", "cx_connect_fail", "cx_total"}) absl::StrAppend(&out, h, stat, "::0\n");
      absl::StrAppend(&out, h, "rq_active::", host->active_requests.load(std::memory_order_relaxed), "\n");
      for (const char* stat : {"rq_error", "rq_success", "rq_timeout", "rq_total"}) {
        absl::StrAppend(&out, h, stat, "::0\n");
      }
      const double rate = detector != nullptr ? detector->successRate(*host) : -1;
      const double local_rate = detector != nullptr ? detector->localOriginSuccessRate(*host) : -1;
      absl::StrAppend(&out, h, "hostname::", host->hostname, "\n", h, "health_flags::",
                      healthFlagsText(host->health_flags.load(std::memory_order_relaxed)), "\n", h,
                      "weight::", host->weight, "\n", h, "region::\n", h, "zone::\n", h, "sub_zone::\n", h,
                      "canary::false\n", h, "priority::0\n", h, "success_rate::", rate, "\n", h,
                      "local_origin_success_rate::", local_rate, "\n");
    }
  }
  return out;
}

}  // namespace courier::server
