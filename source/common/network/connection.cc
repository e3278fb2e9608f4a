#include "source/common/network/connection.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "source/common/stats/store.h"

namespace courier::network {
namespace {
// Upper bound of one read event when no buffer limit is set, so that one busy
// connection cannot starve the others on the loop.
constexpr size_t kDefaultReadChunk = 64 * 1024;
}  // namespace

uint64_t Connection::next_id_ = 0;

Connection::Connection(event::Dispatcher& dispatcher, SocketFd fd, Address remote, Address local)
    : Connection(dispatcher, std::move(fd), std::move(remote), State::Open) {
  local_ = std::move(local);
}

Connection::Connection(event::Dispatcher& dispatcher, SocketFd fd, Address remote, State state)
    : dispatcher_(dispatcher), fd_(std::move(fd)), remote_(std::move(remote)), state_(state),
      // Unique per process, for logs; taken once per connection.
      id_(__atomic_fetch_add(&next_id_, 1, __ATOMIC_RELAXED)) {
  file_event_ = dispatcher_.createFileEvent(fd_.get(), [this](uint32_t events) { onFileEvent(events); });
}

std::unique_ptr<Connection> Connection::connect(event::Dispatcher& dispatcher, const Address& remote,
                                                std::unique_ptr<TransportSocket> transport) {
  auto fd = connectTo(remote);
  if (!fd.ok()) {
    // Report the failure through the usual event path, after the caller has
    // had a chance to add its callbacks.
    int raw = ::socket(remote.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    auto conn = std::unique_ptr<Connection>(new Connection(dispatcher, SocketFd(raw), remote, State::Connecting));
    conn->connect_failed_immediately_ = true;
    conn->file_event_->activate(event::kWrite);
    return conn;
  }
  auto conn = std::unique_ptr<Connection>(new Connection(dispatcher, std::move(*fd), remote, State::Connecting));
  if (transport != nullptr) conn->setTransportSocket(std::move(transport));
  return conn;
}

void Connection::setTransportSocket(std::unique_ptr<TransportSocket> transport) {
  transport_ = std::move(transport);
  transport_->setFd(fd_.get());
}

Connection::~Connection() {
  file_event_.reset();
}

void Connection::removeConnectionCallbacks(ConnectionCallbacks& cb) {
  callbacks_.erase(std::remove(callbacks_.begin(), callbacks_.end(), &cb), callbacks_.end());
}

void Connection::startDrain() {
  if (draining_) return;
  draining_ = true;
  // A copy: a callback may close the connection and others may unregister.
  const std::vector<ConnectionCallbacks*> callbacks = callbacks_;
  for (ConnectionCallbacks* cb : callbacks) {
    if (state_ == State::Closed) return;
    cb->onDrainStarted();
  }
}

void Connection::addReadFilter(std::unique_ptr<ReadFilter> filter) {
  filter->initializeReadFilterCallbacks(*this);
  filters_.push_back(std::move(filter));
}

bool Connection::initializeReadFilters() {
  for (auto& f : filters_) {
    if (f->onNewConnection() == FilterStatus::StopIteration) break;
    if (state_ == State::Closed) return false;
  }
  return state_ != State::Closed;
}

void Connection::setBufferLimits(uint32_t limit) { buffer_limit_ = limit; }

void Connection::onFileEvent(uint32_t events) {
  if (state_ == State::Connecting) {
    if (events & event::kWrite) onConnectComplete();
    return;
  }
  if (state_ == State::Closed) return;
  if (events & event::kClosed) peer_closed_ = true;
  // libevent reports EPOLLERR/EPOLLHUP (a reset) as read and write at once,
  // without kClosed: such an edge is read until EAGAIN or the error.
  if ((events & event::kRead) && (events & event::kWrite)) drain_reads_ = true;
  if (events & event::kWrite) onWriteReady();
  if (state_ == State::Closed) return;
  if (events & (event::kRead | event::kClosed)) onReadReady();
}

void Connection::onConnectComplete() {
  int err = 0;
  socklen_t len = sizeof(err);
  if (connect_failed_immediately_ || getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    closeSocket(ConnectionEvent::RemoteClose);
    return;
  }
  state_ = State::Open;
  local_ = Address::localOf(fd_.get());
  raise(ConnectionEvent::Connected);
  if (state_ == State::Closed) return;
  // A transport starts its handshake now (TLS ClientHello).
  if (!write_buffer_.empty() || write_end_stream_ || transport_ != nullptr) flush();
  // Data may have arrived with the handshake; edge triggering won't repeat it.
  if (state_ != State::Closed) file_event_->activate(event::kRead);
}

void Connection::onReadReady() {
  if (!readEnabled() || read_end_stream_) {
    // An edge we did not act on will not come again: read fully next time.
    drain_reads_ = true;
    return;
  }
  const size_t limit = buffer_limit_ > 0 ? buffer_limit_ : kDefaultReadChunk;
  if (transport_ != nullptr) {
    onTransportReadReady(limit);
    return;
  }
  size_t got = 0;
  bool eof = false;
  while (got < limit) {
    buffer::IoResult r = read_buffer_.readFromFd(fd_.get(), limit - got);
    if (r.bytes > 0) {
      got += static_cast<size_t>(r.bytes);
      // The queue is empty: another read would only say EAGAIN. New bytes
      // raise a new edge; a close seen with these bytes must be read to EOF.
      if (r.partial && !peer_closed_ && !drain_reads_ && dispatcher_.reportsPeerClose()) break;
      continue;
    }
    if (r.bytes == 0) {
      eof = true;
      break;
    }
    if (r.wouldBlock()) {
      drain_reads_ = false;
      break;
    }
    if (r.err == EINTR) continue;
    reset_ = r.err == ECONNRESET;
    if (got > 0) dispatchRead(false);
    closeSocket(ConnectionEvent::RemoteClose);
    return;
  }
  bytes_read_ += got;
  if (stats_.rx_total != nullptr && got > 0) stats_.rx_total->add(got);
  if (eof) read_end_stream_ = true;
  if (got > 0 || eof) dispatchRead(eof);
  if (state_ == State::Closed) return;
  if (eof && !half_close_) {
    closeSocket(ConnectionEvent::RemoteClose);
    return;
  }
  if (eof && write_shutdown_) {
    // Both directions are finished.
    closeSocket(ConnectionEvent::RemoteClose);
    return;
  }
  // Hit the per-event limit: come back on the next iteration for the rest.
  if (!eof && got >= limit && readEnabled()) file_event_->activate(event::kRead);
}

void Connection::onTransportReadReady(size_t limit) {
  const bool was_handshaking = !transport_->handshakeComplete();
  TransportIoResult r = transport_->doRead(read_buffer_, limit);
  bytes_read_ += r.bytes;
  if (stats_.rx_total != nullptr && r.bytes > 0) stats_.rx_total->add(r.bytes);
  if (r.close) {
    reset_ = r.reset;
    if (r.bytes > 0) dispatchRead(false);
    closeSocket(ConnectionEvent::RemoteClose);
    return;
  }
  if (was_handshaking && transport_->handshakeComplete()) {
    maybeHandshakeDone();
    if (state_ == State::Closed) return;
  }
  // What was written before the handshake finished (HTTP/2 SETTINGS) goes now;
  // a read may also have unblocked a write waiting on the peer.
  if ((was_handshaking && transport_->handshakeComplete()) || !write_buffer_.empty()) {
    flush();
    if (state_ == State::Closed) return;
  }
  const bool eof = r.end_stream;
  if (eof) read_end_stream_ = true;
  if (r.bytes > 0 || eof) dispatchRead(eof);
  if (state_ == State::Closed) return;
  if (eof && (!half_close_ || write_shutdown_)) {
    closeSocket(ConnectionEvent::RemoteClose);
    return;
  }
  // TLS may hold decrypted bytes the socket will not signal again.
  if (!eof && r.bytes >= limit && readEnabled()) file_event_->activate(event::kRead);
}

void Connection::dispatchRead(bool end_stream) {
  if (filters_.empty()) return;
  if (end_stream) read_end_delivered_ = true;
  for (auto& f : filters_) {
    if (f->onData(read_buffer_, end_stream) == FilterStatus::StopIteration) break;
    if (state_ == State::Closed) return;
  }
}

void Connection::readDisable(bool disable) {
  if (disable) {
    ++read_disable_count_;
    return;
  }
  if (read_disable_count_ == 0) return;
  if (--read_disable_count_ == 0 && state_ == State::Open) {
    // Data may have arrived while disabled; edge triggering won't tell again.
    file_event_->activate(event::kRead);
  }
}

void Connection::write(buffer::Buffer& data, bool end_stream) {
  if (state_ == State::Closed || write_end_stream_) {
    data.drain(data.length());
    return;
  }
  write_buffer_.move(data);
  if (end_stream) write_end_stream_ = true;
  if (state_ == State::Connecting) {
    if (buffer_limit_ > 0 && !above_high_ && write_buffer_.length() > buffer_limit_) {
      above_high_ = true;
      for (auto* cb : std::vector<ConnectionCallbacks*>(callbacks_)) cb->onAboveWriteBufferHighWatermark();
    }
    return;
  }
  flush();
}

void Connection::onWriteReady() {
  // A handshake blocked on a full send queue continues here.
  if (transport_ != nullptr && !transport_->handshakeComplete()) {
    flush();
    return;
  }
  if (!write_buffer_.empty() || (write_end_stream_ && !write_shutdown_) || close_after_flush_) flush();
}

void Connection::maybeHandshakeDone() {
  if (!on_handshake_) return;
  auto cb = std::move(on_handshake_);
  on_handshake_ = nullptr;
  cb();
}

bool Connection::flushTransport() {
  const bool was_handshaking = !transport_->handshakeComplete();
  TransportIoResult r = transport_->doWrite(write_buffer_);
  bytes_written_ += r.bytes;
  if (stats_.tx_total != nullptr && r.bytes > 0) stats_.tx_total->add(r.bytes);
  if (!r.close) {
    // A handshake blocked on writing may finish here rather than on a read.
    if (was_handshaking && transport_->handshakeComplete()) {
      maybeHandshakeDone();
      return state_ != State::Closed;
    }
    return true;
  }
  reset_ = r.reset;
  write_buffer_.drain(write_buffer_.length());
  closeSocket(ConnectionEvent::RemoteClose);
  return false;
}

void Connection::flush() {
  if (transport_ != nullptr) {
    if (!flushTransport()) return;
    // Nothing may go in clear before the handshake is done.
    if (!transport_->handshakeComplete()) {
      checkWatermarksAfterWrite();
      return;
    }
  }
  while (transport_ == nullptr && !write_buffer_.empty()) {
    buffer::IoResult r = write_buffer_.writeToFd(fd_.get());
    if (r.bytes > 0) {
      bytes_written_ += static_cast<uint64_t>(r.bytes);
      if (stats_.tx_total != nullptr) stats_.tx_total->add(static_cast<uint64_t>(r.bytes));
      // The send queue is full: the next write waits for the writable edge.
      if (r.partial) break;
      continue;
    }
    if (r.bytes < 0 && r.err == EINTR) continue;
    if (r.bytes < 0 && r.wouldBlock()) break;
    // EPIPE / ECONNRESET: the peer is gone.
    reset_ = r.bytes < 0 && r.err == ECONNRESET;
    write_buffer_.drain(write_buffer_.length());
    closeSocket(ConnectionEvent::RemoteClose);
    return;
  }
  checkWatermarksAfterWrite();
  if (state_ == State::Closed || !write_buffer_.empty()) return;
  if (close_after_flush_) {
    closeSocket(ConnectionEvent::LocalClose);
    return;
  }
  if (write_end_stream_ && !write_shutdown_) {
    write_shutdown_ = true;
    if (transport_ != nullptr) transport_->shutdownWrite();
    ::shutdown(fd_.get(), SHUT_WR);
    if (read_end_stream_ && read_end_delivered_) closeSocket(ConnectionEvent::LocalClose);
  }
}

void Connection::checkWatermarksAfterWrite() {
  if (buffer_limit_ == 0) return;
  const size_t len = write_buffer_.length();
  if (!above_high_ && len > buffer_limit_) {
    above_high_ = true;
    for (auto* cb : std::vector<ConnectionCallbacks*>(callbacks_)) cb->onAboveWriteBufferHighWatermark();
  } else if (above_high_ && len <= buffer_limit_ / 2) {
    above_high_ = false;
    for (auto* cb : std::vector<ConnectionCallbacks*>(callbacks_)) cb->onBelowWriteBufferLowWatermark();
  }
}

void Connection::close(CloseType type) {
  if (state_ == State::Closed) return;
  if (type == CloseType::FlushWrite && state_ == State::Open && !write_buffer_.empty()) {
    state_ = State::Closing;
    close_after_flush_ = true;
    // Nothing more is read; what is queued still goes out.
    readDisable(true);
    return;
  }
  closeSocket(ConnectionEvent::LocalClose);
}

void Connection::closeSocket(ConnectionEvent event) {
  if (state_ == State::Closed) return;
  state_ = State::Closed;
  file_event_.reset();
  fd_ = SocketFd();
  raise(event);
}

void Connection::raise(ConnectionEvent event) {
  // Callbacks may remove themselves (or others) while we iterate.
  for (auto* cb : std::vector<ConnectionCallbacks*>(callbacks_)) {
    if (std::find(callbacks_.begin(), callbacks_.end(), cb) != callbacks_.end()) cb->onEvent(event);
  }
}

}  // namespace courier::network
