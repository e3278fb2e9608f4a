#include "source/extensions/filters/listener/http_inspector/http_inspector.h"

#include "absl/strings/str_cat.h"
#include "envoy/extensions/filters/listener/http_inspector/v3/http_inspector.pb.h"

namespace courier::extensions::http_inspector {
namespace {

constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// RFC 9110 tchar, the characters of a method token.
bool isTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool isTargetChar(char c) { return c > 0x20 && c < 0x7f; }

}  // namespace

HttpDetection detectHttp(std::string_view data) {
  if (data.empty()) return HttpDetection::NeedMoreData;
  // The h2c preface; its first line would also pass for a request line.
  const size_t n = std::min(data.size(), kH2Preface.size());
  if (data.substr(0, n) == kH2Preface.substr(0, n)) {
    return n == kH2Preface.size() ? HttpDetection::Http2 : HttpDetection::NeedMoreData;
  }
  // METHOD SP request-target SP HTTP/1.x CRLF, checked as far as it came.
  size_t i = 0;
  while (i < data.size() && isTokenChar(data[i])) ++i;
  if (i == data.size()) return HttpDetection::NeedMoreData;
  if (i == 0 || data[i] != ' ') return HttpDetection::NotHttp;
  const size_t target = ++i;
  while (i < data.size() && isTargetChar(data[i])) ++i;
  if (i == data.size()) return HttpDetection::NeedMoreData;
  if (i == target || data[i] != ' ') return HttpDetection::NotHttp;
  const std::string_view rest = data.substr(i + 1);
  for (std::string_view version : {std::string_view("HTTP/1.0\r\n"), std::string_view("HTTP/1.1\r\n")}) {
    const size_t m = std::min(rest.size(), version.size());
    if (rest.substr(0, m) != version.substr(0, m)) continue;
    if (m < version.size()) {
      // "HTTP/1." so far fits both versions; wait for the digit and CRLF.
      return HttpDetection::NeedMoreData;
    }
    return version[7] == '0' ? HttpDetection::Http10 : HttpDetection::Http11;
  }
  return HttpDetection::NotHttp;
}

HttpInspectorStats::HttpInspectorStats(stats::Store& store)
    : http10_found(store.counter("http_inspector.http10_found")),
      http11_found(store.counter("http_inspector.http11_found")),
      http2_found(store.counter("http_inspector.http2_found")),
      http_not_found(store.counter("http_inspector.http_not_found")) {}

HttpInspector::HttpInspector(stats::Store& store) : stats_(std::make_shared<HttpInspectorStats>(store)) {}

server::ListenerFilterStatus HttpInspector::onData(std::string_view data, server::ListenerFilterState& state) const {
  // Envoy inspects plaintext only: a TLS connection's bytes are not HTTP.
  if (!state.transport_protocol.empty() && state.transport_protocol != "raw_buffer") {
    return server::ListenerFilterStatus::Continue;
  }
  HttpDetection detection = detectHttp(data);
  if (detection == HttpDetection::NeedMoreData) {
    if (data.size() < kMaxInspectSize) return server::ListenerFilterStatus::NeedMoreData;
    detection = HttpDetection::NotHttp;
  }
  switch (detection) {
    case HttpDetection::Http10:
      stats_->http10_found.inc();
      state.application_protocols = {"http/1.0"};
      break;
    case HttpDetection::Http11:
      stats_->http11_found.inc();
      state.application_protocols = {"http/1.1"};
      break;
    case HttpDetection::Http2:
      stats_->http2_found.inc();
      state.application_protocols = {"h2c"};
      break;
    default:
      stats_->http_not_found.inc();
      break;
  }
  return server::ListenerFilterStatus::Continue;
}

namespace {

using ProtoHttpInspector = envoy::extensions::filters::listener::http_inspector::v3::HttpInspector;

class HttpInspectorConfigFactory : public server::ListenerFilterConfigFactory {
 public:
  std::string name() const override { return "envoy.filters.listener.http_inspector"; }
  std::string configType() const override { return ProtoHttpInspector::descriptor()->full_name(); }

  absl::StatusOr<server::ListenerFilterConstSharedPtr> createFilter(const google::protobuf::Any& typed_config,
                                                                    server::FactoryContext& context,
                                                                    const std::string& path) override {
    ProtoHttpInspector proto;
    if (!typed_config.type_url().empty() && !typed_config.UnpackTo(&proto)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": cannot decode ", configType()));
    }
    return server::ListenerFilterConstSharedPtr(std::make_shared<HttpInspector>(context.stats));
  }
};

}  // namespace

std::unique_ptr<server::ListenerFilterConfigFactory> createHttpInspectorConfigFactory() {
  return std::make_unique<HttpInspectorConfigFactory>();
}

}  // namespace courier::extensions::http_inspector
