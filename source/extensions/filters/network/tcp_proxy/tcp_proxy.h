// envoy.filters.network.tcp_proxy: forwards a downstream connection's bytes
// to a host of an upstream cluster and back, with half-close, connect
// timeout, idle timeout and flow control in both directions.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "source/common/access_log/access_log.h"
#include "source/common/network/connection.h"
#include "source/common/stream_info/stream_info.h"
#include "source/common/stats/store.h"
#include "source/common/upstream/outlier_detection.h"
#include "source/server/filter_config.h"

namespace courier::extensions::tcp_proxy {

// tcp.<stat_prefix>.* as Envoy names them.
struct TcpProxyStats {
  TcpProxyStats(stats::Store& store, const std::string& prefix);
  stats::Counter& downstream_cx_total;
  stats::Counter& downstream_cx_no_route;
  stats::Counter& downstream_cx_tx_bytes_total;
  stats::Counter& downstream_cx_rx_bytes_total;
  stats::Counter& downstream_flow_control_paused_reading_total;
  stats::Counter& downstream_flow_control_resumed_reading_total;
  stats::Counter& idle_timeout;
};

struct WeightedCluster {
  std::string name;
  uint32_t weight;
};

struct TcpProxyConfig {
  std::string stat_prefix;
  // Exactly one of cluster or weighted_clusters.
  std::string cluster;
  std::vector<WeightedCluster> weighted_clusters;
  uint64_t total_weight = 0;
  std::chrono::milliseconds idle_timeout{3600 * 1000};  // Envoy's default: 1h; 0 disables
  uint32_t max_connect_attempts = 1;
  // hash_policy source_ip: hash-based clusters keep a client IP on one host.
  bool hash_source_ip = false;
  std::unique_ptr<TcpProxyStats> stats;
  std::vector<std::unique_ptr<access_log::AccessLog>> access_logs;

  const std::string& pickCluster(uint64_t random) const;
};

class TcpProxy : public network::ReadFilter, public network::ConnectionCallbacks {
 public:
  TcpProxy(std::shared_ptr<const TcpProxyConfig> config, server::WorkerContext& worker);
  ~TcpProxy() override;

  void initializeReadFilterCallbacks(network::ReadFilterCallbacks& callbacks) override;
  network::FilterStatus onNewConnection() override;
  network::FilterStatus onData(buffer::Buffer& data, bool end_stream) override;

  // Downstream events and watermarks.
  void onEvent(network::ConnectionEvent event) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;

 private:
  // Callbacks and filter for the upstream connection.
  struct Upstream : public network::ConnectionCallbacks, public network::ReadFilter {
    explicit Upstream(TcpProxy& parent) : parent(parent) {}
    void onEvent(network::ConnectionEvent event) override { parent.onUpstreamEvent(event); }
    void onAboveWriteBufferHighWatermark() override;
    void onBelowWriteBufferLowWatermark() override;
    void initializeReadFilterCallbacks(network::ReadFilterCallbacks&) override {}
    network::FilterStatus onData(buffer::Buffer& data, bool end_stream) override;
    TcpProxy& parent;
  };

  void connectUpstream();
  void onUpstreamEvent(network::ConnectionEvent event);
  void onConnectTimeout();
  void reportOutlier(upstream::LocalOriginEvent event);
  void onConnectFailure();
  void onIdleTimeout();
  void resetIdleTimer();
  void releaseUpstream(bool local_close);

  std::shared_ptr<const TcpProxyConfig> config_;
  server::WorkerContext& worker_;
  network::ReadFilterCallbacks* callbacks_ = nullptr;
  upstream::ClusterConstSharedPtr cluster_;
  std::unique_ptr<network::Connection> upstream_;
  Upstream upstream_callbacks_;
  std::unique_ptr<event::Timer> connect_timer_;
  // The host of the current connect attempt (kept alive by cluster_).
  const upstream::Host* upstream_host_ = nullptr;
  std::unique_ptr<event::Timer> idle_timer_;
  uint32_t connect_attempts_ = 0;
  bool upstream_connected_ = false;
  stream_info::StreamInfo info_;
  bool downstream_read_paused_for_connect_ = false;
};

// Registered under "envoy.filters.network.tcp_proxy".
std::unique_ptr<server::NetworkFilterConfigFactory> createTcpProxyConfigFactory();

}  // namespace courier::extensions::tcp_proxy
