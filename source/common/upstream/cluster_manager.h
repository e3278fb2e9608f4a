// The main thread's owner of the upstream clusters: static ones from the
// bootstrap and dynamic ones applied from CDS, validated whole and published
// to every worker as one immutable ClusterSet snapshot.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "google/protobuf/repeated_field.h"
#include "google/protobuf/timestamp.pb.h"
#include "source/common/config/subscription.h"
#include "source/common/event/dispatcher.h"
#include "source/common/stats/store.h"
#include "source/common/thread_local/snapshot_slot.h"
#include "source/common/upstream/cluster.h"
#include "source/common/upstream/host_discovery.h"

namespace courier::tls {
class SecretManager;
class SecretProvider;
}  // namespace courier::tls

namespace courier::upstream {

class ClusterHealth;

// cluster_manager.* and cluster_manager.cds.* as Envoy names them.
struct ClusterManagerStats {
  explicit ClusterManagerStats(stats::Store& store);
  stats::Counter& cluster_added;
  stats::Counter& cluster_modified;
  stats::Counter& cluster_removed;
  stats::Counter& cluster_updated;
  stats::Gauge& active_clusters;
  stats::Gauge& warming_clusters;
  stats::Counter& cds_update_attempt;
  stats::Counter& cds_update_success;
  stats::Counter& cds_update_rejected;
  stats::Counter& cds_update_failure;
  stats::Gauge& cds_version;
};

class ClusterManager : public config::SubscriptionCallbacks {
 public:
  // A cluster as it was configured, for /config_dump.
  struct Entry {
    // The Cluster as configured, serialized (deterministically). The parsed
    // message costs ~10x the bytes (a 10-endpoint cluster: ~7 KB against
    // ~0.3 KB) and only /config_dump and change detection read it.
    std::string config;
    ClusterConstSharedPtr cluster;
    bool added_via_api = false;
    std::string version_info;
    google::protobuf::Timestamp last_updated;

    envoy::config::cluster::v3::Cluster proto() const;
    static std::string serialize(const envoy::config::cluster::v3::Cluster& proto);
    // Active health checks and outlier detection of this version, run on
    // the main thread; nullptr without a dispatcher or when not configured.
    std::shared_ptr<ClusterHealth> health;
    // DNS and ORIGINAL_DST clusters: what replaces `cluster` when hosts change.
    std::shared_ptr<HostDiscovery> discovery;
    // While this version warms (EDS's first assignment, DNS's first lookup),
    // the version it replaces, which keeps serving as in Envoy; null for a
    // new cluster, which is absent from the workers' set until warm.
    ClusterConstSharedPtr serving_while_warming;
  };

  // `slot` carries the set to the workers; it outlives this manager. With
  // `main` (the main thread's dispatcher), clusters' health checks and
  // outlier detection run there; without it (config validation) they don't.
  ClusterManager(stats::Store& stats, thread_local_::SnapshotSlot<ClusterSet>& slot,
                 event::Dispatcher* main = nullptr);
  ~ClusterManager() override;

  // bootstrap cluster_manager.local_cluster_name and node.locality, which
  // zone-aware balancers route against; set before any cluster is added.
  void setLocalCluster(std::string name, LocalityEntry locality) {
    local_cluster_name_ = std::move(name);
    local_locality_ = std::move(locality);
  }
  // Where clusters' TLS contexts find their SDS secrets; set before any cluster is added.
  void setSecretManager(tls::SecretManager* secrets) { secrets_ = secrets; }

  // Bootstrap static_resources.clusters; errors name static_resources.clusters[i].
  absl::Status addStaticClusters(const google::protobuf::RepeatedPtrField<envoy::config::cluster::v3::Cluster>& clusters);

  // Main thread: the set the workers route with (warming clusters left out).
  const ClusterSetConstSharedPtr& clusters() const { return slot_.latest(); }
  // Main thread: every cluster, warming ones included: what listeners validate
  // their routes against, as Envoy's validate_clusters counts warming clusters.
  const ClusterSetConstSharedPtr& knownClusters() const { return known_; }
  // By name, static and dynamic.
  const absl::flat_hash_map<std::string, Entry>& entries() const { return entries_; }
  const std::string& cdsVersion() const { return version_info_; }

  // Runs once, after the first CDS delivery or failure (Envoy's initial
  // fetch), so LDS can start after CDS as Envoy warms.
  void setInitialLoadCallback(std::function<void()> cb) { on_initial_load_ = std::move(cb); }
  // For a bootstrap without CDS: nothing to wait for.
  void markInitialLoadDone();

  using SubscriptionFactory = config::SubscriptionFactory;
  // EDS clusters subscribe through `factory` from now on: the static ones at
  // once (errors name their eds_config), CDS ones as they arrive. Until its
  // first ClusterLoadAssignment (or a failed or timed-out fetch) an EDS
  // cluster is warming: a CDS one is not in the set workers route with, and
  // the initial load waits for it, as Envoy's cluster manager does.
  absl::Status startEds(SubscriptionFactory factory);

  // An accepted ClusterLoadAssignment, for /config_dump.
  struct EndpointDump {
    std::string version_info;
    envoy::config::endpoint::v3::ClusterLoadAssignment assignment;
    google::protobuf::Timestamp last_updated;
  };
  // By cluster name.
  std::vector<EndpointDump> endpointDumps() const;
  // Whether `name` waits: an EDS cluster for its first ClusterLoadAssignment,
  // a DNS cluster for its first lookup, or a cluster whose TLS context waits
  // for its SDS secrets (as Envoy's cluster init waits for SDS).
  bool warming(const std::string& name) const;

  // config::SubscriptionCallbacks (CDS).
  absl::Status onConfigUpdate(const std::vector<config::DecodedResource>& resources,
                              const std::string& version_info) override;
  absl::Status onConfigUpdate(const std::vector<config::DecodedResource>& added,
                              const std::vector<std::string>& removed,
                              const std::string& system_version_info) override;
  void onConfigUpdateFailed(config::UpdateFailureReason reason, const absl::Status& error) override;

 private:
  // Builds every added/changed cluster first; nothing changes unless all of
  // them are good. `removed` names dynamic clusters to drop.
  absl::Status apply(const std::vector<config::DecodedResource>& added, const std::vector<std::string>& removed,
                     const std::string& version_info);
  // Starts the host discovery of a cluster `entry` (named `name`) if its type has one.
  absl::Status startDiscovery(const std::string& name, const envoy::config::cluster::v3::Cluster& proto, Entry& entry,
                              const std::string& path);
  // on_applied runs on main once every worker swapped to the new set.
  // A warming CDS cluster is left out (or its predecessor serves in its
  // place); static ones are in from the start, as in Envoy.
  void publish(std::function<void()> on_applied = nullptr);

  class EdsSubscription;
  // An EDS cluster's endpoints changed (or its first fetch ended): serve them.
  void onEndpoints(EdsSubscription& eds, std::function<void()> on_applied);
  // A DNS cluster's first lookup ended: it serves from now on.
  void onDiscoveryWarm(const std::string& name, const HostDiscovery* discovery);
  void updateWarming();
  // The cluster `name` just committed warms until `providers` had their first fetch.
  void waitForSecrets(const std::string& name, const std::vector<std::shared_ptr<tls::SecretProvider>>& providers);
  void onSecretWarm(const std::string& name, uint64_t generation);
  // The initial load is done once CDS delivered (or failed) and no cluster warms.
  void maybeInitialLoadDone();
  std::shared_ptr<ClusterHealth> startHealth(const ClusterConstSharedPtr& cluster, const Cluster* previous);

  stats::Store& store_;
  event::Dispatcher* main_;
  ClusterManagerStats stats_;
  thread_local_::SnapshotSlot<ClusterSet>& slot_;
  absl::flat_hash_map<std::string, Entry> entries_;
  std::string version_info_;
  std::function<void()> on_initial_load_;
  bool cds_initial_done_ = false;
  bool initial_load_done_ = false;
  // EDS state by cluster name.
  absl::flat_hash_map<std::string, std::unique_ptr<EdsSubscription>> eds_;
  SubscriptionFactory eds_factory_;
  tls::SecretManager* secrets_ = nullptr;
  ClusterSetConstSharedPtr known_ = std::make_shared<const ClusterSet>();
  std::string local_cluster_name_;
  LocalityEntry local_locality_;
  struct SecretWait {
    uint64_t generation;
    size_t waiting;
  };
  // Clusters whose TLS secrets have not had their first fetch, by name.
  absl::flat_hash_map<std::string, SecretWait> secret_warming_;
  uint64_t next_secret_generation_ = 1;
  // Lets completions posted back from workers notice the manager is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace courier::upstream
