#include "source/extensions/filters/network/tcp_proxy/tcp_proxy.h"
#include "source/common/common/random.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "source/common/upstream/hash.h"
#include "source/common/upstream/load_balancer.h"
#include "spdlog/spdlog.h"

namespace courier::extensions::tcp_proxy {

TcpProxyStats::TcpProxyStats(stats::Store& store, const std::string& prefix)
#define COURIER_TCP_COUNTER(n) n(store.counter(absl::StrCat("tcp.", prefix, "." #n)))
    : COURIER_TCP_COUNTER(downstream_cx_total),
      COURIER_TCP_COUNTER(downstream_cx_no_route),
      COURIER_TCP_COUNTER(downstream_cx_tx_bytes_total),
      COURIER_TCP_COUNTER(downstream_cx_rx_bytes_total),
      COURIER_TCP_COUNTER(downstream_flow_control_paused_reading_total),
      COURIER_TCP_COUNTER(downstream_flow_control_resumed_reading_total),
      COURIER_TCP_COUNTER(idle_timeout) {
}
#undef COURIER_TCP_COUNTER

const std::string& TcpProxyConfig::pickCluster(uint64_t random) const {
  if (weighted_clusters.empty()) return cluster;
  uint64_t point = random % total_weight;
  for (const auto& wc : weighted_clusters) {
    if (point < wc.weight) return wc.name;
    point -= wc.weight;
  }
  return weighted_clusters.back().name;
}

TcpProxy::TcpProxy(std::shared_ptr<const TcpProxyConfig> config, server::WorkerContext& worker)
    : config_(std::move(config)), worker_(worker), upstream_callbacks_(*this) {}

TcpProxy::~TcpProxy() {
  if (upstream_ != nullptr) {
    upstream_->removeConnectionCallbacks(upstream_callbacks_);
    upstream_->close(network::CloseType::NoFlush);
    releaseUpstream(true);
  }
  if (callbacks_ != nullptr && !config_->access_logs.empty()) {
    if (!info_.last_downstream_tx_byte_sent) {
      info_.last_downstream_tx_byte_sent = std::chrono::steady_clock::now() - info_.start_mono;
    }
    for (const auto& log : config_->access_logs) log->log(info_);
  }
}

void TcpProxy::initializeReadFilterCallbacks(network::ReadFilterCallbacks& callbacks) {
  callbacks_ = &callbacks;
  network::Connection& downstream = callbacks.connection();
  downstream.addConnectionCallbacks(*this);
  // FINs travel through the proxy in each direction on their own.
  downstream.enableHalfClose(true);
  downstream.setConnectionStats({&config_->stats->downstream_cx_rx_bytes_total,
                                 &config_->stats->downstream_cx_tx_bytes_total});
}

network::FilterStatus TcpProxy::onNewConnection() {
  config_->stats->downstream_cx_total.inc();
  info_.start_time = std::chrono::system_clock::now();
  info_.start_mono = std::chrono::steady_clock::now();
  info_.downstream_remote_address = callbacks_->connection().remoteAddress();
  info_.downstream_local_address = callbacks_->connection().localAddress();
  if (config_->idle_timeout.count() > 0) {
    idle_timer_ = worker_.dispatcher.createTimer([this] { onIdleTimeout(); });
    resetIdleTimer();
  }
  // Hold downstream bytes in the kernel until there is somewhere to send them.
  callbacks_->connection().readDisable(true);
  downstream_read_paused_for_connect_ = true;
  connectUpstream();
  return network::FilterStatus::StopIteration;
}

void TcpProxy::connectUpstream() {
  const std::string& name = config_->pickCluster(threadRandom()());
  upstream::ThreadLocalCluster* cluster = worker_.cluster_manager.get(name);
  network::Connection& downstream = callbacks_->connection();
  info_.upstream_cluster = name;
  if (cluster == nullptr) {
    info_.setResponseFlag(stream_info::kNoClusterFound);
    config_->stats->downstream_cx_no_route.inc();
    spdlog::debug("[C{}] tcp_proxy: no cluster named '{}'", downstream.id(), name);
    downstream.close(network::CloseType::NoFlush);
    return;
  }
  cluster_ = cluster->shared();
  // tcp_proxy has no routing priority: its connections count against the
  // DEFAULT thresholds, as Envoy's. Checked before a host is picked, so a
  // full breaker costs no connect.
  if (!cluster_->resources->connections.canCreate()) {
    info_.setResponseFlag(stream_info::kUpstreamOverflow);
    cluster_->stats->upstream_cx_overflow.inc();
    downstream.close(network::CloseType::NoFlush);
    return;
  }
  std::optional<uint64_t> hash;
  if (config_->hash_source_ip && info_.downstream_remote_address.valid()) {
    hash = upstream::xxHash64(info_.downstream_remote_address.ip());
  }
  upstream::FixedLoadBalancerContext context(hash, &info_.downstream_remote_address);
  context.setDownstreamLocalAddress(&info_.downstream_local_address);
  const upstream::Host* host = cluster->loadBalancer().chooseHost(&context);
  if (host == nullptr) {
    info_.setResponseFlag(stream_info::kNoHealthyUpstream);
    cluster_->stats->upstream_cx_none_healthy.inc();
    downstream.close(network::CloseType::NoFlush);
    return;
  }
  ++connect_attempts_;
  upstream_host_ = host;
  info_.upstream_host = host->address;
  upstream_ = network::Connection::connect(worker_.dispatcher, host->address,
                                           cluster_->transport_socket_factory != nullptr
                                               ? cluster_->transport_socket_factory->createTransportSocket()
                                               : nullptr);
  upstream_->addConnectionCallbacks(upstream_callbacks_);
  upstream_->addReadFilter(std::make_unique<Upstream>(*this));
  upstream_->enableHalfClose(true);
  upstream_->setBufferLimits(cluster_->per_connection_buffer_limit_bytes);
  upstream_->setConnectionStats({&cluster_->stats->upstream_cx_rx_bytes_total,
                                 &cluster_->stats->upstream_cx_tx_bytes_total});
  cluster_->stats->upstream_cx_total.inc();
  cluster_->stats->upstream_cx_active.inc();
  cluster_->resources->connections.inc();
  connect_timer_ = worker_.dispatcher.createTimer([this] { onConnectTimeout(); });
  connect_timer_->enable(cluster_->connect_timeout);
}

network::FilterStatus TcpProxy::onData(buffer::Buffer& data, bool end_stream) {
  resetIdleTimer();
  if (upstream_ != nullptr) {
    upstream_->write(data, end_stream);
  } else {
    data.drain(data.length());
  }
  return network::FilterStatus::StopIteration;
}

network::FilterStatus TcpProxy::Upstream::onData(buffer::Buffer& data, bool end_stream) {
  parent.resetIdleTimer();
  parent.callbacks_->connection().write(data, end_stream);
  return network::FilterStatus::StopIteration;
}

void TcpProxy::onEvent(network::ConnectionEvent event) {
  if (event == network::ConnectionEvent::Connected) return;
  // The connection is still whole here; the destructor runs while it is torn down.
  const network::Connection& downstream = callbacks_->connection();
  info_.bytes_received = downstream.bytesRead();
  info_.bytes_sent = downstream.bytesWritten();
  info_.last_downstream_tx_byte_sent = std::chrono::steady_clock::now() - info_.start_mono;
  // The downstream side is gone for good (a FIN alone does not get here: it
  // arrives as end_stream). Nothing can be answered any more, so the upstream
  // is closed too; bytes it still had queued belong to a dead exchange.
  if (idle_timer_) idle_timer_->disable();
  if (connect_timer_) connect_timer_->disable();
  if (upstream_ != nullptr) {
    upstream_->removeConnectionCallbacks(upstream_callbacks_);
    upstream_->close(network::CloseType::NoFlush);
    releaseUpstream(true);
  }
}

void TcpProxy::onUpstreamEvent(network::ConnectionEvent event) {
  network::Connection& downstream = callbacks_->connection();
  if (event == network::ConnectionEvent::Connected) {
    upstream_connected_ = true;
    connect_timer_->disable();
    reportOutlier(upstream::LocalOriginEvent::ConnectSuccess);
    if (downstream_read_paused_for_connect_) {
      downstream_read_paused_for_connect_ = false;
      downstream.readDisable(false);
    }
    return;
  }
  if (!upstream_connected_) {
    // RemoteClose before Connected is a failed connect (refused, unreachable).
    if (event == network::ConnectionEvent::RemoteClose) cluster_->stats->upstream_cx_connect_fail.inc();
    reportOutlier(upstream::LocalOriginEvent::ConnectFailed);
    onConnectFailure();
    return;
  }
  releaseUpstream(event == network::ConnectionEvent::LocalClose);
  downstream.close(network::CloseType::FlushWrite);
}

void TcpProxy::reportOutlier(upstream::LocalOriginEvent event) {
  // As Envoy's tcp_proxy: connect outcomes are the host's local-origin results.
  if (cluster_->outlier != nullptr && upstream_host_ != nullptr) cluster_->outlier->reportLocalOrigin(*upstream_host_, event);
}

void TcpProxy::onConnectTimeout() {
  cluster_->stats->upstream_cx_connect_timeout.inc();
  reportOutlier(upstream::LocalOriginEvent::Timeout);
  upstream_->removeConnectionCallbacks(upstream_callbacks_);
  upstream_->close(network::CloseType::NoFlush);
  onConnectFailure();
}

void TcpProxy::onConnectFailure() {
  connect_timer_->disable();
  releaseUpstream(false);
  if (connect_attempts_ < config_->max_connect_attempts) {
    connectUpstream();
    return;
  }
  info_.setResponseFlag(stream_info::kUpstreamConnectionFailure);
  callbacks_->connection().close(network::CloseType::NoFlush);
}

void TcpProxy::releaseUpstream(bool local_close) {
  if (upstream_ == nullptr) return;
  cluster_->resources->connections.dec();
  cluster_->stats->upstream_cx_active.dec();
  cluster_->stats->upstream_cx_destroy.inc();
  (local_close ? cluster_->stats->upstream_cx_destroy_local : cluster_->stats->upstream_cx_destroy_remote).inc();
  upstream_->removeConnectionCallbacks(upstream_callbacks_);
  // We may be inside the upstream connection's own callback.
  worker_.dispatcher.deferredDelete(std::move(upstream_));
}

void TcpProxy::onAboveWriteBufferHighWatermark() {
  // Downstream can't keep up: stop reading the upstream.
  if (upstream_ == nullptr) return;
  cluster_->stats->upstream_flow_control_paused_reading_total.inc();
  upstream_->readDisable(true);
}

void TcpProxy::onBelowWriteBufferLowWatermark() {
  if (upstream_ == nullptr) return;
  cluster_->stats->upstream_flow_control_resumed_reading_total.inc();
  upstream_->readDisable(false);
}

void TcpProxy::Upstream::onAboveWriteBufferHighWatermark() {
  parent.config_->stats->downstream_flow_control_paused_reading_total.inc();
  parent.callbacks_->connection().readDisable(true);
}

void TcpProxy::Upstream::onBelowWriteBufferLowWatermark() {
  parent.config_->stats->downstream_flow_control_resumed_reading_total.inc();
  parent.callbacks_->connection().readDisable(false);
}

void TcpProxy::resetIdleTimer() {
  if (idle_timer_) idle_timer_->enable(config_->idle_timeout);
}

void TcpProxy::onIdleTimeout() {
  config_->stats->idle_timeout.inc();
  callbacks_->connection().close(network::CloseType::NoFlush);
}

}  // namespace courier::extensions::tcp_proxy
