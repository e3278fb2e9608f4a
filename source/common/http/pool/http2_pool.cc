#include "source/common/http/pool/http2_pool.h"
#include "source/common/http/pool/upstream_connection.h"

#include <vector>

namespace courier::http::pool {
namespace {

// Streams a connection still connecting is counted on for before any server
// SETTINGS were seen (nghttp2's own assumption).
constexpr uint32_t kAssumedConcurrency = 100;

template <class T>
void deferDelete(event::Dispatcher& dispatcher, std::unique_ptr<T> doomed) {
  struct Holder : event::DeferredDeletable {
    std::unique_ptr<T> p;
  };
  auto holder = std::make_unique<Holder>();
  holder->p = std::move(doomed);
  dispatcher.deferredDelete(std::move(holder));
}

}  // namespace

Http2PoolConnection::Http2PoolConnection(Http2Pool& pool, std::unique_ptr<network::Connection> connection)
    : pool_(pool),
      connection_(std::move(connection)),
      codec_(std::make_unique<http2::ClientConnection>(output_, *pool.cluster_->http2_settings, this)) {
  connection_->addConnectionCallbacks(*this);
}

Http2PoolConnection::~Http2PoolConnection() {
  if (connection_ != nullptr) {
    connection_->removeConnectionCallbacks(*this);
    connection_->close(network::CloseType::NoFlush);
  }
}

void Http2PoolConnection::flush() {
  if (!erased_ && connected_ && !output_.empty()) connection_->write(output_, false);
}

bool Http2PoolConnection::hasCapacity() const {
  const uint32_t max_requests = pool_.cluster_->max_requests_per_connection;
  return ready() && !erased_ && !goaway_ && !codec_->goAwayReceived() &&
         active_ < codec_->maxConcurrentStreams() && (max_requests == 0 || requests_ < max_requests);
}

void Http2PoolConnection::onEvent(network::ConnectionEvent event) {
  if (event == network::ConnectionEvent::Connected) {
    pool_.onConnected(*this);
    return;
  }
  pool_.onClosed(*this);
}

void Http2PoolConnection::onAboveWriteBufferHighWatermark() { pool_.onWatermark(*this, true); }

void Http2PoolConnection::onBelowWriteBufferLowWatermark() { pool_.onWatermark(*this, false); }

void Http2PoolConnection::onGoAway(uint32_t, uint32_t, const std::vector<RequestEncoder*>&) {
  // The streams above last_stream_id are reset (refused) by the codec next;
  // those below finish here.
  goaway_ = true;
}

void Http2PoolConnection::onData(buffer::Buffer& data) {
  if (erased_) {
    data.drain(data.length());
    return;
  }
  auto err = codec_->dispatch(data);
  if (err.has_value()) {
    flush();  // our GOAWAY, if the socket still takes it
    pool_.onClosed(*this);
    return;
  }
  flush();
  if (erased_) return;
  if (!settings_seen_ && codec_->remoteSettingsReceived()) {
    pool_.onReady(*this);
    if (erased_) return;
  }
  pool_.maybeRetire(*this);
  pool_.serveWaiters();
}

RequestEncoder& Http2PoolStream::newStream(ResponseDecoder& decoder) {
  RequestEncoder& encoder = connection_.codec_->newStream(decoder);
  stream_ = encoder.getStream();
  stream_->addCallbacks(*this);
  return encoder;
}

DispatchResult Http2PoolStream::dispatch(buffer::Buffer& data) {
  // The pool's connection feeds the codec; nothing comes through here.
  data.drain(data.length());
  return std::nullopt;
}

DispatchResult Http2PoolStream::onConnectionClosed() {
  // A stream has no close-delimited body: reaching here means it was cut.
  return CodecError{CodecError::Kind::PrematureResponse, 503, "upstream_reset", "upstream stream reset"};
}

void Http2PoolStream::readDisable(bool disable) {
  if (stream_ != nullptr) stream_->readDisable(disable);
}

void Http2PoolStream::onResetStream(StreamResetReason reason, std::string_view) {
  stream_ = nullptr;
  reset_ = true;
  refused_ = reason == StreamResetReason::RemoteRefusedStreamReset;
  connection_.pool_.onStreamReset(*this);
}

void Http2PoolStream::detach() {
  if (stream_ == nullptr) return;
  stream_->removeCallbacks(*this);
  stream_ = nullptr;
}

Http2Pool::Http2Pool(event::Dispatcher& dispatcher, upstream::ClusterConstSharedPtr cluster,
                     const upstream::Host& host, bool high_priority)
    : dispatcher_(dispatcher),
      cluster_(std::move(cluster)),
      address_(host.address),
      waiting_(cluster_->resourcesFor(high_priority).pending_requests),
      peer_stream_limit_(kAssumedConcurrency),
      high_priority_(high_priority) {}

Http2Pool::~Http2Pool() {
  // The cluster's circuit-breaker counts outlive this pool.
  for (const auto& c : connections_) {
    if (!c->erased_) resources().connections.dec();
  }
  waiting_.clear();
  streams_.clear();
  connections_.clear();
}

void Http2Pool::newStream(PoolCallbacks& callbacks) {
  for (auto& c : connections_) {
    if (c->hasCapacity()) {
      attach(*c, callbacks);
      return;
    }
  }
  if (!waiting_.push(callbacks, cluster_->stats->upstream_rq_pending_overflow)) return;
  serveWaiters();
}

void Http2Pool::attach(Http2PoolConnection& c, PoolCallbacks& callbacks) {
  ++c.active_;
  ++c.requests_;
  auto stream = std::make_unique<Http2PoolStream>(c, callbacks);
  Http2PoolStream& raw = *stream;
  streams_[&callbacks] = std::move(stream);
  callbacks.onPoolReady(raw);
}

void Http2Pool::serveWaiters() {
  while (!waiting_.empty()) {
    Http2PoolConnection* room = nullptr;
    for (auto& c : connections_) {
      if (c->hasCapacity()) {
        room = c.get();
        break;
      }
    }
    if (room == nullptr) break;
    attach(*room, *waiting_.pop());
  }
  if (waiting_.empty()) return;
  const uint32_t per_connection = expectedStreamsPerConnection();
  size_t coming = 0;
  for (const auto& c : connections_) {
    if (!c->ready() && !c->erased_) coming += per_connection;
  }
  // A server that advertises no streams at all would get a connection per
  // waiter up to the breaker: wait for it to raise its limit instead.
  if (peer_stream_limit_ == 0 && !connections_.empty()) return;
  // Every ready connection is full: open as many as the waiters need.
  while (waiting_.size() > coming) {
    if (!resources().connections.canCreate() && !connections_.empty()) {
      // The waiters stay queued until a stream slot or a connection frees up.
      cluster_->stats->upstream_cx_overflow.inc();
      return;
    }
    createConnection();
    coming += per_connection;
  }
}

uint32_t Http2Pool::expectedStreamsPerConnection() const {
  uint32_t n = peer_stream_limit_;
  const uint32_t max_requests = cluster_->max_requests_per_connection;
  if (max_requests != 0 && max_requests < n) n = max_requests;
  return n == 0 ? 1 : n;
}

void Http2Pool::createConnection() {
  Http2PoolConnection& c = addConnection(connectUpstream(dispatcher_, *cluster_, resources(), address_));
  if (!alpn_check_) return;
  Http2PoolConnection* raw = &c;
  c.connection_->setHandshakeCallback([this, raw] {
    if (!alpn_check_(raw->connection_->nextProtocol())) onClosed(*raw);
  });
}

void Http2Pool::adopt(std::unique_ptr<network::Connection> connection) {
  onConnected(addConnection(std::move(connection)));
}

Http2PoolConnection& Http2Pool::addConnection(std::unique_ptr<network::Connection> connection) {
  auto pooled = std::make_unique<Http2PoolConnection>(*this, std::move(connection));
  Http2PoolConnection* raw = pooled.get();
  cluster_->stats->upstream_cx_http2_total.inc();
  forwardReads(*raw->connection_, *raw);
  raw->connect_timer_ = dispatcher_.createTimer([this, raw] {
    cluster_->stats->upstream_cx_connect_timeout.inc();
    onClosed(*raw);
  });
  raw->connect_timer_->enable(cluster_->connect_timeout);
  connections_.push_front(std::move(pooled));
  raw->self_ = connections_.begin();
  return *raw;
}

void Http2Pool::onConnected(Http2PoolConnection& c) {
  c.connected_ = true;
  // The client preface; streams wait for the server's SETTINGS (onReady), so
  // none is queued inside nghttp2 beyond the server's real limit.
  c.flush();
}

void Http2Pool::onReady(Http2PoolConnection& c) {
  c.settings_seen_ = true;
  c.connect_timer_->disable();
  peer_stream_limit_ = c.codec_->maxConcurrentStreams();
}

void Http2Pool::onClosed(Http2PoolConnection& c) {
  if (c.erased_) return;
  if (c.connect_timer_) c.connect_timer_->disable();
  // Closed before the server's SETTINGS: no stream ever went there.
  const bool failed_connect = !c.ready();
  if (failed_connect) cluster_->stats->upstream_cx_connect_fail.inc();
  c.goaway_ = true;
  // Live streams hear it from the codec and their requests see
  // onUpstreamClosed(); streams whose codec stream already ended are told here.
  c.codec_->onConnectionClosed();
  std::vector<Http2PoolStream*> left;
  for (auto& [callbacks, stream] : streams_) {
    if (&stream->connection_ == &c) left.push_back(stream.get());
  }
  for (Http2PoolStream* s : left) onStreamReset(*s);
  erase(c);
  if (failed_connect) {
    // The connect some waiters counted on failed: those the connections still
    // on their way can't take fail now, rather than reconnecting for them
    // (no connect storm against a host that is down).
    const uint32_t per_connection = expectedStreamsPerConnection();
    size_t coming = 0;
    for (const auto& other : connections_) {
      if (!other->ready() && !other->erased_) coming += per_connection;
    }
    std::vector<PoolCallbacks*> failed;
    while (waiting_.size() > coming) failed.push_back(waiting_.popBack());
    for (auto it = failed.rbegin(); it != failed.rend(); ++it) {
      (*it)->onPoolFailure(PoolCallbacks::Failure::ConnectFailure);
    }
    checkDrained();
    return;
  }
  serveWaiters();
}

void Http2Pool::onStreamReset(Http2PoolStream& stream) {
  PoolCallbacks& callbacks = stream.callbacks_;
  stream.detach();
  detach(stream);
  callbacks.onUpstreamClosed();
}

void Http2Pool::detach(Http2PoolStream& stream) {
  Http2PoolConnection& c = stream.connection_;
  auto it = streams_.find(&stream.callbacks_);
  if (it == streams_.end()) return;
  std::unique_ptr<Http2PoolStream> doomed = std::move(it->second);
  streams_.erase(it);
  // We may be inside the stream's own call stack.
  deferDelete(dispatcher_, std::move(doomed));
  --c.active_;
  maybeRetire(c);
}

void Http2Pool::release(UpstreamStream& upstream, bool reusable) {
  // This pool hands out only its own streams.
  auto& stream = static_cast<Http2PoolStream&>(upstream);
  Http2PoolConnection& c = stream.connection_;
  Stream* codec_stream = stream.stream_;
  stream.detach();
  // Abandoned mid-exchange: only this stream ends (RST_STREAM).
  if (!reusable && codec_stream != nullptr) {
    codec_stream->resetStream(StreamResetReason::LocalReset);
    c.flush();
  }
  detach(stream);
  serveWaiters();
}

void Http2Pool::cancel(PoolCallbacks& callbacks) {
  waiting_.remove(callbacks);
  auto it = streams_.find(&callbacks);
  if (it != streams_.end()) {
    release(*it->second, false);
    return;
  }
  checkDrained();
}

void Http2Pool::maybeRetire(Http2PoolConnection& c) {
  if (c.erased_ || c.active_ > 0 || !c.ready()) return;
  const uint32_t max_requests = cluster_->max_requests_per_connection;
  const bool spent = max_requests != 0 && c.requests_ >= max_requests;
  if (!(c.goaway_ || c.codec_->goAwayReceived() || spent || draining_)) return;
  if (spent) cluster_->stats->upstream_cx_max_requests.inc();
  erase(c);
}

void Http2Pool::onWatermark(Http2PoolConnection& c, bool above) {
  std::vector<PoolCallbacks*> affected;
  for (auto& [callbacks, stream] : streams_) {
    if (&stream->connection_ == &c) affected.push_back(callbacks);
  }
  for (PoolCallbacks* cb : affected) cb->onUpstreamWatermark(above);
}

void Http2Pool::erase(Http2PoolConnection& c) {
  if (c.erased_) return;
  c.erased_ = true;
  if (c.connect_timer_) c.connect_timer_->disable();
  cluster_->stats->upstream_cx_active.dec();
  cluster_->stats->upstream_cx_destroy.inc();
  resources().connections.dec();
  auto it = c.self_;
  std::unique_ptr<Http2PoolConnection> doomed = std::move(*it);
  connections_.erase(it);
  if (doomed->connection_ != nullptr) {
    doomed->connection_->removeConnectionCallbacks(*doomed);
    doomed->connection_->close(network::CloseType::FlushWrite);
    // We may be inside this connection's callback: delete later.
    dispatcher_.deferredDelete(std::move(doomed->connection_));
  }
  deferDelete(dispatcher_, std::move(doomed));
  checkDrained();
}

void Http2Pool::drain(std::function<void()> on_drained) {
  draining_ = true;
  on_drained_ = std::move(on_drained);
  std::vector<Http2PoolConnection*> idle;
  for (auto& c : connections_) {
    if (c->ready() && c->active_ == 0) idle.push_back(c.get());
  }
  for (Http2PoolConnection* c : idle) erase(*c);
  checkDrained();
}

void Http2Pool::checkDrained() {
  if (!draining_ || !connections_.empty() || !waiting_.empty() || !on_drained_) return;
  // Posted: we may be inside this pool's own call stack.
  dispatcher_.post(std::move(on_drained_));
  on_drained_ = nullptr;
}

}  // namespace courier::http::pool
