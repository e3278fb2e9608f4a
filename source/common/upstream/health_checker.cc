#include "source/common/upstream/health_checker.h"

#include <algorithm>
#include <cctype>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/common/field_error.h"
#include "source/common/common/random.h"
#include "source/common/http/http1/client_codec.h"
#include "source/common/http/http2/client_codec.h"
#include "source/common/network/connection.h"
#include "spdlog/spdlog.h"

namespace courier::upstream {
namespace {

using google::protobuf::util::TimeUtil;
using ProtoHealthCheck = envoy::config::core::v3::HealthCheck;

absl::StatusOr<std::chrono::milliseconds> requiredDuration(const google::protobuf::Duration& d, bool has,
                                                           const std::string& path) {
  if (!has) return fieldError(path, "is required");
  const int64_t ms = TimeUtil::DurationToMilliseconds(d);
  if (ms <= 0) return fieldError(path, "must be greater than 0s");
  return std::chrono::milliseconds(ms);
}

absl::Status optionalDuration(const google::protobuf::Duration& d, bool has, const std::string& path,
                              std::chrono::milliseconds& out, bool allow_zero = false) {
  if (!has) return absl::OkStatus();
  const int64_t ms = TimeUtil::DurationToMilliseconds(d);
  if (ms < 0 || (ms == 0 && !allow_zero)) return fieldError(path, "must be greater than 0s");
  out = std::chrono::milliseconds(ms);
  return absl::OkStatus();
}

absl::StatusOr<std::string> payloadBytes(const ProtoHealthCheck::Payload& p, const std::string& path) {
  if (p.has_binary()) return p.binary();
  const std::string& text = p.text();
  const bool hex = text.size() % 2 == 0 &&
                   std::all_of(text.begin(), text.end(), [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)); });
  if (!hex) return fieldError(path + ".text", "must be hex-encoded bytes");
  return absl::HexStringToBytes(text);
}

// grpc.health.v1.HealthCheckRequest{service = 1} in a gRPC message frame.
std::string grpcHealthRequest(const std::string& service) {
  std::string message;
  if (!service.empty()) {
    message.push_back(0x0a);
    uint64_t n = service.size();
    while (n >= 0x80) {
      message.push_back(static_cast<char>((n & 0x7f) | 0x80));
      n >>= 7;
    }
    message.push_back(static_cast<char>(n));
    message += service;
  }
  std::string frame(5, '\0');
  const uint32_t len = message.size();
  frame[1] = static_cast<char>(len >> 24);
  frame[2] = static_cast<char>(len >> 16);
  frame[3] = static_cast<char>(len >> 8);
  frame[4] = static_cast<char>(len);
  return frame + message;
}

// The status field (1) of a framed grpc.health.v1.HealthCheckResponse, or -1
// when the bytes are not one. Absent means UNKNOWN (0).
int grpcServingStatus(const std::string& frame) {
  if (frame.size() < 5 || frame[0] != 0) return -1;
  const uint32_t len = (uint32_t(uint8_t(frame[1])) << 24) | (uint32_t(uint8_t(frame[2])) << 16) |
                       (uint32_t(uint8_t(frame[3])) << 8) | uint32_t(uint8_t(frame[4]));
  if (frame.size() - 5 != len) return -1;
  int status = 0;
  size_t i = 5;
  auto varint = [&](uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64 && i < frame.size(); shift += 7) {
      const uint8_t b = frame[i++];
      v |= uint64_t(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  };
  while (i < frame.size()) {
    uint64_t key, v;
    if (!varint(key)) return -1;
    switch (key & 7) {
      case 0:
        if (!varint(v)) return -1;
        if ((key >> 3) == 1) status = static_cast<int>(v);
        break;
      case 1: i += 8; break;
      case 5: i += 4; break;
      case 2:
        if (!varint(v) || v > frame.size() - i) return -1;
        i += v;
        break;
      default: return -1;
    }
  }
  return i == frame.size() ? status : -1;
}

}  // namespace

namespace {

// A method Envoy lets carry a health-check request body.
bool methodTakesBody(envoy::config::core::v3::RequestMethod m) {
  return m != envoy::config::core::v3::METHOD_UNSPECIFIED && m != envoy::config::core::v3::GET &&
         m != envoy::config::core::v3::HEAD && m != envoy::config::core::v3::DELETE &&
         m != envoy::config::core::v3::TRACE;
}

// What response_buffer_size 0 ("no limit") keeps at most, so that a peer
// cannot make a check buffer without end.
constexpr uint64_t kMaxResponseBuffer = 16 * 1024 * 1024;

absl::Status parseHeaderList(const google::protobuf::RepeatedPtrField<envoy::config::core::v3::HeaderValueOption>& list,
                             const std::string& field_path, std::vector<std::pair<std::string, std::string>>& out) {
  for (int i = 0; i < list.size(); ++i) {
    const auto& hv = list[i].header();
    if (hv.key().empty() || hv.key()[0] == ':') {
      return fieldError(absl::StrCat(field_path, "[", i, "].header.key"), "must be a non-empty, non-pseudo header name");
    }
    out.emplace_back(absl::AsciiStrToLower(hv.key()), hv.value().empty() ? hv.raw_value() : hv.value());
  }
  return absl::OkStatus();
}

absl::StatusOr<HealthCheckConfig> parseHealthCheck(const ProtoHealthCheck& p, const std::string& path) {
  HealthCheckConfig c;
  auto timeout = requiredDuration(p.timeout(), p.has_timeout(), path + ".timeout");
  if (!timeout.ok()) return timeout.status();
  c.timeout = *timeout;
  auto interval = requiredDuration(p.interval(), p.has_interval(), path + ".interval");
  if (!interval.ok()) return interval.status();
  c.interval = *interval;
  if (!p.has_unhealthy_threshold()) return fieldError(path + ".unhealthy_threshold", "is required");
  if (!p.has_healthy_threshold()) return fieldError(path + ".healthy_threshold", "is required");
  c.unhealthy_threshold = std::max<uint32_t>(1, p.unhealthy_threshold().value());
  c.healthy_threshold = std::max<uint32_t>(1, p.healthy_threshold().value());
  if (auto s = optionalDuration(p.initial_jitter(), p.has_initial_jitter(), path + ".initial_jitter",
                                c.initial_jitter, true);
      !s.ok()) {
    return s;
  }
  if (auto s = optionalDuration(p.interval_jitter(), p.has_interval_jitter(), path + ".interval_jitter",
                                c.interval_jitter, true);
      !s.ok()) {
    return s;
  }
  c.interval_jitter_percent = p.interval_jitter_percent();
  if (auto s = optionalDuration(p.no_traffic_interval(), p.has_no_traffic_interval(), path + ".no_traffic_interval",
                                c.no_traffic_interval);
      !s.ok()) {
    return s;
  }
  // Envoy: no_traffic_healthy_interval defaults to no_traffic_interval,
  // unhealthy_interval to interval, unhealthy_edge_interval to
  // unhealthy_interval, healthy_edge_interval to interval.
  c.no_traffic_healthy_interval = c.no_traffic_interval;
  if (auto s = optionalDuration(p.no_traffic_healthy_interval(), p.has_no_traffic_healthy_interval(),
                                path + ".no_traffic_healthy_interval", c.no_traffic_healthy_interval);
      !s.ok()) {
    return s;
  }
  c.unhealthy_interval = c.interval;
  if (auto s = optionalDuration(p.unhealthy_interval(), p.has_unhealthy_interval(), path + ".unhealthy_interval",
                                c.unhealthy_interval);
      !s.ok()) {
    return s;
  }
  c.unhealthy_edge_interval = c.unhealthy_interval;
  if (auto s = optionalDuration(p.unhealthy_edge_interval(), p.has_unhealthy_edge_interval(),
                                path + ".unhealthy_edge_interval", c.unhealthy_edge_interval);
      !s.ok()) {
    return s;
  }
  c.healthy_edge_interval = c.interval;
  if (auto s = optionalDuration(p.healthy_edge_interval(), p.has_healthy_edge_interval(),
                                path + ".healthy_edge_interval", c.healthy_edge_interval);
      !s.ok()) {
    return s;
  }
  if (p.has_reuse_connection()) c.reuse_connection = p.reuse_connection().value();
  if (p.has_alt_port()) {
    if (p.alt_port().value() == 0 || p.alt_port().value() > 65535) {
      return fieldError(path + ".alt_port", "must be a port number 1-65535");
    }
    c.alt_port = p.alt_port().value();
  }
  c.always_log_health_check_failures = p.always_log_health_check_failures();
  for (int i = 0; i < p.tls_options().alpn_protocols_size(); ++i) {
    const std::string& proto = p.tls_options().alpn_protocols(i);
    if (proto.empty() || proto.size() > 255) {
      return fieldError(absl::StrCat(path, ".tls_options.alpn_protocols[", i, "]"), "must be 1 to 255 bytes");
    }
    c.alpn_protocols.push_back(proto);
  }
  // Health-check event logging is not implemented: the options are accepted
  // (a config carrying them still loads) and said to do nothing.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  const bool event_log = !p.event_log_path().empty();
#pragma GCC diagnostic pop
  if (event_log || !p.event_logger().empty() || p.has_event_service()) {
    spdlog::warn("{}: health check event logging (event_log_path, event_logger, event_service) is not "
                 "implemented; no events are written",
                 path);
  }

  switch (p.health_checker_case()) {
    case ProtoHealthCheck::kHttpHealthCheck: {
      const auto& h = p.http_health_check();
      const std::string hpath = path + ".http_health_check";
      c.type = HealthCheckConfig::Type::Http;
      if (h.path().empty()) return fieldError(hpath + ".path", "must not be empty");
      c.path = h.path();
      c.host = h.host();
      c.http2 = h.codec_client_type() == envoy::type::v3::HTTP2;
      if (h.codec_client_type() == envoy::type::v3::HTTP3) {
        return fieldError(hpath + ".codec_client_type", "HTTP3 health checks are not supported");
      }
      auto ranges = [&](const auto& list, const char* field,
                        std::vector<std::pair<uint64_t, uint64_t>>& out) -> absl::Status {
        for (int i = 0; i < list.size(); ++i) {
          const auto& r = list[i];
          if (r.start() < 100 || r.end() > 600 || r.start() >= r.end()) {
            return fieldError(absl::StrCat(hpath, ".", field, "[", i, "]"),
                              "must be a non-empty range [start, end) within [100, 600)");
          }
          out.emplace_back(r.start(), r.end());
        }
        return absl::OkStatus();
      };
      if (auto s = ranges(h.expected_statuses(), "expected_statuses", c.expected_statuses); !s.ok()) return s;
      if (auto s = ranges(h.retriable_statuses(), "retriable_statuses", c.retriable_statuses); !s.ok()) return s;
      if (h.has_service_name_matcher()) {
        auto matcher = router::compileStringMatcher(h.service_name_matcher(), hpath + ".service_name_matcher");
        if (!matcher.ok()) return matcher.status();
        c.service_name_matcher = std::move(*matcher);
      }
      for (const auto& name : h.request_headers_to_remove()) c.request_headers_to_remove.push_back(absl::AsciiStrToLower(name));
      if (c.expected_statuses.empty()) c.expected_statuses.emplace_back(200, 201);
      if (auto s = parseHeaderList(h.request_headers_to_add(), hpath + ".request_headers_to_add",
                                   c.request_headers_to_add);
          !s.ok()) {
        return s;
      }
      if (h.method() != envoy::config::core::v3::METHOD_UNSPECIFIED) {
        if (h.method() == envoy::config::core::v3::CONNECT) {
          return fieldError(hpath + ".method", "CONNECT is not allowed");
        }
        c.method = envoy::config::core::v3::RequestMethod_Name(h.method());
      }
      if (h.has_send()) {
        // As Envoy: a body only with a method that carries one.
        if (!methodTakesBody(h.method())) {
          return fieldError(hpath + ".send", absl::StrCat("needs a method that carries a request body (POST, PUT, "
                                                          "PATCH, OPTIONS), not ",
                                                          c.method));
        }
        auto bytes = payloadBytes(h.send(), hpath + ".send");
        if (!bytes.ok()) return bytes.status();
        c.send = *bytes;
      }
      if (h.has_response_buffer_size()) c.response_buffer_size = h.response_buffer_size().value();
      uint64_t expected = 0;
      for (int i = 0; i < h.receive_size(); ++i) {
        auto bytes = payloadBytes(h.receive(i), absl::StrCat(hpath, ".receive[", i, "]"));
        if (!bytes.ok()) return bytes.status();
        expected += bytes->size();
        c.receive.push_back(*bytes);
      }
      if (c.response_buffer_size != 0 && expected > c.response_buffer_size) {
        return fieldError(hpath + ".receive", absl::StrCat("expects ", expected,
                                                           " bytes, more than response_buffer_size (",
                                                           c.response_buffer_size, ")"));
      }
      if (c.response_buffer_size == 0 || c.response_buffer_size > kMaxResponseBuffer) {
        c.response_buffer_size = kMaxResponseBuffer;
      }
      break;
    }
    case ProtoHealthCheck::kTcpHealthCheck: {
      const auto& t = p.tcp_health_check();
      const std::string tpath = path + ".tcp_health_check";
      c.type = HealthCheckConfig::Type::Tcp;
      if (t.has_send()) {
        auto bytes = payloadBytes(t.send(), tpath + ".send");
        if (!bytes.ok()) return bytes.status();
        c.send = *bytes;
      }
      for (int i = 0; i < t.receive_size(); ++i) {
        auto bytes = payloadBytes(t.receive(i), absl::StrCat(tpath, ".receive[", i, "]"));
        if (!bytes.ok()) return bytes.status();
        c.receive.push_back(*bytes);
      }
      if (t.has_proxy_protocol_config()) {
        return fieldError(tpath + ".proxy_protocol_config", "is not supported yet");
      }
      break;
    }
    case ProtoHealthCheck::kGrpcHealthCheck: {
      const auto& g = p.grpc_health_check();
      c.type = HealthCheckConfig::Type::Grpc;
      c.service_name = g.service_name();
      c.authority = g.authority();
      c.http2 = true;
      if (auto s = parseHeaderList(g.initial_metadata(), path + ".grpc_health_check.initial_metadata",
                                   c.request_headers_to_add);
          !s.ok()) {
        return s;
      }
      break;
    }
    case ProtoHealthCheck::kCustomHealthCheck:
      return fieldError(path + ".custom_health_check",
                        absl::StrCat("custom health checker \"", p.custom_health_check().name(), "\" is not supported"));
    default:
      return fieldError(path, "one of http_health_check, tcp_health_check or grpc_health_check is required");
  }
  return c;
}

}  // namespace

absl::StatusOr<std::shared_ptr<HealthCheckSink>> parseHealthChecks(
    const google::protobuf::RepeatedPtrField<ProtoHealthCheck>& checks, const std::string& cluster_path) {
  if (checks.empty()) return std::shared_ptr<HealthCheckSink>();
  std::vector<HealthCheckConfig> configs;
  configs.reserve(checks.size());
  for (int i = 0; i < checks.size(); ++i) {
    auto c = parseHealthCheck(checks[i], absl::StrCat(cluster_path, ".health_checks[", i, "]"));
    if (!c.ok()) return c.status();
    configs.push_back(std::move(*c));
  }
  return std::make_shared<HealthCheckSink>(std::move(configs));
}

std::chrono::milliseconds nextCheckDelay(const HealthCheckConfig& config, bool had_traffic, bool healthy,
                                         HealthTransition transition, uint64_t random) {
  const bool pending = transition == HealthTransition::ChangePending;
  std::chrono::milliseconds base;
  if (!had_traffic) {
    base = healthy && !pending ? config.no_traffic_healthy_interval : config.no_traffic_interval;
  } else if (healthy) {
    base = pending ? config.healthy_edge_interval : config.interval;
  } else {
    base = pending ? config.unhealthy_edge_interval : config.unhealthy_interval;
  }
  int64_t ms = base.count();
  const int64_t percent_span = ms * config.interval_jitter_percent / 100;
  if (percent_span > 0) ms += static_cast<int64_t>(random % static_cast<uint64_t>(percent_span));
  if (config.interval_jitter.count() > 0) {
    // A second draw from the same value, independent enough for spreading.
    ms += static_cast<int64_t>((random >> 32) % static_cast<uint64_t>(config.interval_jitter.count()));
  }
  return std::chrono::milliseconds(ms);
}

std::chrono::milliseconds firstCheckDelay(const HealthCheckConfig& config, uint64_t random) {
  if (config.initial_jitter.count() <= 0) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(random % static_cast<uint64_t>(config.initial_jitter.count()));
}

void HealthCheckSink::reportImmediateFailure(const Host& host) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (main_ == nullptr || callback_ == nullptr) return;
  std::weak_ptr<Callback> weak = callback_;
  const Host* h = &host;
  main_->post([weak, h] {
    if (auto cb = weak.lock()) (*cb)(h);
  });
}

void HealthCheckSink::bind(event::Dispatcher* main, std::shared_ptr<Callback> callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  main_ = main;
  callback_ = std::move(callback);
}

HealthCheckerStats::HealthCheckerStats(stats::Store& store, const std::string& cluster_name)
#define COURIER_HC_STAT(kind, n) n(store.kind(absl::StrCat("cluster.", cluster_name, ".health_check." #n)))
    : COURIER_HC_STAT(counter, attempt),
      COURIER_HC_STAT(counter, success),
      COURIER_HC_STAT(counter, failure),
      COURIER_HC_STAT(counter, passive_failure),
      COURIER_HC_STAT(counter, network_failure),
      COURIER_HC_STAT(counter, verify_cluster),
      COURIER_HC_STAT(gauge, healthy),
      COURIER_HC_STAT(gauge, degraded) {
}
#undef COURIER_HC_STAT

// What the socket, the codec and the response state of one probe
// connection are. Deleted deferred as a whole, since a probe often ends from
// inside the connection's or the codec's own callback.
struct ProbeWire : event::DeferredDeletable {
  std::unique_ptr<network::Connection> connection;
  buffer::Buffer output;
  std::unique_ptr<http::http1::ClientConnection> http1;
  std::unique_ptr<http::http2::ClientConnection> http2;
  bool connected = false;
};

class HealthChecker::Session : public network::ConnectionCallbacks,
                               public http::ResponseDecoder,
                               public http::StreamCallbacks {
 public:
  // A host new to active checks starts failed and pending its first check.
  Session(HealthChecker& parent, const HealthCheckConfig& config, const Host& host, size_t index)
      : parent_(parent),
        config_(config),
        host_(host),
        index_(index),
        interval_timer_(parent.dispatcher_.createTimer([this] { onInterval(); })),
        timeout_timer_(parent.dispatcher_.createTimer([this] { onTimeout(); })) {}
  ~Session() override { closeWire(); }

  void start() { interval_timer_->enable(firstCheckDelay(config_, threadRandom()())); }
  // Carried over from the cluster version this one replaces.
  void carryOver(bool failed, bool pending, bool degraded) {
    failed_ = failed;
    pending_ = pending;
    first_check_ = pending;
    degraded_verdict_ = degraded;
  }
  bool failed() const { return failed_; }
  bool pending() const { return pending_; }
  bool degraded() const { return degraded_verdict_; }
  void immediateFailure() {
    // A probe in flight is abandoned: its connection cannot carry the next.
    if (in_flight_) closeWire();
    fail(true, false, "x-envoy-immediate-health-check-fail");
  }

  // network::ConnectionCallbacks
  void onEvent(network::ConnectionEvent event) override {
    if (event == network::ConnectionEvent::Connected) {
      wire_->connected = true;
      if (!in_flight_) return;
      if (config_.type == HealthCheckConfig::Type::Tcp) {
        startTcp();
      } else {
        flushOutput();
      }
      return;
    }
    // The connection is gone (connect failure, peer close, our close). We
    // are inside its callback: it is deleted later, never here.
    auto wire = releaseWire();
    if (!in_flight_) {
      if (wire != nullptr) parent_.dispatcher_.deferredDelete(std::move(wire));
      return;
    }
    if (wire != nullptr && wire->http1 != nullptr && response_started_) {
      // A close-delimited response ends here.
      wire->http1->onConnectionClosed();
      if (!in_flight_) {
        parent_.dispatcher_.deferredDelete(std::move(wire));
        return;
      }
    }
    if (wire != nullptr) parent_.dispatcher_.deferredDelete(std::move(wire));
    fail(false, true, "connection closed");
  }

  void onData(buffer::Buffer& data) {
    if (wire_ == nullptr) {
      data.drain(data.length());
      return;
    }
    if (config_.type == HealthCheckConfig::Type::Tcp) {
      tcp_received_ += data.toString();
      data.drain(data.length());
      if (in_flight_ && payloadMatches(tcp_received_)) {
        closeWire();
        succeed();
      } else if (tcp_received_.size() > 64 * 1024) {
        tcp_received_.clear();
      }
      return;
    }
    ProbeWire* wire = wire_.get();
    http::DispatchResult err = wire->http1 ? wire->http1->dispatch(data) : wire->http2->dispatch(data);
    if (wire_.get() == wire) flushOutput();
    if (err.has_value() && wire_.get() == wire) {
      closeWire();
      if (in_flight_) fail(false, true, "protocol error");
    }
  }

  // http::ResponseDecoder
  void decode1xxHeaders(http::HeaderMapPtr) override {}
  void decodeHeaders(http::HeaderMapPtr headers, bool end_stream) override {
    if (!in_flight_) return;
    response_started_ = true;
    status_ = headers->status();
    immediate_fail_ = headers->has("x-envoy-immediate-health-check-fail");
    // Envoy: an HTTP check answered with x-envoy-degraded passes degraded.
    degraded_ = config_.type == HealthCheckConfig::Type::Http && headers->has("x-envoy-degraded");
    if (auto v = headers->get("grpc-status")) grpc_status_ = std::string(v->value());
    if (auto v = headers->get("x-envoy-upstream-healthchecked-cluster")) {
      healthchecked_cluster_ = std::string(v->value());
    }
    if (end_stream) onResponseComplete();
  }
  void decodeData(buffer::Buffer& data, bool end_stream) override {
    if (!in_flight_) return;
    // gRPC keeps the (small) response message; HTTP keeps the first
    // response_buffer_size bytes when it matches payloads.
    const uint64_t keep = config_.type == HealthCheckConfig::Type::Grpc ? 64 * 1024
                          : config_.receive.empty()                     ? 0
                                                                        : config_.response_buffer_size;
    if (body_.size() < keep) body_ += data.toString().substr(0, keep - body_.size());
    data.drain(data.length());
    if (end_stream) onResponseComplete();
  }
  void decodeTrailers(http::HeaderMapPtr trailers) override {
    if (!in_flight_) return;
    if (auto v = trailers->get("grpc-status")) grpc_status_ = std::string(v->value());
    onResponseComplete();
  }

  // http::StreamCallbacks (HTTP/2 streams)
  void onResetStream(http::StreamResetReason, std::string_view) override {
    if (!in_flight_) return;
    closeWire();
    fail(false, true, "stream reset");
  }

 private:
  using Transition = HealthTransition;

  void onInterval() {
    in_flight_ = true;
    response_started_ = false;
    status_ = 0;
    immediate_fail_ = false;
    degraded_ = false;
    grpc_status_.clear();
    healthchecked_cluster_.reset();
    body_.clear();
    tcp_received_.clear();
    parent_.stats_.attempt.inc();
    timeout_timer_->enable(config_.timeout);
    // A kept connection whose HTTP/1 codec cannot take a request (a reply
    // still owed, or close requested) is replaced.
    if (wire_ != nullptr && wire_->http1 != nullptr && !wire_->http1->idle()) closeWire();
    if (wire_ == nullptr) openWire();
    if (wire_ == nullptr) return;  // failed synchronously
    if (config_.type == HealthCheckConfig::Type::Tcp) {
      if (wire_->connected) startTcp();
      return;
    }
    sendRequest();
    if (wire_->connected) flushOutput();
  }

  const network::TransportSocketFactoryConstSharedPtr& transportSocketFactory() const {
    return config_.transport_socket_factory != nullptr ? config_.transport_socket_factory
                                                       : parent_.cluster_->transport_socket_factory;
  }

  void openWire() {
    wire_ = std::make_unique<ProbeWire>();
    network::Address address = host_.address;
    if (config_.alt_port != 0) {
      auto alt = network::Address::fromIpPort(address.ip(), config_.alt_port);
      if (alt.ok()) address = *alt;
    }
    // Over the cluster's transport socket, as Envoy: TLS clusters are
    // checked over TLS.
    const auto& factory = transportSocketFactory();
    wire_->connection = network::Connection::connect(parent_.dispatcher_, address,
                                                     factory != nullptr ? factory->createTransportSocket() : nullptr);
    wire_->connection->setBufferLimits(parent_.cluster_->per_connection_buffer_limit_bytes);
    wire_->connection->addConnectionCallbacks(*this);
    struct Shim : network::ReadFilter {
      explicit Shim(Session& s) : s(s) {}
      void initializeReadFilterCallbacks(network::ReadFilterCallbacks&) override {}
      network::FilterStatus onData(buffer::Buffer& data, bool) override {
        s.onData(data);
        return network::FilterStatus::StopIteration;
      }
      Session& s;
    };
    wire_->connection->addReadFilter(std::make_unique<Shim>(*this));
    if (config_.type != HealthCheckConfig::Type::Tcp) {
      if (config_.http2) {
        wire_->http2 = std::make_unique<http::http2::ClientConnection>(wire_->output);
      } else {
        wire_->http1 = std::make_unique<http::http1::ClientConnection>(wire_->output);
      }
    }
  }

  std::unique_ptr<ProbeWire> releaseWire() {
    if (wire_ != nullptr && wire_->connection != nullptr) wire_->connection->removeConnectionCallbacks(*this);
    return std::move(wire_);
  }

  void closeWire() {
    auto wire = releaseWire();
    if (wire == nullptr) return;
    if (wire->connection->state() != network::Connection::State::Closed) {
      wire->connection->close(network::CloseType::NoFlush);
    }
    parent_.dispatcher_.deferredDelete(std::move(wire));
  }

  void flushOutput() {
    if (wire_ == nullptr || !wire_->connected || wire_->output.length() == 0) return;
    wire_->connection->write(wire_->output, false);
  }

  void sendRequest() {
    http::HeaderMap headers;
    const bool grpc = config_.type == HealthCheckConfig::Type::Grpc;
    const std::string authority = grpc ? (config_.authority.empty() ? parent_.cluster_->name : config_.authority)
                                       : (config_.host.empty() ? parent_.cluster_->name : config_.host);
    const char* scheme = transportSocketFactory() != nullptr ? "https" : "http";
    if (grpc) {
      headers.add(":method", "POST");
      headers.add(":scheme", scheme);
      headers.add(":path", "/grpc.health.v1.Health/Check");
      headers.add(":authority", authority);
      headers.add("content-type", "application/grpc");
      headers.add("te", "trailers");
    } else {
      headers.add(":method", config_.method);
      headers.add(":scheme", scheme);
      headers.add(":path", config_.path);
      headers.add(":authority", authority);
    }
    // HTTP request_headers_to_add, or gRPC initial_metadata.
    for (const auto& [k, v] : config_.request_headers_to_add) headers.add(k, v);
    headers.add("user-agent", "Envoy/HC");
    for (const auto& name : config_.request_headers_to_remove) {
      if (!name.empty() && name[0] != ':') headers.remove(name);
    }
    std::string body;
    if (grpc) {
      body = grpcHealthRequest(config_.service_name);
    } else if (!config_.send.empty()) {
      body = config_.send;
      headers.remove("content-length");
      headers.add("content-length", std::to_string(body.size()));
    }
    http::RequestEncoder& encoder = wire_->http1 ? wire_->http1->newStream(*this) : wire_->http2->newStream(*this);
    if (wire_->http2 != nullptr && encoder.getStream() != nullptr) encoder.getStream()->addCallbacks(*this);
    if (body.empty()) {
      encoder.encodeHeaders(headers, true);
      return;
    }
    encoder.encodeHeaders(headers, false);
    buffer::Buffer data;
    data.add(body);
    encoder.encodeData(data, true);
  }

  void startTcp() {
    if (!config_.send.empty()) {
      buffer::Buffer out;
      out.add(config_.send);
      wire_->connection->write(out, false);
    }
    // Connect-only check: the connection is the answer.
    if (config_.receive.empty()) {
      closeWire();
      succeed();
    }
  }

  // Envoy's matcher: every receive payload, in order, somewhere in the bytes.
  bool payloadMatches(const std::string& bytes) const {
    size_t from = 0;
    for (const auto& part : config_.receive) {
      const size_t at = bytes.find(part, from);
      if (at == std::string::npos) return false;
      from = at + part.size();
    }
    return true;
  }

  void onResponseComplete() {
    if (!in_flight_) return;
    bool ok = false;
    bool retriable = false;
    const char* why = nullptr;
    auto within = [this](const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
      for (const auto& [start, end] : ranges) {
        if (static_cast<uint64_t>(status_) >= start && static_cast<uint64_t>(status_) < end) return true;
      }
      return false;
    };
    if (config_.type == HealthCheckConfig::Type::Grpc) {
      ok = status_ == 200 && grpc_status_ == "0" && grpcServingStatus(body_) == 1;
      if (!ok) why = "not SERVING";
    } else if (!config_.receive.empty() && !payloadMatches(body_)) {
      // Envoy checks the body first: a mismatch fails whatever the status.
      why = "response body mismatch";
    } else if (!within(config_.expected_statuses)) {
      retriable = within(config_.retriable_statuses);
      why = "unexpected status";
    } else if (config_.service_name_matcher.has_value()) {
      parent_.stats_.verify_cluster.inc();
      ok = config_.service_name_matcher->match(healthchecked_cluster_.value_or(""));
      if (!ok) why = "x-envoy-upstream-healthchecked-cluster mismatch";
    } else {
      ok = true;
    }
    const bool reuse = config_.reuse_connection && wire_ != nullptr &&
                       (wire_->http1 == nullptr || !wire_->http1->shouldClose()) && !immediate_fail_;
    if (!reuse) closeWire();
    if (immediate_fail_) {
      fail(true, false, "x-envoy-immediate-health-check-fail");
    } else if (ok) {
      succeed();
    } else {
      // A retriable status counts toward unhealthy_threshold; any other
      // wrong answer (or NOT_SERVING) is an active failure: Envoy marks the
      // host unhealthy at once, without the unhealthy threshold.
      fail(!retriable, false, why);
    }
  }

  void onTimeout() {
    if (!in_flight_) return;
    closeWire();
    fail(false, true, "timeout");
  }

  void succeed() {
    in_flight_ = false;
    timeout_timer_->disable();
    parent_.stats_.success.inc();
    unhealthy_count_ = 0;
    Transition transition = Transition::Unchanged;
    if (failed_) {
      // A host pending its first check becomes healthy on its first pass.
      if (first_check_ || ++healthy_count_ >= config_.healthy_threshold) {
        healthy_count_ = 0;
        failed_ = false;
        transition = Transition::Changed;
      } else {
        transition = Transition::ChangePending;
      }
    }
    // The last passing answer's x-envoy-degraded (updateHost() sets the flag).
    degraded_verdict_ = degraded_;
    first_check_ = false;
    pending_ = false;
    parent_.updateHost(index_);
    if (parent_.on_success_) parent_.on_success_(host_);
    scheduleNext(true, transition);
  }

  // active: the host answered wrongly (unhealthy at once); otherwise a
  // network failure, timeout or retriable status, which counts toward
  // unhealthy_threshold.
  void fail(bool active, bool network, const char* why) {
    const bool was_in_flight = in_flight_;
    in_flight_ = false;
    timeout_timer_->disable();
    if (was_in_flight) parent_.stats_.failure.inc();
    if (network) parent_.stats_.network_failure.inc();
    healthy_count_ = 0;
    Transition transition = Transition::Unchanged;
    if (!failed_) {
      if (active || ++unhealthy_count_ >= config_.unhealthy_threshold) {
        unhealthy_count_ = 0;
        failed_ = true;
        transition = Transition::Changed;
      } else {
        transition = Transition::ChangePending;
      }
    }
    if (config_.always_log_health_check_failures) {
      spdlog::info("health check: cluster '{}' host {} failed a check: {}", parent_.cluster_->name,
                   host_.address.asString(), why != nullptr ? why : "failed");
    }
    first_check_ = false;
    pending_ = false;
    parent_.updateHost(index_);
    if (was_in_flight) scheduleNext(false, transition);
  }

  void scheduleNext(bool healthy, Transition transition) {
    interval_timer_->enable(nextCheckDelay(config_, parent_.cluster_->stats->upstream_cx_total.used(), healthy,
                                           transition, threadRandom()()));
  }

  HealthChecker& parent_;
  const HealthCheckConfig& config_;
  const Host& host_;
  const size_t index_;
  std::unique_ptr<event::Timer> interval_timer_;
  std::unique_ptr<event::Timer> timeout_timer_;
  std::unique_ptr<ProbeWire> wire_;
  bool in_flight_ = false;
  // This entry's verdict on the host.
  bool failed_ = true;
  bool pending_ = true;
  bool first_check_ = true;
  uint32_t healthy_count_ = 0;
  uint32_t unhealthy_count_ = 0;
  // The probe in flight.
  bool response_started_ = false;
  int status_ = 0;
  bool immediate_fail_ = false;
  bool degraded_ = false;
  bool degraded_verdict_ = false;
  std::string grpc_status_;
  std::optional<std::string> healthchecked_cluster_;
  std::string body_;
  std::string tcp_received_;
};

HealthChecker::HealthChecker(ClusterConstSharedPtr cluster, const Cluster* previous, event::Dispatcher& main,
                             stats::Store& store, std::function<void(const Host&)> on_success)
    : cluster_(std::move(cluster)),
      dispatcher_(main),
      stats_(store, cluster_->name),
      on_success_(std::move(on_success)) {
  absl::flat_hash_map<std::string, const Host*> before;
  if (previous != nullptr && previous->health_check != nullptr) {
    for (const auto& h : previous->hosts) before.emplace(h->address.asString(), h.get());
  }
  const auto& configs = cluster_->health_check->configs();
  sessions_.resize(configs.size());
  uint32_t healthy = 0;
  uint32_t degraded = 0;
  for (size_t i = 0; i < cluster_->hosts.size(); ++i) {
    const Host& h = *cluster_->hosts[i];
    uint32_t flags = health_flag::kFailedActiveHc | health_flag::kPendingActiveHc;
    auto it = before.find(h.address.asString());
    // A host that stays keeps its active health (Envoy keeps it across
    // updates); the entries' separate verdicts do not carry over, so a
    // failed host is failed by every entry until each passes its threshold.
    if (it != before.end()) {
      flags = it->second->health_flags.load(std::memory_order_relaxed) &
              (health_flag::kFailedActiveHc | health_flag::kPendingActiveHc | health_flag::kDegradedActiveHc);
    }
    for (size_t e = 0; e < configs.size(); ++e) {
      auto session = std::make_unique<Session>(*this, configs[e], h, i);
      session->carryOver((flags & health_flag::kFailedActiveHc) != 0, (flags & health_flag::kPendingActiveHc) != 0,
                         (flags & health_flag::kDegradedActiveHc) != 0);
      sessions_[e].push_back(std::move(session));
    }
    // Envoy: a host under active checks is failed until its first check.
    if (flags != 0) setHealthFlag(*cluster_, h, flags, true);
    if ((flags & health_flag::kFailedActiveHc) == 0) ++healthy;
    if ((flags & health_flag::kDegradedActiveHc) != 0) ++degraded;
  }
  stats_.healthy.set(healthy);
  stats_.degraded.set(degraded);
  immediate_ = std::make_shared<HealthCheckSink::Callback>([this](const Host* host) { onImmediateFailure(host); });
  cluster_->health_check->bind(&main, immediate_);
  for (auto& entry : sessions_) {
    for (auto& s : entry) s->start();
  }
}

HealthChecker::~HealthChecker() { cluster_->health_check->bind(nullptr, nullptr); }

void HealthChecker::updateHost(size_t i) {
  bool failed = false;
  bool pending = false;
  bool degraded = false;
  for (const auto& entry : sessions_) {
    failed |= entry[i]->failed();
    pending |= entry[i]->pending();
    degraded |= entry[i]->degraded();
  }
  const Host& host = *cluster_->hosts[i];
  const uint32_t flags = host.health_flags.load(std::memory_order_relaxed);
  if (((flags & health_flag::kPendingActiveHc) != 0) != pending) {
    setHealthFlag(*cluster_, host, health_flag::kPendingActiveHc, pending);
  }
  if (((flags & health_flag::kDegradedActiveHc) != 0) != degraded) {
    setHealthFlag(*cluster_, host, health_flag::kDegradedActiveHc, degraded);
    if (degraded) {
      stats_.degraded.inc();
    } else {
      stats_.degraded.dec();
    }
  }
  if (((flags & health_flag::kFailedActiveHc) != 0) == failed) return;
  setHealthFlag(*cluster_, host, health_flag::kFailedActiveHc, failed);
  if (failed) {
    stats_.healthy.dec();
  } else {
    stats_.healthy.inc();
  }
  spdlog::info("health check: cluster '{}' host {} is {}", cluster_->name, host.address.asString(),
               failed ? "unhealthy" : "healthy");
}

void HealthChecker::onImmediateFailure(const Host* host) {
  for (size_t i = 0; i < cluster_->hosts.size(); ++i) {
    if (cluster_->hosts[i].get() == host) {
      for (auto& entry : sessions_) entry[i]->immediateFailure();
      return;
    }
  }
}

}  // namespace courier::upstream
