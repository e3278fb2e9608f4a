#include "source/extensions/filters/http/buffer/buffer_filter.h"

#include "absl/strings/str_cat.h"
#include "envoy/extensions/filters/http/buffer/v3/buffer.pb.h"

namespace courier::extensions::buffer_filter {

void BufferFilter::setDecoderFilterCallbacks(http::StreamDecoderFilterCallbacks& callbacks) {
  callbacks_ = &callbacks;
  // The filter manager enforces the limit on what it holds for us: over it,
  // the request gets 413.
  callbacks.setDecoderBufferLimit(max_request_bytes_);
}

http::FilterHeadersStatus BufferFilter::decodeHeaders(http::HeaderMap& headers, bool end_stream) {
  headers_ = &headers;
  return end_stream ? http::FilterHeadersStatus::Continue : http::FilterHeadersStatus::StopIteration;
}

http::FilterDataStatus BufferFilter::decodeData(buffer::Buffer& data, bool end_stream) {
  if (!end_stream) return http::FilterDataStatus::StopIterationAndBuffer;
  const buffer::Buffer* held = callbacks_->decodingBuffer();
  setContentLength((held != nullptr ? held->length() : 0) + data.length());
  return http::FilterDataStatus::Continue;
}

http::FilterTrailersStatus BufferFilter::decodeTrailers(http::HeaderMap&) {
  // Trailers end the request: everything held goes on now.
  const buffer::Buffer* held = callbacks_->decodingBuffer();
  setContentLength(held != nullptr ? held->length() : 0);
  return http::FilterTrailersStatus::Continue;
}

void BufferFilter::setContentLength(uint64_t length) {
  // As Envoy: a body known in full gets a length unless it already had one.
  if (headers_ != nullptr && !headers_->has("content-length")) {
    headers_->remove("transfer-encoding");
    headers_->set("content-length", std::to_string(length));
  }
}

namespace {

using ProtoBuffer = envoy::extensions::filters::http::buffer::v3::Buffer;

class BufferConfigFactory : public server::HttpFilterConfigFactory {
 public:
  std::string name() const override { return "envoy.filters.http.buffer"; }
  std::string configType() const override { return ProtoBuffer::descriptor()->full_name(); }

  absl::StatusOr<http::FilterFactoryCb> createFilterFactory(const google::protobuf::Any& typed_config,
                                                            const std::string&, server::FactoryContext&,
                                                            const std::string& path) override {
    ProtoBuffer proto;
    if (!typed_config.UnpackTo(&proto)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": cannot decode ", configType()));
    }
    if (!proto.has_max_request_bytes() || proto.max_request_bytes().value() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".max_request_bytes: is required and must be above 0"));
    }
    const uint32_t max = proto.max_request_bytes().value();
    return http::FilterFactoryCb([max](http::FilterChainFactoryCallbacks& callbacks) {
      callbacks.addStreamDecoderFilter(std::make_unique<BufferFilter>(max));
    });
  }
};

}  // namespace

std::unique_ptr<server::HttpFilterConfigFactory> createBufferConfigFactory() {
  return std::make_unique<BufferConfigFactory>();
}

}  // namespace courier::extensions::buffer_filter
