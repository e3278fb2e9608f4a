// The main-thread half of a cluster whose hosts change after it is built
// (STRICT_DNS, LOGICAL_DNS, ORIGINAL_DST): it owns the lookups and timers,
// and hands the cluster manager a new immutable cluster version when the
// host set changes. Static and EDS clusters have none.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "source/common/event/dispatcher.h"
#include "source/common/stats/store.h"
#include "source/common/upstream/cluster.h"

namespace courier::upstream {

class HostDiscovery {
 public:
  virtual ~HostDiscovery() = default;

  // Main thread. Whether the first discovery ended (a DNS cluster's first
  // lookup answered or failed): until then the cluster warms, as Envoy's
  // cluster initialization. Kinds with nothing to wait for are warm at once.
  bool warm() const { return warm_; }
  // Runs `cb` once when the discovery becomes warm (never from inside this call).
  void setOnWarm(std::function<void()> cb) { on_warm_ = std::move(cb); }

 protected:
  explicit HostDiscovery(bool warm = true) : warm_(warm) {}
  void setWarm() {
    if (warm_) return;
    warm_ = true;
    if (on_warm_) {
      auto cb = std::move(on_warm_);
      cb();
    }
  }

 private:
  bool warm_;
  std::function<void()> on_warm_;
};

// Main thread: publish `next` in place of the cluster's current version.
using HostsChangedCallback = std::function<void(ClusterConstSharedPtr next)>;

// A new version of `base` with `hosts` (same settings and stats; the
// load-balancer state rebuilt for the new hosts).
ClusterConstSharedPtr withHosts(const Cluster& base, std::vector<HostConstSharedPtr> hosts);

// nullptr for cluster types whose hosts are fixed by config (or by EDS).
// `cluster` is what createCluster() built from `config`; the first lookup
// starts on the next loop iteration, never inside this call.
absl::StatusOr<std::unique_ptr<HostDiscovery>> createHostDiscovery(
    const envoy::config::cluster::v3::Cluster& config, const std::string& path, ClusterConstSharedPtr cluster,
    event::Dispatcher& dispatcher, stats::Store& stats, HostsChangedCallback on_change);

}  // namespace courier::upstream
