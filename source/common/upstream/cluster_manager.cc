#include "source/common/upstream/cluster_manager.h"

#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/protobuf/deterministic.h"
#include "source/common/upstream/cluster_factory.h"
#include "source/common/upstream/cluster_health.h"
#include "source/common/upstream/eds.h"
#include "source/common/upstream/priority_lb.h"
#include "source/extensions/transport_sockets/tls/secret_manager.h"
#include "spdlog/spdlog.h"

namespace courier::upstream {
namespace {

using ProtoCluster = envoy::config::cluster::v3::Cluster;
using envoy::config::endpoint::v3::ClusterLoadAssignment;

}  // namespace

// One EDS cluster's subscription and its last accepted endpoints.
class ClusterManager::EdsSubscription : public config::SubscriptionCallbacks {
 public:
  EdsSubscription(ClusterManager& parent, const std::string& cluster, const ProtoCluster::EdsClusterConfig& config,
                  std::string field_path)
      : parent_(parent),
        cluster_(cluster),
        service_name_(config.service_name().empty() ? cluster : config.service_name()),
        source_(config.eds_config()),
        field_path_(std::move(field_path)),
        update_attempt_(counter("update_attempt")),
        update_success_(counter("update_success")),
        update_rejected_(counter("update_rejected")),
        update_failure_(counter("update_failure")),
        update_empty_(counter("update_empty")),
        version_(parent.store_.gauge(absl::StrCat("cluster.", cluster, ".version"))) {}
  ~EdsSubscription() override { *alive_ = false; }

  bool sameSource(const ProtoCluster::EdsClusterConfig& config) const {
    const std::string& name = config.service_name().empty() ? cluster_ : config.service_name();
    return name == service_name_ && google::protobuf::util::MessageDifferencer::Equals(source_, config.eds_config());
  }
  absl::Status subscribe(const SubscriptionFactory& factory) {
    auto made = factory(source_, field_path_, config::type_url::kClusterLoadAssignment, *this);
    if (!made.ok()) return made.status();
    subscription_ = std::move(*made);
    return absl::OkStatus();
  }
  bool subscribed() const { return subscription_ != nullptr; }
  void start() {
    if (subscription_ != nullptr && !started_) {
      started_ = true;
      subscription_->start({service_name_});
    }
  }

  absl::Status onConfigUpdate(const std::vector<config::DecodedResource>& resources,
                              const std::string& version_info) override {
    update_attempt_.inc();
    if (resources.empty()) {
      // Envoy keeps the hosts it has; a warming cluster warms with none.
      update_empty_.inc();
      if (warming) parent_.onEndpoints(*this, nullptr);
      return absl::OkStatus();
    }
    if (resources.size() > 1) {
      return reject(absl::InvalidArgumentError(absl::StrCat("cluster load assignment \"", service_name_,
                                                            "\": expected one resource, got ", resources.size())));
    }
    return apply(resources[0], version_info);
  }
  absl::Status onConfigUpdate(const std::vector<config::DecodedResource>& added,
                              const std::vector<std::string>& removed,
                              const std::string& system_version_info) override {
    if (!added.empty()) return onConfigUpdate(added, system_version_info);
    update_attempt_.inc();
    update_empty_.inc();
    if (!removed.empty()) {
      spdlog::warn("eds: the server removed '{}'; cluster '{}' keeps its endpoints", service_name_, cluster_);
    }
    if (warming) parent_.onEndpoints(*this, nullptr);
    return absl::OkStatus();
  }
  void onConfigUpdateFailed(config::UpdateFailureReason reason, const absl::Status& error) override {
    update_attempt_.inc();
    (reason == config::UpdateFailureReason::UpdateRejected ? update_rejected_ : update_failure_).inc();
    spdlog::warn("eds: cluster '{}': update failed, keeping {} endpoint(s): {}", cluster_, hosts.hosts.size(),
                 std::string(error.message()));
    // Envoy: a fetch that failed or timed out ends warming, with no hosts.
    if (warming) parent_.onEndpoints(*this, nullptr);
  }

  const std::string& cluster() const { return cluster_; }
  const std::string& serviceName() const { return service_name_; }

  bool warming = true;
  bool has_assignment = false;
  EdsHosts hosts;
  ClusterLoadAssignment assignment;
  std::string version_info;
  google::protobuf::Timestamp last_updated;

 private:
  stats::Counter& counter(const char* name) {
    return parent_.store_.counter(absl::StrCat("cluster.", cluster_, ".", name));
  }
  absl::Status reject(absl::Status status) {
    update_rejected_.inc();
    spdlog::warn("eds: update rejected, cluster '{}' keeps its endpoints: {}", cluster_, std::string(status.message()));
    return status;
  }
  absl::Status apply(const config::DecodedResource& resource, const std::string& version) {
    const auto* cla = dynamic_cast<const ClusterLoadAssignment*>(resource.resource.get());
    if (cla == nullptr) {
      return reject(absl::InvalidArgumentError(
          absl::StrCat("resources[0]: not a ", ClusterLoadAssignment::descriptor()->full_name())));
    }
    const std::string prefix = absl::StrCat("cluster load assignment \"", service_name_, "\": ");
    if (cla->cluster_name() != service_name_) {
      return reject(absl::InvalidArgumentError(absl::StrCat(prefix, "resources[0].cluster_name: expected \"",
                                                            service_name_, "\", got \"", cla->cluster_name(), "\"")));
    }
    auto built = hostsFromAssignment(*cla, "resources[0]", hosts.all, hosts.localities);
    if (!built.ok()) {
      return reject(absl::Status(built.status().code(), absl::StrCat(prefix, built.status().message())));
    }
    version_info = version;
    version_.set(config::versionHash(version));
    if (has_assignment && !warming && google::protobuf::util::MessageDifferencer::Equals(assignment, *cla)) {
      update_success_.inc();
      return absl::OkStatus();
    }
    hosts = std::move(*built);
    assignment = *cla;
    has_assignment = true;
    last_updated = google::protobuf::util::TimeUtil::GetCurrentTime();
    spdlog::info("eds: cluster '{}' has {} endpoint(s) (version '{}')", cluster_, hosts.hosts.size(), version);
    // Success is counted once every worker balances over the new hosts.
    parent_.onEndpoints(*this, [this, alive = alive_] {
      if (*alive) update_success_.inc();
    });
    return absl::OkStatus();
  }

  ClusterManager& parent_;
  const std::string cluster_;
  const std::string service_name_;
  const envoy::config::core::v3::ConfigSource source_;
  const std::string field_path_;
  std::unique_ptr<config::Subscription> subscription_;
  bool started_ = false;
  stats::Counter& update_attempt_;
  stats::Counter& update_success_;
  stats::Counter& update_rejected_;
  stats::Counter& update_failure_;
  stats::Counter& update_empty_;
  stats::Gauge& version_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

ClusterManagerStats::ClusterManagerStats(stats::Store& store)
    : cluster_added(store.counter("cluster_manager.cluster_added")),
      cluster_modified(store.counter("cluster_manager.cluster_modified")),
      cluster_removed(store.counter("cluster_manager.cluster_removed")),
      cluster_updated(store.counter("cluster_manager.cluster_updated")),
      active_clusters(store.gauge("cluster_manager.active_clusters")),
      warming_clusters(store.gauge("cluster_manager.warming_clusters")),
      cds_update_attempt(store.counter("cluster_manager.cds.update_attempt")),
      cds_update_success(store.counter("cluster_manager.cds.update_success")),
      cds_update_rejected(store.counter("cluster_manager.cds.update_rejected")),
      cds_update_failure(store.counter("cluster_manager.cds.update_failure")),
      cds_version(store.gauge("cluster_manager.cds.version")) {}

ProtoCluster ClusterManager::Entry::proto() const {
  ProtoCluster proto;
  proto.ParseFromString(config);
  return proto;
}

std::string ClusterManager::Entry::serialize(const ProtoCluster& proto) {
  // Deterministic, so that the same cluster always compares equal.
  return protobuf::deterministicBytes(proto);
}

ClusterManager::ClusterManager(stats::Store& stats, thread_local_::SnapshotSlot<ClusterSet>& slot,
                               event::Dispatcher* main)
    : store_(stats), main_(main), stats_(stats), slot_(slot) {}

std::shared_ptr<ClusterHealth> ClusterManager::startHealth(const ClusterConstSharedPtr& cluster,
                                                           const Cluster* previous) {
  if (main_ == nullptr) return nullptr;
  return ClusterHealth::create(cluster, previous, *main_, store_);
}

ClusterManager::~ClusterManager() {
  *alive_ = false;
  // The EDS subscriptions call back into this manager: they go first.
  eds_.clear();
}

absl::Status ClusterManager::addStaticClusters(const google::protobuf::RepeatedPtrField<ProtoCluster>& clusters) {
  const auto now = google::protobuf::util::TimeUtil::GetCurrentTime();
  for (int i = 0; i < clusters.size(); ++i) {
    const std::string path = absl::StrCat("static_resources.clusters[", i, "]");
    std::vector<std::shared_ptr<tls::SecretProvider>> secrets;
    auto cluster = createCluster(clusters[i], path, store_, secrets_, &secrets, !local_cluster_name_.empty());
    if (!cluster.ok()) return cluster.status();
    Entry entry{Entry::serialize(clusters[i]), *cluster, false, "", now, startHealth(*cluster, nullptr)};
    if (auto s = startDiscovery((*cluster)->name, clusters[i], entry, path); !s.ok()) return s;
    if (!entries_.emplace((*cluster)->name, std::move(entry)).second) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".name: duplicate cluster name \"", (*cluster)->name, "\""));
    }
    waitForSecrets((*cluster)->name, secrets);
    if (clusters[i].type() == ProtoCluster::EDS) {
      // Subscribed by startEds(), once the ADS client exists.
      eds_[(*cluster)->name] = std::make_unique<EdsSubscription>(
          *this, (*cluster)->name, clusters[i].eds_cluster_config(), path + ".eds_cluster_config.eds_config");
    }
  }
  updateWarming();
  publish();
  return absl::OkStatus();
}

absl::Status ClusterManager::startEds(SubscriptionFactory factory) {
  eds_factory_ = std::move(factory);
  for (auto& [name, eds] : eds_) {
    if (eds->subscribed()) continue;
    if (auto s = eds->subscribe(eds_factory_); !s.ok()) return s;
  }
  for (auto& [name, eds] : eds_) eds->start();
  return absl::OkStatus();
}

bool ClusterManager::warming(const std::string& name) const {
  if (secret_warming_.contains(name)) return true;
  auto eds = eds_.find(name);
  if (eds != eds_.end() && eds->second->warming) return true;
  auto entry = entries_.find(name);
  return entry != entries_.end() && entry->second.discovery != nullptr && !entry->second.discovery->warm();
}

void ClusterManager::waitForSecrets(const std::string& name,
                                    const std::vector<std::shared_ptr<tls::SecretProvider>>& providers) {
  secret_warming_.erase(name);
  std::vector<std::shared_ptr<tls::SecretProvider>> waiting;
  for (const auto& p : providers) {
    if (!p->warm()) waiting.push_back(p);
  }
  if (waiting.empty()) return;
  const uint64_t generation = next_secret_generation_++;
  secret_warming_[name] = SecretWait{generation, waiting.size()};
  spdlog::info("cluster '{}' warms until {} secret(s) arrive", name, waiting.size());
  for (const auto& p : waiting) {
    p->onWarm([this, alive = alive_, name, generation] {
      if (*alive) onSecretWarm(name, generation);
    });
  }
}

void ClusterManager::onSecretWarm(const std::string& name, uint64_t generation) {
  auto it = secret_warming_.find(name);
  // Replaced or removed while it warmed.
  if (it == secret_warming_.end() || it->second.generation != generation) return;
  if (--it->second.waiting > 0) return;
  secret_warming_.erase(it);
  spdlog::info("cluster '{}' warmed: its secrets arrived", name);
  updateWarming();
  std::shared_ptr<bool> alive = alive_;
  publish([this, alive] {
    if (*alive) maybeInitialLoadDone();
  });
}

std::vector<ClusterManager::EndpointDump> ClusterManager::endpointDumps() const {
  std::map<std::string, EndpointDump> sorted;
  for (const auto& [name, eds] : eds_) {
    if (eds->has_assignment) sorted.emplace(name, EndpointDump{eds->version_info, eds->assignment, eds->last_updated});
  }
  std::vector<EndpointDump> out;
  for (auto& [name, dump] : sorted) out.push_back(std::move(dump));
  return out;
}

void ClusterManager::onEndpoints(EdsSubscription& eds, std::function<void()> on_applied) {
  auto it = entries_.find(eds.cluster());
  if (it == entries_.end()) return;
  Entry& entry = it->second;
  const ClusterConstSharedPtr previous = entry.cluster;
  entry.cluster = clusterWithAssignment(*entry.cluster, eds.hosts);
  // Health checks and outlier state follow the new host set (by address).
  entry.health = startHealth(entry.cluster, previous.get());
  if (eds.warming) {
    eds.warming = false;
    entry.serving_while_warming.reset();
    spdlog::info("eds: cluster '{}' warmed", eds.cluster());
  }
  updateWarming();
  std::shared_ptr<bool> alive = alive_;
  publish([this, alive, on_applied = std::move(on_applied)] {
    if (on_applied) on_applied();
    if (*alive) maybeInitialLoadDone();
  });
}

void ClusterManager::onDiscoveryWarm(const std::string& name, const HostDiscovery* discovery) {
  auto it = entries_.find(name);
  // A version replaced or removed meanwhile took its discovery with it.
  if (it == entries_.end() || it->second.discovery.get() != discovery) return;
  it->second.serving_while_warming.reset();
  spdlog::info("cluster '{}' warmed with {} host(s)", name, it->second.cluster->hosts.size());
  updateWarming();
  std::shared_ptr<bool> alive = alive_;
  publish([this, alive] {
    if (*alive) maybeInitialLoadDone();
  });
}

void ClusterManager::updateWarming() {
  size_t warming = 0;
  // As Envoy's gauge: CDS clusters only. Static ones are active from the
  // start (routes may name them), though the initial load waits for them.
  for (const auto& [name, entry] : entries_) warming += entry.added_via_api && this->warming(name) ? 1 : 0;
  stats_.warming_clusters.set(warming);
}

void ClusterManager::markInitialLoadDone() {
  cds_initial_done_ = true;
  maybeInitialLoadDone();
}

void ClusterManager::maybeInitialLoadDone() {
  if (initial_load_done_ || !cds_initial_done_) return;
  for (const auto& [name, entry] : entries_) {
    if (warming(name)) return;
  }
  initial_load_done_ = true;
  if (on_initial_load_) {
    // Moved out first: the callback may start LDS, which may call back here.
    auto cb = std::move(on_initial_load_);
    cb();
  }
}

absl::Status ClusterManager::onConfigUpdate(const std::vector<config::DecodedResource>& resources,
                                            const std::string& version_info) {
  // State of the world: every dynamic cluster not named is removed.
  absl::flat_hash_set<std::string> named;
  for (const auto& r : resources) named.insert(r.name);
  std::vector<std::string> removed;
  for (const auto& [name, entry] : entries_) {
    if (entry.added_via_api && !named.contains(name)) removed.push_back(name);
  }
  return apply(resources, removed, version_info);
}

absl::Status ClusterManager::onConfigUpdate(const std::vector<config::DecodedResource>& added,
                                            const std::vector<std::string>& removed,
                                            const std::string& system_version_info) {
  return apply(added, removed, system_version_info);
}

void ClusterManager::onConfigUpdateFailed(config::UpdateFailureReason reason, const absl::Status& error) {
  stats_.cds_update_attempt.inc();
  if (reason == config::UpdateFailureReason::UpdateRejected) {
    stats_.cds_update_rejected.inc();
  } else {
    stats_.cds_update_failure.inc();
  }
  spdlog::warn("cds: update failed, keeping {} cluster(s): {}", entries_.size(), std::string(error.message()));
  // Envoy does not hold the server back on a CDS source that cannot deliver.
  markInitialLoadDone();
}

absl::Status ClusterManager::apply(const std::vector<config::DecodedResource>& added,
                                   const std::vector<std::string>& removed, const std::string& version_info) {
  stats_.cds_update_attempt.inc();
  const auto now = google::protobuf::util::TimeUtil::GetCurrentTime();
  struct Change {
    std::string name;
    Entry entry;
    bool is_new;
    // EDS: a new subscription, or none when the current one carries over.
    std::unique_ptr<EdsSubscription> eds;
    bool is_eds = false;
    // The SDS secrets its TLS context uses: it warms until they arrive.
    std::vector<std::shared_ptr<tls::SecretProvider>> secrets;
  };
  std::vector<Change> changes;
  for (size_t i = 0; i < added.size(); ++i) {
    const auto* proto = dynamic_cast<const ProtoCluster*>(added[i].resource.get());
    const std::string path = absl::StrCat("resources[", i, "]");
    if (proto == nullptr) {
      stats_.cds_update_rejected.inc();
      return absl::InvalidArgumentError(absl::StrCat(path, ": not a ", ProtoCluster::descriptor()->full_name()));
    }
    auto existing = entries_.find(proto->name());
    if (existing != entries_.end()) {
      if (!existing->second.added_via_api) {
        // Envoy: a static cluster cannot be changed through the API; the rest
        // of the update still applies.
        spdlog::warn("cds: cluster '{}' is static; its CDS version is ignored", proto->name());
        continue;
      }
    }
    std::string config = Entry::serialize(*proto);
    if (existing != entries_.end() && existing->second.config == config) continue;
    std::vector<std::shared_ptr<tls::SecretProvider>> secrets;
    auto cluster = createCluster(*proto, path, store_, secrets_, &secrets, !local_cluster_name_.empty());
    if (!cluster.ok()) {
      stats_.cds_update_rejected.inc();
      return absl::Status(cluster.status().code(),
                          absl::StrCat("cluster \"", proto->name(), "\": ", cluster.status().message()));
    }
    std::unique_ptr<EdsSubscription> eds;
    if (proto->type() == ProtoCluster::EDS) {
      auto current = eds_.find(proto->name());
      if (current == eds_.end() || !current->second->sameSource(proto->eds_cluster_config())) {
        eds = std::make_unique<EdsSubscription>(*this, proto->name(), proto->eds_cluster_config(),
                                                path + ".eds_cluster_config.eds_config");
        if (eds_factory_) {
          if (auto s = eds->subscribe(eds_factory_); !s.ok()) {
            stats_.cds_update_rejected.inc();
            return absl::Status(s.code(), absl::StrCat("cluster \"", proto->name(), "\": ", s.message()));
          }
        }
      }
    }
    Entry entry{std::move(config), *cluster, true, added[i].version, now};
    if (auto s = startDiscovery(proto->name(), *proto, entry, path); !s.ok()) {
      stats_.cds_update_rejected.inc();
      return absl::Status(s.code(), absl::StrCat("cluster \"", proto->name(), "\": ", s.message()));
    }
    changes.push_back({proto->name(), std::move(entry), existing == entries_.end(), std::move(eds),
                       proto->type() == ProtoCluster::EDS, std::move(secrets)});
  }

  size_t removed_count = 0;
  for (const auto& name : removed) {
    auto it = entries_.find(name);
    if (it == entries_.end()) continue;
    if (!it->second.added_via_api) {
      spdlog::warn("cds: cluster '{}' is static and cannot be removed by CDS", name);
      continue;
    }
    entries_.erase(it);
    eds_.erase(name);
    secret_warming_.erase(name);
    ++removed_count;
    stats_.cluster_removed.inc();
    spdlog::info("cds: removed cluster '{}'", name);
  }
  std::vector<EdsSubscription*> to_start;
  for (auto& change : changes) {
    // What serves now, before the new version's EDS state replaces the old.
    ClusterConstSharedPtr serving;
    if (auto old = entries_.find(change.name); old != entries_.end()) {
      serving = warming(change.name) ? old->second.serving_while_warming : old->second.cluster;
    }
    (change.is_new ? stats_.cluster_added : stats_.cluster_modified).inc();
    spdlog::info("cds: {} cluster '{}'", change.is_new ? "added" : "updated", change.name);
    if (change.eds != nullptr) {
      to_start.push_back(change.eds.get());
      eds_[change.name] = std::move(change.eds);
    } else if (!change.is_eds) {
      eds_.erase(change.name);
    } else if (auto& current = eds_[change.name]; !current->warming) {
      // Same endpoints source: the new settings serve the hosts it has.
      change.entry.cluster = clusterWithAssignment(*change.entry.cluster, current->hosts);
    }
    {
      // Health checks follow the version that serves (with EDS's hosts).
      auto old = entries_.find(change.name);
      change.entry.health =
          startHealth(change.entry.cluster, old == entries_.end() ? nullptr : old->second.cluster.get());
    }
    entries_.insert_or_assign(change.name, std::move(change.entry));
    waitForSecrets(change.name, change.secrets);
    if (warming(change.name)) entries_[change.name].serving_while_warming = std::move(serving);
  }
  updateWarming();
  // Unchanged clusters keep their version info; the set's version moves on.
  version_info_ = version_info;
  stats_.cds_version.set(config::versionHash(version_info));
  // Success is counted once every worker routes with the new set, so that
  // whoever watches the counter can rely on the next request seeing it.
  std::shared_ptr<bool> alive = alive_;
  auto done = [this, alive] {
    if (!*alive) return;
    stats_.cds_update_success.inc();
    markInitialLoadDone();
  };
  if (!changes.empty() || removed_count > 0) {
    publish(std::move(done));
  } else {
    done();
  }
  // After the commit: a file subscription may deliver from start().
  for (EdsSubscription* eds : to_start) eds->start();
  return absl::OkStatus();
}

absl::Status ClusterManager::startDiscovery(const std::string& name, const ProtoCluster& proto, Entry& entry,
                                            const std::string& path) {
  // The callback runs later on main; the entry may have been replaced or
  // removed by then, and with it this discovery (so it no longer calls).
  auto discovery = createHostDiscovery(proto, path, entry.cluster, slot_.mainDispatcher(), store_,
                                       [this, name](ClusterConstSharedPtr next) {
                                         auto it = entries_.find(name);
                                         if (it == entries_.end()) return;
                                         const ClusterConstSharedPtr previous = it->second.cluster;
                                         it->second.cluster = std::move(next);
                                         // Health checks follow the new hosts.
                                         it->second.health = startHealth(it->second.cluster, previous.get());
                                         stats_.cluster_updated.inc();
                                         publish();
                                       });
  if (!discovery.ok()) return discovery.status();
  entry.discovery = std::move(*discovery);
  if (entry.discovery != nullptr && !entry.discovery->warm()) {
    const HostDiscovery* raw = entry.discovery.get();
    entry.discovery->setOnWarm([this, name, raw] { onDiscoveryWarm(name, raw); });
  }
  return absl::OkStatus();
}

void ClusterManager::publish(std::function<void()> on_applied) {
  // Workers keep the load-balancer state of clusters whose pointer did not
  // change (ThreadLocalClusterManager::update); requests in flight hold their
  // own shared_ptr to the cluster they started with.
  auto set = std::make_shared<ClusterSet>();
  set->local_cluster_name = local_cluster_name_;
  set->local_locality = local_locality_;
  set->clusters.reserve(entries_.size());
  bool any_warming = false;
  for (const auto& [name, entry] : entries_) {
    if (!entry.added_via_api || !warming(name)) {
      set->clusters.emplace(name, entry.cluster);
      continue;
    }
    any_warming = true;
    if (entry.serving_while_warming != nullptr) set->clusters.emplace(name, entry.serving_while_warming);
  }
  if (!any_warming) {
    // Nothing warms (the usual case): the known clusters are the served
    // ones, and one table serves both (a second one was ~70 B per cluster).
    known_ = set;
  } else {
    auto known = std::make_shared<ClusterSet>();
    known->clusters.reserve(entries_.size());
    for (const auto& [name, entry] : entries_) known->clusters.emplace(name, entry.cluster);
    known_ = std::move(known);
  }
  stats_.active_clusters.set(set->clusters.size());
  slot_.publish(std::move(set), std::move(on_applied));
}

}  // namespace courier::upstream
