#include "source/common/upstream/cluster.h"

#include "absl/strings/str_cat.h"

namespace courier::upstream {

ClusterStats::ClusterStats(stats::Store& store, const std::string& cluster_name)
#define COURIER_CLUSTER_COUNTER(n) n(store.counter(absl::StrCat("cluster.", cluster_name, "." #n)))
#define COURIER_CLUSTER_GAUGE(n) n(store.gauge(absl::StrCat("cluster.", cluster_name, "." #n)))
    : COURIER_CLUSTER_COUNTER(upstream_cx_total),
      COURIER_CLUSTER_GAUGE(upstream_cx_active),
      COURIER_CLUSTER_COUNTER(upstream_cx_connect_fail),
      COURIER_CLUSTER_COUNTER(upstream_cx_connect_timeout),
      COURIER_CLUSTER_COUNTER(upstream_cx_destroy),
      COURIER_CLUSTER_COUNTER(upstream_cx_destroy_local),
      COURIER_CLUSTER_COUNTER(upstream_cx_destroy_remote),
      COURIER_CLUSTER_COUNTER(upstream_cx_rx_bytes_total),
      COURIER_CLUSTER_COUNTER(upstream_cx_tx_bytes_total),
      COURIER_CLUSTER_COUNTER(upstream_cx_none_healthy),
      COURIER_CLUSTER_COUNTER(upstream_flow_control_paused_reading_total),
      COURIER_CLUSTER_COUNTER(upstream_flow_control_resumed_reading_total),
      COURIER_CLUSTER_GAUGE(membership_total),
      COURIER_CLUSTER_GAUGE(membership_healthy) {
}
#undef COURIER_CLUSTER_COUNTER
#undef COURIER_CLUSTER_GAUGE

}  // namespace courier::upstream
