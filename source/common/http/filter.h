// HTTP stream filters, shaped like Envoy's Http::StreamDecoderFilter and
// Http::StreamEncoderFilter: the connection manager runs each request through
// its decoder filters in config order and each response through its encoder
// filters in reverse order; a filter may stop iteration, buffer, answer
// locally, and resume later. The router is the last (terminal) decoder filter.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "source/common/buffer/buffer.h"
#include "source/common/http/header_map.h"
#include "source/common/stream_info/stream_info.h"

namespace courier::event {
class Dispatcher;
}
namespace courier::network {
class Connection;
}
namespace courier::router {
struct RouteEntry;
}
namespace courier::server {
struct WorkerContext;
}

namespace courier::http {

enum class FilterHeadersStatus {
  Continue,
  // Later filters do not see the headers until continueDecoding/Encoding();
  // body data still reaches this filter.
  StopIteration,
  // As StopIteration, and body data and trailers are buffered (up to the
  // buffer limit) without reaching this filter until it continues.
  StopAllIterationAndBuffer,
};

enum class FilterDataStatus {
  Continue,
  // Keep this chunk (and later ones) in the stream's buffer; continuing
  // passes the whole buffer on. Over the buffer limit the stream fails
  // (413 on requests, 500 on responses).
  StopIterationAndBuffer,
  // The filter took the chunk (or dropped it); nothing is buffered.
  StopIterationNoBuffer,
};

enum class FilterTrailersStatus { Continue, StopIteration };

// The router learns here when the downstream connection cannot take more
// response bytes, so it stops reading the upstream.
class DownstreamWatermarkCallbacks {
 public:
  virtual ~DownstreamWatermarkCallbacks() = default;
  virtual void onAboveWriteBufferHighWatermark() = 0;
  virtual void onBelowWriteBufferLowWatermark() = 0;
};

class StreamFilterCallbacks {
 public:
  virtual ~StreamFilterCallbacks() = default;
  virtual network::Connection& connection() = 0;
  virtual event::Dispatcher& dispatcher() = 0;
  virtual stream_info::StreamInfo& streamInfo() = 0;
  // The route for the request headers as they are now (cached); null when
  // none matches. clearRouteCache() makes the next call match again, for
  // filters that change what routing looks at.
  virtual const router::RouteEntry* route() = 0;
  virtual void clearRouteCache() = 0;
  // Ends the stream at once: an unfinished response is cut (the connection
  // closes, as HTTP/1 has no other way).
  virtual void resetStream() = 0;
  // Buffered bytes a filter may hold before the stream fails.
  virtual uint32_t bufferLimit() const = 0;
};

class StreamDecoderFilterCallbacks : public virtual StreamFilterCallbacks {
 public:
  // Resumes decoding after this filter stopped iteration.
  virtual void continueDecoding() = 0;
  // The request body buffered so far by StopIterationAndBuffer, or null.
  virtual const buffer::Buffer* decodingBuffer() = 0;
  // Replaces bufferLimit() for what this stream buffers on the request side
  // (the buffer filter's max_request_bytes).
  virtual void setDecoderBufferLimit(uint32_t limit) = 0;
  // Answers the request without going upstream; goes through the encoder
  // filters like any response. details is Envoy's response code detail.
  virtual void sendLocalReply(int status, std::string_view body, stream_info::ResponseFlag flag,
                              std::string_view details) = 0;
  // A response produced by this filter (the router relays the upstream's).
  virtual void encodeHeaders(HeaderMapPtr headers, bool end_stream) = 0;
  virtual void encodeData(buffer::Buffer& data, bool end_stream) = 0;
  virtual void encodeTrailers(HeaderMapPtr trailers) = 0;
  // Upstream flow control: the filter's upstream is full; stop reading the
  // downstream until it drains.
  virtual void onDecoderFilterAboveWriteBufferHighWatermark() = 0;
  virtual void onDecoderFilterBelowWriteBufferLowWatermark() = 0;
  virtual void addDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& callbacks) = 0;
  virtual void removeDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& callbacks) = 0;
  // Connection-manager settings a router needs.
  virtual server::WorkerContext& worker() = 0;
  // True once any part of the response went to the encoder chain.
  virtual bool responseStarted() const = 0;
};

class StreamEncoderFilterCallbacks : public virtual StreamFilterCallbacks {
 public:
  virtual void continueEncoding() = 0;
  virtual const buffer::Buffer* encodingBuffer() = 0;
  // From encodeTrailers(): body bytes that go to the later filters and the
  // codec before the trailers (gRPC-Web turns trailers into a body frame).
  virtual void addEncodedData(buffer::Buffer& data) = 0;
};

class StreamFilterBase {
 public:
  virtual ~StreamFilterBase() = default;
  // The stream ended (completed or reset): let go of timers and upstreams.
  // No callback may be used after this.
  virtual void onDestroy() {}
};

class StreamDecoderFilter : public virtual StreamFilterBase {
 public:
  virtual FilterHeadersStatus decodeHeaders(HeaderMap& headers, bool end_stream) = 0;
  virtual FilterDataStatus decodeData(buffer::Buffer& data, bool end_stream) = 0;
  virtual FilterTrailersStatus decodeTrailers(HeaderMap& trailers) = 0;
  virtual void setDecoderFilterCallbacks(StreamDecoderFilterCallbacks& callbacks) = 0;
};

class StreamEncoderFilter : public virtual StreamFilterBase {
 public:
  virtual FilterHeadersStatus encodeHeaders(HeaderMap& headers, bool end_stream) = 0;
  virtual FilterDataStatus encodeData(buffer::Buffer& data, bool end_stream) = 0;
  virtual FilterTrailersStatus encodeTrailers(HeaderMap& trailers) = 0;
  virtual void setEncoderFilterCallbacks(StreamEncoderFilterCallbacks& callbacks) = 0;
};

class StreamFilter : public StreamDecoderFilter, public StreamEncoderFilter {};

// Given to a filter chain factory to install one stream's filters.
class FilterChainFactoryCallbacks {
 public:
  virtual ~FilterChainFactoryCallbacks() = default;
  virtual void addStreamDecoderFilter(std::unique_ptr<StreamDecoderFilter> filter) = 0;
  virtual void addStreamEncoderFilter(std::unique_ptr<StreamEncoderFilter> filter) = 0;
  virtual void addStreamFilter(std::unique_ptr<StreamFilter> filter) = 0;
};

// Made once per filter config on the main thread; runs on a worker for each
// new stream.
using FilterFactoryCb = std::function<void(FilterChainFactoryCallbacks&)>;

}  // namespace courier::http
