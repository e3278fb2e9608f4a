#include "source/extensions/filters/listener/tls_inspector/tls_inspector.h"

#include "absl/strings/str_cat.h"
#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb.h"
#include "source/extensions/filters/listener/tls_inspector/client_hello.h"
#include "spdlog/spdlog.h"

namespace courier::extensions::tls_inspector {

TlsInspectorStats::TlsInspectorStats(stats::Store& store)
    : client_hello_too_large(store.counter("tls_inspector.client_hello_too_large")),
      tls_found(store.counter("tls_inspector.tls_found")),
      tls_not_found(store.counter("tls_inspector.tls_not_found")),
      alpn_found(store.counter("tls_inspector.alpn_found")),
      alpn_not_found(store.counter("tls_inspector.alpn_not_found")),
      sni_found(store.counter("tls_inspector.sni_found")),
      sni_not_found(store.counter("tls_inspector.sni_not_found")) {}

TlsInspector::TlsInspector(stats::Store& store, size_t max_client_hello_size)
    : stats_(std::make_shared<TlsInspectorStats>(store)), max_size_(max_client_hello_size) {}

server::ListenerFilterStatus TlsInspector::onData(std::string_view data, server::ListenerFilterState& state) const {
  ClientHello hello;
  switch (parseClientHello(data, hello, max_size_)) {
    case ClientHelloResult::NeedMoreData:
      if (data.size() < max_size_) return server::ListenerFilterStatus::NeedMoreData;
      [[fallthrough]];
    case ClientHelloResult::TooLarge:
      stats_->client_hello_too_large.inc();
      return server::ListenerFilterStatus::Close;
    case ClientHelloResult::NotTls:
    case ClientHelloResult::Malformed:
      stats_->tls_not_found.inc();
      return server::ListenerFilterStatus::Continue;
    case ClientHelloResult::Found:
      break;
  }
  stats_->tls_found.inc();
  state.transport_protocol = "tls";
  if (hello.server_name.empty()) {
    stats_->sni_not_found.inc();
  } else {
    stats_->sni_found.inc();
    state.server_name = std::move(hello.server_name);
  }
  if (hello.alpn.empty()) {
    stats_->alpn_not_found.inc();
  } else {
    stats_->alpn_found.inc();
    state.application_protocols = std::move(hello.alpn);
  }
  return server::ListenerFilterStatus::Continue;
}

namespace {

using ProtoTlsInspector = envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;

class TlsInspectorConfigFactory : public server::ListenerFilterConfigFactory {
 public:
  std::string name() const override { return "envoy.filters.listener.tls_inspector"; }
  std::string configType() const override { return ProtoTlsInspector::descriptor()->full_name(); }

  absl::StatusOr<server::ListenerFilterConstSharedPtr> createFilter(const google::protobuf::Any& typed_config,
                                                                    server::FactoryContext& context,
                                                                    const std::string& path) override {
    ProtoTlsInspector proto;
    if (!typed_config.type_url().empty() && !typed_config.UnpackTo(&proto)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": cannot decode ", configType()));
    }
    if (proto.enable_ja3_fingerprinting().value()) {
      // Nothing in Courier reads a JA3 fingerprint yet (no access-log
      // operator, no matcher), so computing one would be wasted work.
      spdlog::warn("{}.enable_ja3_fingerprinting: accepted; no JA3 fingerprint is computed yet", path);
    }
    // initial_read_buffer_size sizes Envoy's first read; peeking here reads
    // what arrived, so the setting has nothing to tune.
    return server::ListenerFilterConstSharedPtr(std::make_shared<TlsInspector>(context.stats, kMaxClientHelloSize));
  }
};

}  // namespace

std::unique_ptr<server::ListenerFilterConfigFactory> createTlsInspectorConfigFactory() {
  return std::make_unique<TlsInspectorConfigFactory>();
}

}  // namespace courier::extensions::tls_inspector
