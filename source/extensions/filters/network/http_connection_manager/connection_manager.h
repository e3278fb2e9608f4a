// envoy.filters.network.http_connection_manager: turns a downstream
// connection's bytes into HTTP streams (HTTP/1.1, or HTTP/2 with many streams
// per connection), runs each stream
// through its HTTP filter chain (the router last), and owns what is the
// connection's business: request ids, x-forwarded-*, stream timeouts, local
// replies, stats and access logs.
#pragma once

#include <chrono>
#include <list>
#include <memory>
#include <string>

#include "source/common/access_log/access_log.h"
#include "source/common/http/codec.h"
#include "source/common/http/filter.h"
#include "source/common/http/http1/codec.h"
#include "source/common/http/http2/codec.h"
#include "source/common/http/pool/conn_pool.h"
#include "source/common/network/connection.h"
#include "source/common/router/rds.h"
#include "source/common/router/route_table.h"
#include "source/common/stats/store.h"
#include "source/server/filter_config.h"

namespace courier::extensions::http_connection_manager {

// http2.* (Envoy's downstream HTTP/2 codec stats, in the root scope): a
// connection's codec counts on its own and adds them here once, when it ends,
// so nothing shared is touched per frame.
struct Http2CodecCounters {
  explicit Http2CodecCounters(stats::Store& store);
  void add(const http::http2::Http2Stats& s);
  stats::Counter& rx_reset;
  stats::Counter& tx_reset;
  stats::Counter& goaway_sent;
  stats::Counter& header_overflow;
  stats::Counter& rx_messaging_error;
  stats::Counter& inbound_empty_frames_flood;
  stats::Counter& inbound_priority_frames_flood;
  stats::Counter& inbound_window_update_frames_flood;
  stats::Counter& outbound_flood;
  stats::Counter& outbound_control_flood;
};

// http.<stat_prefix>.* as Envoy names them.
struct HcmStats {
  HcmStats(stats::Store& store, const std::string& prefix);
  stats::Counter& downstream_cx_total;
  stats::Gauge& downstream_cx_active;
  stats::Counter& downstream_cx_protocol_error;
  stats::Counter& downstream_rq_total;
  stats::Gauge& downstream_rq_active;
  stats::Counter& downstream_rq_1xx;
  stats::Counter& downstream_rq_2xx;
  stats::Counter& downstream_rq_3xx;
  stats::Counter& downstream_rq_4xx;
  stats::Counter& downstream_rq_5xx;
  stats::Counter& downstream_rq_timeout;
  stats::Counter& downstream_rq_too_large;
  stats::Counter& rs_too_large;
  stats::Histogram& downstream_rq_time;
  Http2CodecCounters http2;
};

// codec_type: AUTO picks HTTP/2 when the client opens with the HTTP/2
// connection preface (prior knowledge on plaintext), HTTP/1 otherwise.
enum class CodecType { Auto, Http1, Http2 };

struct HcmConfig {
  std::string stat_prefix;
  CodecType codec_type = CodecType::Auto;
  http::http2::Http2Settings http2;
  // Inline route_config; or, with rds, the table each worker currently has.
  std::shared_ptr<const courier::router::RouteTable> route_table;
  std::shared_ptr<courier::router::RouteConfigProvider> rds;
  http::http1::Http1Settings http1;
  std::string server_name = "envoy";
  bool generate_request_id = true;
  bool use_remote_address = false;
  uint32_t xff_num_trusted_hops = 0;
  bool skip_xff_append = false;
  bool preserve_external_request_id = false;
  std::chrono::milliseconds stream_idle_timeout{300000};
  std::chrono::milliseconds request_timeout{0};
  std::chrono::milliseconds request_headers_timeout{0};
  std::chrono::milliseconds max_stream_duration{0};
  std::chrono::milliseconds idle_timeout{3600000};
  // Bytes a filter may buffer per direction (Envoy takes the listener's
  // per_connection_buffer_limit_bytes, 1 MiB by default).
  uint32_t buffer_limit = 1024 * 1024;
  std::unique_ptr<HcmStats> stats;
  std::vector<std::unique_ptr<access_log::AccessLog>> access_logs;
  // http_filters in config order; the router last.
  std::vector<http::FilterFactoryCb> filter_factories;
};

class ActiveStream;

class ConnectionManager : public network::ReadFilter,
                          public network::ConnectionCallbacks,
                          public http::ServerConnectionCallbacks {
 public:
  ConnectionManager(std::shared_ptr<const HcmConfig> config, server::WorkerContext& worker);
  ~ConnectionManager() override;

  // ReadFilter
  void initializeReadFilterCallbacks(network::ReadFilterCallbacks& callbacks) override;
  network::FilterStatus onNewConnection() override;
  network::FilterStatus onData(buffer::Buffer& data, bool end_stream) override;
  // ConnectionCallbacks
  void onEvent(network::ConnectionEvent event) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;
  // The listener is draining: HTTP/1 finishes the stream in flight with
  // "connection: close", or closes at once when idle; HTTP/2 sends GOAWAY and
  // closes once the streams in flight are done.
  void onDrainStarted() override;
  // ServerConnectionCallbacks
  http::RequestDecoder& newStream(http::ResponseEncoder& encoder) override;

  // Called by the stream.
  void flushOutput();
  // Writes the output later in this loop iteration, batching encoder calls.
  void scheduleFlush();
  void onStreamComplete(ActiveStream& stream);
  network::Connection& connection() { return callbacks_->connection(); }
  const HcmConfig& config() const { return *config_; }
  const std::shared_ptr<const HcmConfig>& sharedConfig() const { return config_; }
  server::WorkerContext& worker() { return worker_; }
  // Valid only while !http2().
  http::http1::ServerConnection& codec() { return *codec_; }
  bool http2() const { return h2_codec_ != nullptr; }
  // An HTTP/2 stream was reset (by the peer, by us, or by the connection
  // closing): it leaves the connection and is deleted after this turn.
  void onStreamReset(ActiveStream& stream);

 private:
  void dispatch();
  void onCodecError(const http::CodecError& error);
  void deferDeleteStream(ActiveStream& stream);
  // AUTO: true once the codec is chosen; false while the first bytes could
  // still be the start of the HTTP/2 preface.
  bool chooseCodec();
  void closeIfDrainedHttp2();

  std::shared_ptr<const HcmConfig> config_;
  server::WorkerContext& worker_;
  network::ReadFilterCallbacks* callbacks_ = nullptr;
  buffer::Buffer input_;
  buffer::Buffer output_;
  // Exactly one of the two once the codec is chosen.
  std::unique_ptr<http::http1::ServerConnection> codec_;
  std::unique_ptr<http::http2::ServerConnection> h2_codec_;
  bool h2_stats_added_ = false;  // the codec's counts went to HcmStats::http2
  bool codec_chosen_ = false;
  bool goaway_sent_ = false;  // HTTP/2 drain: close once the last stream ends
  // HTTP/1 holds at most one stream at a time; HTTP/2 one per open stream.
  std::list<std::unique_ptr<ActiveStream>> streams_;
  std::unique_ptr<event::Timer> idle_timer_;
  std::unique_ptr<event::SchedulableCallback> flush_cb_;
  std::unique_ptr<event::Timer> headers_timer_;
  bool closing_ = false;
  bool dispatching_ = false;
  bool input_paused_ = false;
  bool redispatch_ = false;
};

// Finds an HTTP filter extension by typed_config type (or, without one, by name).
using HttpFilterLookup =
    std::function<server::HttpFilterConfigFactory*(const std::string& config_type, const std::string& name)>;

// Registered under "envoy.filters.network.http_connection_manager".
std::unique_ptr<server::NetworkFilterConfigFactory> createHttpConnectionManagerConfigFactory(
    HttpFilterLookup http_filters);

}  // namespace courier::extensions::http_connection_manager
