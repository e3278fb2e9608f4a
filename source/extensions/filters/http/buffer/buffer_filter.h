// envoy.filters.http.buffer: holds the whole request body before the rest of
// the chain sees it (so upstreams get a complete request with a
// content-length), and answers 413 to bodies over max_request_bytes.
#pragma once

#include <cstdint>
#include <memory>

#include "source/common/http/filter.h"
#include "source/server/filter_config.h"

namespace courier::extensions::buffer_filter {

class BufferFilter : public http::StreamDecoderFilter {
 public:
  explicit BufferFilter(uint32_t max_request_bytes) : max_request_bytes_(max_request_bytes) {}

  http::FilterHeadersStatus decodeHeaders(http::HeaderMap& headers, bool end_stream) override;
  http::FilterDataStatus decodeData(buffer::Buffer& data, bool end_stream) override;
  http::FilterTrailersStatus decodeTrailers(http::HeaderMap& trailers) override;
  void setDecoderFilterCallbacks(http::StreamDecoderFilterCallbacks& callbacks) override;

 private:
  void setContentLength(uint64_t length);

  const uint32_t max_request_bytes_;
  http::StreamDecoderFilterCallbacks* callbacks_ = nullptr;
  http::HeaderMap* headers_ = nullptr;
};

// Registered under "envoy.filters.http.buffer".
std::unique_ptr<server::HttpFilterConfigFactory> createBufferConfigFactory();

}  // namespace courier::extensions::buffer_filter
