#include "source/common/upstream/cluster_manager.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/upstream/cluster_factory.h"
#include "spdlog/spdlog.h"

namespace courier::upstream {
namespace {

using ProtoCluster = envoy::config::cluster::v3::Cluster;

}  // namespace

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
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  proto.SerializeToCodedStream(&coded);
  coded.Trim();
  out.shrink_to_fit();
  return out;
}

ClusterManager::ClusterManager(stats::Store& stats, thread_local_::SnapshotSlot<ClusterSet>& slot)
    : store_(stats), stats_(stats), slot_(slot) {}

absl::Status ClusterManager::addStaticClusters(const google::protobuf::RepeatedPtrField<ProtoCluster>& clusters) {
  const auto now = google::protobuf::util::TimeUtil::GetCurrentTime();
  for (int i = 0; i < clusters.size(); ++i) {
    const std::string path = absl::StrCat("static_resources.clusters[", i, "]");
    auto cluster = createCluster(clusters[i], path, store_);
    if (!cluster.ok()) return cluster.status();
    Entry entry{Entry::serialize(clusters[i]), *cluster, false, "", now};
    if (!entries_.emplace((*cluster)->name, std::move(entry)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".name: duplicate cluster name \"", (*cluster)->name, "\""));
    }
  }
  stats_.warming_clusters.set(0);
  publish();
  return absl::OkStatus();
}

void ClusterManager::markInitialLoadDone() {
  if (initial_load_done_) return;
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
    auto cluster = createCluster(*proto, path, store_);
    if (!cluster.ok()) {
      stats_.cds_update_rejected.inc();
      return absl::Status(cluster.status().code(),
                          absl::StrCat("cluster \"", proto->name(), "\": ", cluster.status().message()));
    }
    changes.push_back({proto->name(), Entry{std::move(config), *cluster, true, added[i].version, now},
                       existing == entries_.end()});
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
    ++removed_count;
    stats_.cluster_removed.inc();
    spdlog::info("cds: removed cluster '{}'", name);
  }
  for (auto& change : changes) {
    (change.is_new ? stats_.cluster_added : stats_.cluster_modified).inc();
    spdlog::info("cds: {} cluster '{}'", change.is_new ? "added" : "updated", change.name);
    entries_.insert_or_assign(change.name, std::move(change.entry));
  }
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
  return absl::OkStatus();
}

void ClusterManager::publish(std::function<void()> on_applied) {
  // Workers keep the load-balancer state of clusters whose pointer did not
  // change (ThreadLocalClusterManager::update); requests in flight hold their
  // own shared_ptr to the cluster they started with.
  auto set = std::make_shared<ClusterSet>();
  for (const auto& [name, entry] : entries_) set->clusters.emplace(name, entry.cluster);
  stats_.active_clusters.set(set->clusters.size());
  slot_.publish(std::move(set), std::move(on_applied));
}

}  // namespace courier::upstream
