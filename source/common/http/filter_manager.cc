#include "source/common/http/filter_manager.h"

#include <algorithm>

namespace courier::http {

// ---------------------------------------------------------------------------
// Iteration: where each direction is held, and what waits behind the hold.
//
// A headers stop at filter k keeps later filters from seeing anything; body
// data still reaches filters up to k (unless k asked to buffer everything).
// A data stop at k holds the body at k. What arrives for filters behind a
// stop is kept in buffered_ (and trailers_held_) and replayed in order when
// k continues.

bool FilterManager::Iteration::blocked(size_t i) const {
  if (headers_stop_.has_value() && (i > *headers_stop_ || (i == *headers_stop_ && stop_all_))) return true;
  return data_stop_.has_value() && i > *data_stop_;
}

void FilterManager::Iteration::hold(buffer::Buffer& data, bool end_stream) {
  buffered_.move(data);
  held_end_ = held_end_ || end_stream;
  if (!overflowed_ && buffered_.length() > limit()) {
    overflowed_ = true;
    onOverflow();
  }
}

void FilterManager::Iteration::headers(HeaderMap& headers, bool end_stream) {
  headers_ = &headers;
  headers_end_ = end_stream;
  runHeaders(0);
}

bool FilterManager::Iteration::runHeaders(size_t from) {
  for (size_t i = from; i < size(); ++i) {
    if (stopped()) return false;
    const FilterHeadersStatus status = callHeaders(i, *headers_, headers_end_);
    if (status != FilterHeadersStatus::Continue) {
      headers_stop_ = i;
      stop_all_ = status == FilterHeadersStatus::StopAllIterationAndBuffer;
      return false;
    }
  }
  if (stopped()) return false;
  terminalHeaders(*headers_, headers_end_);
  return true;
}

void FilterManager::Iteration::data(buffer::Buffer& data, bool end_stream) { runData(0, data, end_stream); }

void FilterManager::Iteration::runData(size_t from, buffer::Buffer& data, bool end_stream) {
  for (size_t i = from; i < size(); ++i) {
    if (stopped()) return;
    if (blocked(i)) {
      hold(data, end_stream);
      return;
    }
    const bool held_here = headers_stop_ == i || data_stop_ == i;
    const FilterDataStatus status = callData(i, data, end_stream);
    switch (status) {
      case FilterDataStatus::Continue:
        if (held_here) {
          // Continuing from data releases the hold: what was buffered goes
          // first, this chunk after it.
          hold(data, end_stream);
          resume(i);
          return;
        }
        break;
      case FilterDataStatus::StopIterationAndBuffer:
        if (!data_stop_.has_value() || i < *data_stop_) data_stop_ = i;
        hold(data, end_stream);
        return;
      case FilterDataStatus::StopIterationNoBuffer:
        if (!data_stop_.has_value() || i < *data_stop_) data_stop_ = i;
        held_end_ = held_end_ || end_stream;
        return;
    }
  }
  if (stopped()) return;
  terminalData(data, end_stream);
}

void FilterManager::Iteration::trailers(HeaderMap& trailers) {
  trailers_ = &trailers;
  runTrailers(0);
}

void FilterManager::Iteration::runTrailers(size_t from) {
  for (size_t i = from; i < size(); ++i) {
    if (stopped()) return;
    if (blocked(i)) {
      trailers_held_ = true;
      return;
    }
    const bool held_here = headers_stop_ == i || data_stop_ == i;
    const FilterTrailersStatus status = callTrailers(i, *trailers_);
    if (held_here) {
      // This filter still holds earlier parts of the stream; the trailers
      // wait behind them.
      trailers_held_ = true;
      if (status == FilterTrailersStatus::Continue) resume(i);
      return;
    }
    if (status == FilterTrailersStatus::StopIteration) {
      data_stop_ = i;
      trailers_held_ = true;
      return;
    }
  }
  if (stopped()) return;
  terminalTrailers(*trailers_);
}

void FilterManager::Iteration::resume(size_t i) {
  if (headers_stop_ != i && data_stop_ != i) return;  // nothing of ours is held there
  // After StopAllIterationAndBuffer the stopper has not seen the body yet.
  size_t body_from = i + 1;
  if (headers_stop_ == i) {
    if (stop_all_) body_from = i;
    headers_stop_.reset();
    stop_all_ = false;
    if (data_stop_ == i) data_stop_.reset();
    // The headers may stop again further on; the body still goes as far as
    // that stop, as it would have arriving now.
    runHeaders(i + 1);
  } else {
    data_stop_.reset();
  }
  if (stopped()) return;
  if (buffered_.length() > 0 || (held_end_ && !headers_end_)) {
    buffer::Buffer data;
    data.move(buffered_);
    const bool end = held_end_;
    held_end_ = false;
    overflowed_ = false;
    runData(body_from, data, end);
    if (stopped() || buffered_.length() > 0) return;
  }
  if (trailers_held_ && !stopped()) {
    trailers_held_ = false;
    runTrailers(body_from);
  }
}

const buffer::Buffer* FilterManager::Iteration::buffered(size_t) const {
  return buffered_.length() > 0 ? &buffered_ : nullptr;
}

void FilterManager::Iteration::reset() {
  headers_ = nullptr;
  trailers_ = nullptr;
  headers_end_ = false;
  headers_stop_.reset();
  stop_all_ = false;
  data_stop_.reset();
  buffered_.drain(buffered_.length());
  held_end_ = false;
  trailers_held_ = false;
  overflowed_ = false;
}

// ---------------------------------------------------------------------------
// Per-filter callbacks: each knows its position, so that continue* resumes
// right after it.

struct FilterManager::DecoderEntry : public StreamDecoderFilterCallbacks {
  DecoderEntry(FilterManager& parent, StreamDecoderFilter& filter, size_t index)
      : parent(parent), filter(filter), index(index) {}

  network::Connection& connection() override { return parent.owner_.connection(); }
  event::Dispatcher& dispatcher() override { return parent.owner_.dispatcher(); }
  stream_info::StreamInfo& streamInfo() override { return parent.owner_.streamInfo(); }
  const router::RouteEntry* route() override { return parent.owner_.route(); }
  void clearRouteCache() override { parent.owner_.clearRouteCache(); }
  void resetStream() override { parent.owner_.resetStream(); }
  uint32_t bufferLimit() const override { return parent.owner_.bufferLimit(); }

  void continueDecoding() override {
    if (!parent.decoding_stopped_) parent.decode_->resume(index);
  }
  const buffer::Buffer* decodingBuffer() override { return parent.decode_->buffered(index); }
  void setDecoderBufferLimit(uint32_t limit) override { parent.decoder_limit_ = limit; }
  void sendLocalReply(int status, std::string_view body, stream_info::ResponseFlag flag,
                      std::string_view details) override {
    parent.owner_.sendLocalReply(status, body, flag, details);
  }
  void encodeHeaders(HeaderMapPtr headers, bool end_stream) override {
    parent.encodeHeaders(std::move(headers), end_stream);
  }
  void encodeData(buffer::Buffer& data, bool end_stream) override { parent.encodeData(data, end_stream); }
  void encodeTrailers(HeaderMapPtr trailers) override { parent.encodeTrailers(std::move(trailers)); }
  void onDecoderFilterAboveWriteBufferHighWatermark() override { parent.owner_.onUpstreamWatermark(true); }
  void onDecoderFilterBelowWriteBufferLowWatermark() override { parent.owner_.onUpstreamWatermark(false); }
  void addDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& callbacks) override {
    parent.watermark_callbacks_.push_back(&callbacks);
  }
  void removeDownstreamWatermarkCallbacks(DownstreamWatermarkCallbacks& callbacks) override {
    auto& v = parent.watermark_callbacks_;
    v.erase(std::remove(v.begin(), v.end(), &callbacks), v.end());
  }
  server::WorkerContext& worker() override { return parent.owner_.worker(); }
  bool responseStarted() const override { return parent.responseStarted(); }

  FilterManager& parent;
  StreamDecoderFilter& filter;
  size_t index;
};

struct FilterManager::EncoderEntry : public StreamEncoderFilterCallbacks {
  EncoderEntry(FilterManager& parent, StreamEncoderFilter& filter) : parent(parent), filter(filter) {}

  network::Connection& connection() override { return parent.owner_.connection(); }
  event::Dispatcher& dispatcher() override { return parent.owner_.dispatcher(); }
  stream_info::StreamInfo& streamInfo() override { return parent.owner_.streamInfo(); }
  const router::RouteEntry* route() override { return parent.owner_.route(); }
  void clearRouteCache() override { parent.owner_.clearRouteCache(); }
  void resetStream() override { parent.owner_.resetStream(); }
  uint32_t bufferLimit() const override { return parent.owner_.bufferLimit(); }

  void continueEncoding() override { parent.encode_->resume(index); }
  const buffer::Buffer* encodingBuffer() override { return parent.encode_->buffered(index); }
  void addEncodedData(buffer::Buffer& data) override {
    if (!parent.destroyed_) parent.encode_->inject(index + 1, data);
  }

  FilterManager& parent;
  StreamEncoderFilter& filter;
  size_t index = 0;  // set once the chain is complete (encode order is reversed)
};

class FilterManager::DecodeIteration : public FilterManager::Iteration {
 public:
  explicit DecodeIteration(FilterManager& fm) : fm_(fm) {}

 protected:
  size_t size() const override { return fm_.decoders_.size(); }
  FilterHeadersStatus callHeaders(size_t i, HeaderMap& h, bool end) override {
    return fm_.decoders_[i]->filter.decodeHeaders(h, end);
  }
  FilterDataStatus callData(size_t i, buffer::Buffer& d, bool end) override {
    return fm_.decoders_[i]->filter.decodeData(d, end);
  }
  FilterTrailersStatus callTrailers(size_t i, HeaderMap& t) override {
    return fm_.decoders_[i]->filter.decodeTrailers(t);
  }
  // The last decoder filter (the router) consumes the request; nothing is after it.
  void terminalHeaders(HeaderMap&, bool) override {}
  void terminalData(buffer::Buffer& d, bool) override { d.drain(d.length()); }
  void terminalTrailers(HeaderMap&) override {}
  void onOverflow() override { fm_.owner_.onDecoderBufferOverflow(); }
  bool stopped() const override { return fm_.decoding_stopped_ || fm_.destroyed_; }
  uint32_t limit() const override { return fm_.decoder_limit_.value_or(fm_.owner_.bufferLimit()); }

 private:
  FilterManager& fm_;
};

class FilterManager::EncodeIteration : public FilterManager::Iteration {
 public:
  explicit EncodeIteration(FilterManager& fm) : fm_(fm) {}

 protected:
  size_t size() const override { return fm_.encoders_.size(); }
  FilterHeadersStatus callHeaders(size_t i, HeaderMap& h, bool end) override {
    return fm_.encoders_[i]->filter.encodeHeaders(h, end);
  }
  FilterDataStatus callData(size_t i, buffer::Buffer& d, bool end) override {
    return fm_.encoders_[i]->filter.encodeData(d, end);
  }
  FilterTrailersStatus callTrailers(size_t i, HeaderMap& t) override {
    return fm_.encoders_[i]->filter.encodeTrailers(t);
  }
  void terminalHeaders(HeaderMap& h, bool end) override {
    fm_.response_headers_sent_ = true;
    fm_.owner_.encodeHeadersToCodec(h, end);
  }
  void terminalData(buffer::Buffer& d, bool end) override { fm_.owner_.encodeDataToCodec(d, end); }
  void terminalTrailers(HeaderMap& t) override { fm_.owner_.encodeTrailersToCodec(t); }
  void onOverflow() override { fm_.owner_.onEncoderBufferOverflow(); }
  bool stopped() const override { return fm_.destroyed_; }
  uint32_t limit() const override { return fm_.owner_.bufferLimit(); }

 private:
  FilterManager& fm_;
};

// ---------------------------------------------------------------------------

FilterManager::FilterManager(FilterManagerCallbacks& owner)
    : owner_(owner),
      decode_(std::make_unique<DecodeIteration>(*this)),
      encode_(std::make_unique<EncodeIteration>(*this)) {}

FilterManager::~FilterManager() { destroyFilters(); }

void FilterManager::addStreamDecoderFilter(std::unique_ptr<StreamDecoderFilter> filter) {
  auto entry = std::make_unique<DecoderEntry>(*this, *filter, decoders_.size());
  filter->setDecoderFilterCallbacks(*entry);
  decoders_.push_back(std::move(entry));
  owned_.push_back(std::move(filter));
}

void FilterManager::addStreamEncoderFilter(std::unique_ptr<StreamEncoderFilter> filter) {
  // Encoders run in reverse config order: the newest goes first.
  auto entry = std::make_unique<EncoderEntry>(*this, *filter);
  filter->setEncoderFilterCallbacks(*entry);
  encoders_.insert(encoders_.begin(), std::move(entry));
  for (size_t i = 0; i < encoders_.size(); ++i) encoders_[i]->index = i;
  owned_.push_back(std::move(filter));
}

void FilterManager::addStreamFilter(std::unique_ptr<StreamFilter> filter) {
  StreamFilter& f = *filter;
  auto decoder = std::make_unique<DecoderEntry>(*this, f, decoders_.size());
  f.setDecoderFilterCallbacks(*decoder);
  decoders_.push_back(std::move(decoder));
  auto encoder = std::make_unique<EncoderEntry>(*this, f);
  f.setEncoderFilterCallbacks(*encoder);
  encoders_.insert(encoders_.begin(), std::move(encoder));
  for (size_t i = 0; i < encoders_.size(); ++i) encoders_[i]->index = i;
  owned_.push_back(std::move(filter));
}

void FilterManager::decodeHeaders(HeaderMapPtr headers, bool end_stream) {
  request_headers_ = std::move(headers);
  decode_->headers(*request_headers_, end_stream);
}

void FilterManager::decodeData(buffer::Buffer& data, bool end_stream) {
  if (decoding_stopped_ || destroyed_) {
    data.drain(data.length());
    return;
  }
  decode_->data(data, end_stream);
}

void FilterManager::decodeTrailers(HeaderMapPtr trailers) {
  if (decoding_stopped_ || destroyed_) return;
  request_trailers_ = std::move(trailers);
  decode_->trailers(*request_trailers_);
}

void FilterManager::encodeHeaders(HeaderMapPtr headers, bool end_stream) {
  if (destroyed_) return;
  response_headers_ = std::move(headers);
  encode_->headers(*response_headers_, end_stream);
}

void FilterManager::encodeData(buffer::Buffer& data, bool end_stream) {
  if (destroyed_) {
    data.drain(data.length());
    return;
  }
  encode_->data(data, end_stream);
}

void FilterManager::encodeTrailers(HeaderMapPtr trailers) {
  if (destroyed_) return;
  response_trailers_ = std::move(trailers);
  encode_->trailers(*response_trailers_);
}

void FilterManager::discardUnsentResponse() {
  encode_->reset();
  response_headers_.reset();
  response_trailers_.reset();
}

void FilterManager::destroyFilters() {
  if (destroyed_) return;
  destroyed_ = true;
  watermark_callbacks_.clear();
  for (auto& filter : owned_) filter->onDestroy();
}

void FilterManager::onDownstreamWatermark(bool above) {
  // Copy: a callback may remove itself.
  auto callbacks = watermark_callbacks_;
  for (auto* cb : callbacks) {
    if (above) {
      cb->onAboveWriteBufferHighWatermark();
    } else {
      cb->onBelowWriteBufferLowWatermark();
    }
  }
}

}  // namespace courier::http
