// envoy.filters.listener.http_inspector: on a plaintext connection, tells
// HTTP/1.0, HTTP/1.1 and the HTTP/2 prior-knowledge preface (h2c) apart from
// the first bytes, and sets the application protocol for filter_chain_match.
#pragma once

#include <memory>
#include <string_view>

#include "source/common/stats/store.h"
#include "source/server/listener_filter.h"

namespace courier::extensions::http_inspector {

// Envoy's limit on how far into the request line it looks.
constexpr size_t kMaxInspectSize = 8192;

enum class HttpDetection { NeedMoreData, NotHttp, Http10, Http11, Http2 };
// Looks at the stream's first bytes (a request line or the h2 preface).
HttpDetection detectHttp(std::string_view data);

// http_inspector.* as Envoy names them.
struct HttpInspectorStats {
  explicit HttpInspectorStats(stats::Store& store);
  stats::Counter& http10_found;
  stats::Counter& http11_found;
  stats::Counter& http2_found;
  stats::Counter& http_not_found;
};

class HttpInspector : public server::ListenerFilter {
 public:
  explicit HttpInspector(stats::Store& store);
  size_t maxReadBytes() const override { return kMaxInspectSize; }
  server::ListenerFilterStatus onData(std::string_view data, server::ListenerFilterState& state) const override;

 private:
  std::shared_ptr<HttpInspectorStats> stats_;
};

std::unique_ptr<server::ListenerFilterConfigFactory> createHttpInspectorConfigFactory();

}  // namespace courier::extensions::http_inspector
