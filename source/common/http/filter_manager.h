// Runs one stream's HTTP filters: request events through the decoder filters
// in order, response events through the encoder filters in reverse order,
// with Envoy's stop/continue/buffer semantics. It knows nothing of codecs or
// sockets: the connection manager's stream (FilterManagerCallbacks) takes
// what comes out of the encoder chain and answers the filters' questions.
#pragma once

#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "source/common/http/filter.h"

namespace courier::http {

class FilterManagerCallbacks {
 public:
  virtual ~FilterManagerCallbacks() = default;
  // The end of the encoder chain: into the downstream codec.
  virtual void encodeHeadersToCodec(HeaderMap& headers, bool end_stream) = 0;
  virtual void encodeDataToCodec(buffer::Buffer& data, bool end_stream) = 0;
  virtual void encodeTrailersToCodec(HeaderMap& trailers) = 0;
  // A filter buffered more than bufferLimit(): Envoy answers 413 for a
  // request and 500 (or a reset, once the response started) for a response.
  virtual void onDecoderBufferOverflow() = 0;
  virtual void onEncoderBufferOverflow() = 0;

  // What every filter's callbacks forward to.
  virtual network::Connection& connection() = 0;
  virtual event::Dispatcher& dispatcher() = 0;
  virtual stream_info::StreamInfo& streamInfo() = 0;
  virtual const router::RouteEntry* route() = 0;
  virtual void clearRouteCache() = 0;
  virtual void resetStream() = 0;
  virtual uint32_t bufferLimit() const = 0;
  virtual void sendLocalReply(int status, std::string_view body, stream_info::ResponseFlag flag,
                              std::string_view details) = 0;
  // A decoder filter's upstream is full (true) or drained (false).
  virtual void onUpstreamWatermark(bool above) = 0;
  virtual server::WorkerContext& worker() = 0;
};

class FilterManager : public FilterChainFactoryCallbacks {
 public:
  explicit FilterManager(FilterManagerCallbacks& owner);
  ~FilterManager() override;
  FilterManager(const FilterManager&) = delete;
  FilterManager& operator=(const FilterManager&) = delete;

  // FilterChainFactoryCallbacks
  void addStreamDecoderFilter(std::unique_ptr<StreamDecoderFilter> filter) override;
  void addStreamEncoderFilter(std::unique_ptr<StreamEncoderFilter> filter) override;
  void addStreamFilter(std::unique_ptr<StreamFilter> filter) override;

  // The request, from the downstream codec.
  void decodeHeaders(HeaderMapPtr headers, bool end_stream);
  void decodeData(buffer::Buffer& data, bool end_stream);
  void decodeTrailers(HeaderMapPtr trailers);

  // A response, from a decoder filter or a local reply, into the encoder chain.
  void encodeHeaders(HeaderMapPtr headers, bool end_stream);
  void encodeData(buffer::Buffer& data, bool end_stream);
  void encodeTrailers(HeaderMapPtr trailers);

  // After a local reply: request events no longer reach the filters.
  void stopDecoding() { decoding_stopped_ = true; }
  // A local reply replaces a response that has not reached the codec yet.
  void discardUnsentResponse();
  // Calls onDestroy() on every filter, once.
  void destroyFilters();
  void onDownstreamWatermark(bool above);

  HeaderMap* requestHeaders() const { return request_headers_.get(); }
  HeaderMap* responseHeaders() const { return response_headers_.get(); }
  HeaderMap* responseTrailers() const { return response_trailers_.get(); }
  bool responseStarted() const { return response_headers_ != nullptr; }
  // True once the response headers left the encoder chain for the codec.
  bool responseHeadersSent() const { return response_headers_sent_; }
  size_t decoderFilterCount() const { return decoders_.size(); }

  class Iteration;

 private:
  struct DecoderEntry;
  struct EncoderEntry;
  class DecodeIteration;
  class EncodeIteration;

  FilterManagerCallbacks& owner_;
  std::vector<std::unique_ptr<StreamFilterBase>> owned_;
  std::vector<std::unique_ptr<DecoderEntry>> decoders_;
  std::vector<std::unique_ptr<EncoderEntry>> encoders_;  // in encode order (reverse of config)
  std::vector<DownstreamWatermarkCallbacks*> watermark_callbacks_;
  HeaderMapPtr request_headers_;
  HeaderMapPtr request_trailers_;
  HeaderMapPtr response_headers_;
  HeaderMapPtr response_trailers_;
  std::unique_ptr<Iteration> decode_;
  std::unique_ptr<Iteration> encode_;
  std::optional<uint32_t> decoder_limit_;
  bool decoding_stopped_ = false;
  bool response_headers_sent_ = false;
  bool destroyed_ = false;
};

// One direction's stop/continue state; shared by decode and encode.
class FilterManager::Iteration {
 public:
  virtual ~Iteration() = default;

  void headers(HeaderMap& headers, bool end_stream);
  void data(buffer::Buffer& data, bool end_stream);
  void trailers(HeaderMap& trailers);
  // Filter i called continueDecoding/continueEncoding.
  void resume(size_t i);
  const buffer::Buffer* buffered(size_t i) const;
  // Body data a filter adds while its trailers are being encoded: it runs
  // from filter `from` on, ahead of the trailers.
  void inject(size_t from, buffer::Buffer& data) { runData(from, data, false); }
  void reset();

 protected:
  virtual size_t size() const = 0;
  virtual FilterHeadersStatus callHeaders(size_t i, HeaderMap& headers, bool end_stream) = 0;
  virtual FilterDataStatus callData(size_t i, buffer::Buffer& data, bool end_stream) = 0;
  virtual FilterTrailersStatus callTrailers(size_t i, HeaderMap& trailers) = 0;
  virtual void terminalHeaders(HeaderMap& headers, bool end_stream) = 0;
  virtual void terminalData(buffer::Buffer& data, bool end_stream) = 0;
  virtual void terminalTrailers(HeaderMap& trailers) = 0;
  virtual void onOverflow() = 0;
  virtual bool stopped() const = 0;
  virtual uint32_t limit() const = 0;

 private:
  bool blocked(size_t i) const;
  bool runHeaders(size_t from);
  void runData(size_t from, buffer::Buffer& data, bool end_stream);
  void runTrailers(size_t from);
  void hold(buffer::Buffer& data, bool end_stream);

  HeaderMap* headers_ = nullptr;
  HeaderMap* trailers_ = nullptr;
  bool headers_end_ = false;
  std::optional<size_t> headers_stop_;
  bool stop_all_ = false;
  std::optional<size_t> data_stop_;
  buffer::Buffer buffered_;
  bool held_end_ = false;
  bool trailers_held_ = false;
  bool overflowed_ = false;
};

}  // namespace courier::http
