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

absl::StatusOr<std::shared_ptr<HealthCheckSink>> parseHealthChecks(
    const google::protobuf::RepeatedPtrField<ProtoHealthCheck>& checks, const std::string& cluster_path) {
  if (checks.empty()) return std::shared_ptr<HealthCheckSink>();
  if (checks.size() > 1) {
    return fieldError(cluster_path + ".health_checks", "only one health check per cluster is supported");
  }
  const ProtoHealthCheck& p = checks[0];
  const std::string path = cluster_path + ".health_checks[0]";
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
  if (p.has_no_traffic_healthy_interval()) {
    std::chrono::milliseconds v{0};
    if (auto s = optionalDuration(p.no_traffic_healthy_interval(), true, path + ".no_traffic_healthy_interval", v);
        !s.ok()) {
      return s;
    }
    c.no_traffic_healthy_interval = v;
  }
  // Envoy: unhealthy_interval defaults to interval, unhealthy_edge_interval
  // to unhealthy_interval, healthy_edge_interval to interval.
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
  if (p.has_tls_options()) return fieldError(path + ".tls_options", "TLS health checks are not supported yet");

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
      if (h.has_send() || !h.receive().empty()) {
        return fieldError(hpath + ".send", "HTTP health check payloads are not supported yet");
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
        return fieldError(hpath + ".service_name_matcher", "is not supported yet");
      }
      for (const auto& name : h.request_headers_to_remove()) c.request_headers_to_remove.push_back(absl::AsciiStrToLower(name));
      if (c.expected_statuses.empty()) c.expected_statuses.emplace_back(200, 201);
      for (int i = 0; i < h.request_headers_to_add_size(); ++i) {
        const auto& hv = h.request_headers_to_add(i).header();
        if (hv.key().empty() || hv.key()[0] == ':') {
          return fieldError(absl::StrCat(hpath, ".request_headers_to_add[", i, "].header.key"),
                            "must be a non-empty, non-pseudo header name");
        }
        c.request_headers_to_add.emplace_back(hv.key(), hv.value().empty() ? hv.raw_value() : hv.value());
      }
      if (h.method() != envoy::config::core::v3::METHOD_UNSPECIFIED) {
        if (h.method() == envoy::config::core::v3::CONNECT) {
          return fieldError(hpath + ".method", "CONNECT is not allowed");
        }
        c.method = envoy::config::core::v3::RequestMethod_Name(h.method());
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
    case ProtoHealthCheck::kGrpcHealthCheck:
      c.type = HealthCheckConfig::Type::Grpc;
      c.service_name = p.grpc_health_check().service_name();
      c.authority = p.grpc_health_check().authority();
      c.http2 = true;
      if (!p.grpc_health_check().initial_metadata().empty()) {
        return fieldError(path + ".grpc_health_check.initial_metadata", "is not supported yet");
      }
      break;
    case ProtoHealthCheck::kCustomHealthCheck:
      return fieldError(path + ".custom_health_check",
                        absl::StrCat("custom health checker \"", p.custom_health_check().name(), "\" is not supported"));
    default:
      return fieldError(path, "one of http_health_check, tcp_health_check or grpc_health_check is required");
  }
  return std::make_shared<HealthCheckSink>(std::move(c));
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
  Session(HealthChecker& parent, const Host& host)
      : parent_(parent),
        config_(parent.config_),
        host_(host),
        interval_timer_(parent.dispatcher_.createTimer([this] { onInterval(); })),
        timeout_timer_(parent.dispatcher_.createTimer([this] { onTimeout(); })) {}
  ~Session() override { closeWire(); }

  void start() {
    std::chrono::milliseconds first{0};
    if (config_.initial_jitter.count() > 0) first = std::chrono::milliseconds(threadRandom()() % config_.initial_jitter.count());
    interval_timer_->enable(first);
  }
  void setFirstCheckDone() { first_check_ = false; }
  void immediateFailure() {
    // A probe in flight is abandoned: its connection cannot carry the next.
    if (in_flight_) closeWire();
    fail(true, false);
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
    fail(false, true);
  }

  void onData(buffer::Buffer& data) {
    if (wire_ == nullptr) {
      data.drain(data.length());
      return;
    }
    if (config_.type == HealthCheckConfig::Type::Tcp) {
      tcp_received_ += data.toString();
      data.drain(data.length());
      if (in_flight_ && tcpMatches()) {
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
      if (in_flight_) fail(false, true);
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
    if (end_stream) onResponseComplete();
  }
  void decodeData(buffer::Buffer& data, bool end_stream) override {
    if (!in_flight_) return;
    if (config_.type == HealthCheckConfig::Type::Grpc && body_.size() < 64 * 1024) body_ += data.toString();
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
    fail(false, true);
  }

 private:
  enum class Edge { None, Healthy, Unhealthy };

  bool failed() const {
    return (host_.health_flags.load(std::memory_order_relaxed) & health_flag::kFailedActiveHc) != 0;
  }

  void onInterval() {
    in_flight_ = true;
    response_started_ = false;
    status_ = 0;
    immediate_fail_ = false;
    degraded_ = false;
    grpc_status_.clear();
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

  void openWire() {
    wire_ = std::make_unique<ProbeWire>();
    network::Address address = host_.address;
    if (config_.alt_port != 0) {
      auto alt = network::Address::fromIpPort(address.ip(), config_.alt_port);
      if (alt.ok()) address = *alt;
    }
    wire_->connection = network::Connection::connect(parent_.dispatcher_, address);
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
    const std::string authority = config_.type == HealthCheckConfig::Type::Grpc
                                      ? (config_.authority.empty() ? parent_.cluster_->name : config_.authority)
                                      : (config_.host.empty() ? parent_.cluster_->name : config_.host);
    if (config_.type == HealthCheckConfig::Type::Grpc) {
      headers.add(":method", "POST");
      headers.add(":scheme", "http");
      headers.add(":path", "/grpc.health.v1.Health/Check");
      headers.add(":authority", authority);
      headers.add("content-type", "application/grpc");
      headers.add("te", "trailers");
    } else {
      headers.add(":method", config_.method);
      headers.add(":scheme", "http");
      headers.add(":path", config_.path);
      headers.add(":authority", authority);
      for (const auto& [k, v] : config_.request_headers_to_add) headers.add(k, v);
    }
    headers.add("user-agent", "Envoy/HC");
    for (const auto& name : config_.request_headers_to_remove) {
      if (!name.empty() && name[0] != ':') headers.remove(name);
    }
    http::RequestEncoder& encoder = wire_->http1 ? wire_->http1->newStream(*this) : wire_->http2->newStream(*this);
    if (wire_->http2 != nullptr && encoder.getStream() != nullptr) encoder.getStream()->addCallbacks(*this);
    if (config_.type == HealthCheckConfig::Type::Grpc) {
      encoder.encodeHeaders(headers, false);
      buffer::Buffer body;
      body.add(grpcHealthRequest(config_.service_name));
      encoder.encodeData(body, true);
    } else {
      encoder.encodeHeaders(headers, true);
    }
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
  bool tcpMatches() const {
    size_t from = 0;
    for (const auto& part : config_.receive) {
      const size_t at = tcp_received_.find(part, from);
      if (at == std::string::npos) return false;
      from = at + part.size();
    }
    return true;
  }

  void onResponseComplete() {
    if (!in_flight_) return;
    bool ok = false;
    bool retriable = false;
    auto within = [this](const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
      for (const auto& [start, end] : ranges) {
        if (static_cast<uint64_t>(status_) >= start && static_cast<uint64_t>(status_) < end) return true;
      }
      return false;
    };
    if (config_.type == HealthCheckConfig::Type::Grpc) {
      ok = status_ == 200 && grpc_status_ == "0" && grpcServingStatus(body_) == 1;
    } else {
      ok = within(config_.expected_statuses);
      retriable = !ok && within(config_.retriable_statuses);
    }
    const bool reuse = config_.reuse_connection && wire_ != nullptr &&
                       (wire_->http1 == nullptr || !wire_->http1->shouldClose()) && !immediate_fail_;
    if (!reuse) closeWire();
    if (immediate_fail_) {
      fail(true, false);
    } else if (ok) {
      succeed();
    } else if (retriable) {
      // Envoy: a retriable status counts toward unhealthy_threshold.
      fail(false, false);
    } else {
      // A wrong status (or NOT_SERVING) is an active failure: Envoy marks the
      // host unhealthy at once, without the unhealthy threshold.
      fail(true, false);
    }
  }

  void onTimeout() {
    if (!in_flight_) return;
    closeWire();
    fail(false, true);
  }

  void succeed() {
    in_flight_ = false;
    timeout_timer_->disable();
    parent_.stats_.success.inc();
    unhealthy_count_ = 0;
    Edge edge = Edge::None;
    if (failed()) {
      // A host pending its first check becomes healthy on its first pass.
      if (++healthy_count_ >= config_.healthy_threshold || first_check_) {
        healthy_count_ = 0;
        setHealthFlag(*parent_.cluster_, host_, health_flag::kPendingActiveHc, false);
        setHealthFlag(*parent_.cluster_, host_, health_flag::kFailedActiveHc, false);
        parent_.stats_.healthy.inc();
        edge = Edge::Healthy;
        spdlog::info("health check: cluster '{}' host {} is healthy", parent_.cluster_->name,
                     host_.address.asString());
      }
    }
    setHealthFlag(*parent_.cluster_, host_, health_flag::kPendingActiveHc, false);
    setHealthFlag(*parent_.cluster_, host_, health_flag::kDegradedActiveHc, degraded_);
    first_check_ = false;
    if (parent_.on_success_) parent_.on_success_(host_);
    scheduleNext(edge);
  }

  // active: the host answered wrongly (unhealthy at once); otherwise a
  // network failure or timeout, which counts toward unhealthy_threshold.
  void fail(bool active, bool network) {
    const bool was_in_flight = in_flight_;
    in_flight_ = false;
    timeout_timer_->disable();
    if (was_in_flight) parent_.stats_.failure.inc();
    if (network) parent_.stats_.network_failure.inc();
    healthy_count_ = 0;
    Edge edge = Edge::None;
    const bool pending = (host_.health_flags.load(std::memory_order_relaxed) & health_flag::kPendingActiveHc) != 0;
    if (!failed()) {
      if (active || ++unhealthy_count_ >= config_.unhealthy_threshold || first_check_) {
        unhealthy_count_ = 0;
        setHealthFlag(*parent_.cluster_, host_, health_flag::kFailedActiveHc, true);
        parent_.stats_.healthy.dec();
        edge = Edge::Unhealthy;
        spdlog::info("health check: cluster '{}' host {} is unhealthy", parent_.cluster_->name,
                     host_.address.asString());
      }
    }
    if (pending) setHealthFlag(*parent_.cluster_, host_, health_flag::kPendingActiveHc, false);
    first_check_ = false;
    if (was_in_flight) scheduleNext(edge);
  }

  void scheduleNext(Edge edge) {
    std::chrono::milliseconds base;
    if (!parent_.cluster_->stats->upstream_cx_total.used()) {
      base = !failed() && config_.no_traffic_healthy_interval.has_value() ? *config_.no_traffic_healthy_interval
                                                                          : config_.no_traffic_interval;
    } else if (edge == Edge::Healthy) {
      base = config_.healthy_edge_interval;
    } else if (edge == Edge::Unhealthy) {
      base = config_.unhealthy_edge_interval;
    } else {
      base = failed() ? config_.unhealthy_interval : config_.interval;
    }
    int64_t ms = base.count();
    if (config_.interval_jitter_percent > 0 && ms > 0) {
      ms += threadRandom()() % (ms * config_.interval_jitter_percent / 100 + 1);
    }
    if (config_.interval_jitter.count() > 0) ms += threadRandom()() % config_.interval_jitter.count();
    interval_timer_->enable(std::chrono::milliseconds(ms));
  }

  HealthChecker& parent_;
  const HealthCheckConfig& config_;
  const Host& host_;
  std::unique_ptr<event::Timer> interval_timer_;
  std::unique_ptr<event::Timer> timeout_timer_;
  std::unique_ptr<ProbeWire> wire_;
  bool in_flight_ = false;
  bool first_check_ = true;
  uint32_t healthy_count_ = 0;
  uint32_t unhealthy_count_ = 0;
  // The probe in flight.
  bool response_started_ = false;
  int status_ = 0;
  bool immediate_fail_ = false;
  bool degraded_ = false;
  std::string grpc_status_;
  std::string body_;
  std::string tcp_received_;
};

HealthChecker::HealthChecker(ClusterConstSharedPtr cluster, const Cluster* previous, event::Dispatcher& main,
                             stats::Store& store, std::function<void(const Host&)> on_success)
    : cluster_(std::move(cluster)),
      config_(cluster_->health_check->config()),
      dispatcher_(main),
      stats_(store, cluster_->name),
      on_success_(std::move(on_success)) {
  absl::flat_hash_map<std::string, const Host*> before;
  if (previous != nullptr && previous->health_check != nullptr) {
    for (const auto& h : previous->hosts) before.emplace(h->address.asString(), h.get());
  }
  uint32_t healthy = 0;
  for (const auto& h : cluster_->hosts) {
    auto session = std::make_unique<Session>(*this, *h);
    auto it = before.find(h->address.asString());
    if (it != before.end()) {
      const uint32_t flags = it->second->health_flags.load(std::memory_order_relaxed) &
                             (health_flag::kFailedActiveHc | health_flag::kPendingActiveHc |
                              health_flag::kDegradedActiveHc);
      if (flags != 0) setHealthFlag(*cluster_, *h, flags, true);
      if ((flags & health_flag::kPendingActiveHc) == 0) session->setFirstCheckDone();
      if ((flags & health_flag::kFailedActiveHc) == 0) ++healthy;
    } else {
      // Envoy: a host under active checks is failed until its first check.
      setHealthFlag(*cluster_, *h, health_flag::kFailedActiveHc | health_flag::kPendingActiveHc, true);
    }
    sessions_.push_back(std::move(session));
  }
  stats_.healthy.set(healthy);
  immediate_ = std::make_shared<HealthCheckSink::Callback>([this](const Host* host) { onImmediateFailure(host); });
  cluster_->health_check->bind(&main, immediate_);
  for (auto& s : sessions_) s->start();
}

HealthChecker::~HealthChecker() { cluster_->health_check->bind(nullptr, nullptr); }

void HealthChecker::onImmediateFailure(const Host* host) {
  for (size_t i = 0; i < cluster_->hosts.size(); ++i) {
    if (cluster_->hosts[i].get() == host) {
      sessions_[i]->immediateFailure();
      return;
    }
  }
}

}  // namespace courier::upstream
