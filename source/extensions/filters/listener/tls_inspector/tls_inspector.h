// envoy.filters.listener.tls_inspector: peeks at a new connection's first
// bytes; when they are a TLS ClientHello it sets the transport protocol to
// "tls" and records SNI and ALPN for filter_chain_match.
#pragma once

#include <memory>

#include "source/common/stats/store.h"
#include "source/server/listener_filter.h"

namespace courier::extensions::tls_inspector {

// tls_inspector.* as Envoy names them.
struct TlsInspectorStats {
  explicit TlsInspectorStats(stats::Store& store);
  stats::Counter& client_hello_too_large;
  stats::Counter& tls_found;
  stats::Counter& tls_not_found;
  stats::Counter& alpn_found;
  stats::Counter& alpn_not_found;
  stats::Counter& sni_found;
  stats::Counter& sni_not_found;
};

class TlsInspector : public server::ListenerFilter {
 public:
  TlsInspector(stats::Store& store, size_t max_client_hello_size);
  size_t maxReadBytes() const override { return max_size_; }
  server::ListenerFilterStatus onData(std::string_view data, server::ListenerFilterState& state) const override;

 private:
  std::shared_ptr<TlsInspectorStats> stats_;
  const size_t max_size_;
};

std::unique_ptr<server::ListenerFilterConfigFactory> createTlsInspectorConfigFactory();

}  // namespace courier::extensions::tls_inspector
