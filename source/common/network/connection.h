// A TCP connection owned by one worker's dispatcher: non-blocking reads into
// and writes from chained buffers, read filters (the network filter chain),
// half-close, flow control by write-buffer watermarks, and close events.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <vector>

#include "source/common/buffer/buffer.h"
#include "source/common/event/dispatcher.h"
#include "source/common/network/address.h"
#include "source/common/network/socket.h"
#include "source/common/network/transport_socket.h"

namespace courier::stats {
class Counter;
class Gauge;
}  // namespace courier::stats

namespace courier::network {

enum class ConnectionEvent { RemoteClose, LocalClose, Connected };
enum class CloseType { FlushWrite, NoFlush };

class Connection;

class ConnectionCallbacks {
 public:
  virtual ~ConnectionCallbacks() = default;
  virtual void onEvent(ConnectionEvent event) = 0;
  // The write buffer went above its high watermark: stop feeding it.
  virtual void onAboveWriteBufferHighWatermark() {}
  // It drained below the low watermark: resume.
  virtual void onBelowWriteBufferLowWatermark() {}
  // The listener that accepted the connection is draining (listener update
  // or removal, server shutdown). A protocol that can end the connection
  // politely should (HTTP: `connection: close` on the next response, close
  // when idle); whatever is still open when the drain time ends is closed.
  virtual void onDrainStarted() {}
};

enum class FilterStatus { Continue, StopIteration };

class ReadFilterCallbacks {
 public:
  virtual ~ReadFilterCallbacks() = default;
  virtual Connection& connection() = 0;
};

// A network filter that sees bytes read from the downstream connection.
class ReadFilter {
 public:
  virtual ~ReadFilter() = default;
  virtual void initializeReadFilterCallbacks(ReadFilterCallbacks& callbacks) = 0;
  virtual FilterStatus onNewConnection() { return FilterStatus::Continue; }
  // data is the connection's read buffer; a filter drains what it consumes.
  virtual FilterStatus onData(buffer::Buffer& data, bool end_stream) = 0;
};

// Counters a connection bumps as bytes move; any may be null.
struct ConnectionStats {
  stats::Counter* rx_total = nullptr;
  stats::Counter* tx_total = nullptr;
};

class Connection : public event::DeferredDeletable, private ReadFilterCallbacks {
 public:
  enum class State { Connecting, Open, Closing, Closed };

  // Server side: fd is already connected.
  Connection(event::Dispatcher& dispatcher, SocketFd fd, Address remote, Address local);
  // Client side: starts a non-blocking connect; Connected or RemoteClose follows.
  // A transport socket (TLS) runs over the socket once connected; null is plaintext.
  static std::unique_ptr<Connection> connect(event::Dispatcher& dispatcher, const Address& remote,
                                             std::unique_ptr<TransportSocket> transport = nullptr);
  ~Connection() override;

  uint64_t id() const { return id_; }
  event::Dispatcher& dispatcher() { return dispatcher_; }
  const Address& remoteAddress() const { return remote_; }
  const Address& localAddress() const { return local_; }
  State state() const { return state_; }
  int fd() const { return fd_.get(); }

  void addConnectionCallbacks(ConnectionCallbacks& cb) { callbacks_.push_back(&cb); }
  void removeConnectionCallbacks(ConnectionCallbacks& cb);
  void addReadFilter(std::unique_ptr<ReadFilter> filter);
  // Calls onNewConnection on each filter; false if the chain closed the connection.
  bool initializeReadFilters();
  void setConnectionStats(ConnectionStats stats) { stats_ = stats; }
  // Server side: runs TLS (or another transport) over the accepted socket.
  // Set before the first event; without one the connection is plaintext.
  void setTransportSocket(std::unique_ptr<TransportSocket> transport);
  const TransportSocket* transportSocket() const { return transport_.get(); }
  // Runs once, as soon as the transport's handshake completes (before any
  // bytes read with it reach the read filters), so an owner can pick a codec
  // by ALPN. A connection without a transport never calls it.
  void setHandshakeCallback(std::function<void()> cb) { on_handshake_ = std::move(cb); }
  // ALPN's choice, or empty (plaintext, or no ALPN).
  std::string_view nextProtocol() const {
    return transport_ != nullptr ? transport_->nextProtocol() : std::string_view();
  }

  // Appends data (drained from the argument) to the write buffer and writes
  // what the socket takes. end_stream half-closes our side once flushed.
  void write(buffer::Buffer& data, bool end_stream);
  void close(CloseType type);
  // Counted: every readDisable(true) needs a readDisable(false).
  void readDisable(bool disable);
  bool readEnabled() const { return read_disable_count_ == 0; }
  // With half-close, a peer's FIN is delivered as end_stream and the
  // connection stays open for writing; without it, FIN closes the connection.
  void enableHalfClose(bool enabled) { half_close_ = enabled; }
  // Bounds bytes read per event and sets the write watermarks (high = limit,
  // low = limit / 2). 0 disables watermarks.
  void setBufferLimits(uint32_t limit);
  size_t writeBufferLength() const { return write_buffer_.length(); }
  bool aboveHighWatermark() const { return above_high_; }
  uint64_t bytesRead() const { return bytes_read_; }
  uint64_t bytesWritten() const { return bytes_written_; }
  // Why the connection closed (for access logs and stats).
  bool closedByReset() const { return reset_; }
  // Tells the callbacks once (onDrainStarted); a callback may close the
  // connection from there.
  void startDrain();
  bool draining() const { return draining_; }

 private:
  Connection(event::Dispatcher& dispatcher, SocketFd fd, Address remote, State state);
  Connection& connection() override { return *this; }
  void onFileEvent(uint32_t events);
  void onReadReady();
  void onWriteReady();
  void onConnectComplete();
  void flush();
  // The transport's write path; false when it closed the connection.
  bool flushTransport();
  void onTransportReadReady(size_t limit);
  void dispatchRead(bool end_stream);
  void closeSocket(ConnectionEvent event);
  void raise(ConnectionEvent event);
  void checkWatermarksAfterWrite();

  static uint64_t next_id_;
  event::Dispatcher& dispatcher_;
  SocketFd fd_;
  Address remote_;
  Address local_;
  State state_;
  const uint64_t id_;
  std::unique_ptr<event::FileEvent> file_event_;
  std::vector<ConnectionCallbacks*> callbacks_;
  std::vector<std::unique_ptr<ReadFilter>> filters_;
  std::unique_ptr<TransportSocket> transport_;
  std::function<void()> on_handshake_;
  void maybeHandshakeDone();
  buffer::Buffer read_buffer_;
  buffer::Buffer write_buffer_;
  ConnectionStats stats_;
  uint32_t buffer_limit_ = 0;
  uint32_t read_disable_count_ = 0;
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;
  bool half_close_ = false;
  bool draining_ = false;
  bool read_end_stream_ = false;       // peer sent FIN
  bool read_end_delivered_ = false;    // filters saw end_stream
  bool write_end_stream_ = false;      // we were asked to half-close
  bool write_shutdown_ = false;        // shutdown(SHUT_WR) done
  bool close_after_flush_ = false;
  bool above_high_ = false;
  bool reset_ = false;
  // The peer closed its side (EPOLLRDHUP seen): read to EOF, never stop short.
  bool peer_closed_ = false;
  // Read until EAGAIN on the next read event, not just to a short read (an
  // edge was skipped while reading was disabled, or may have been an error).
  bool drain_reads_ = false;
  bool connect_failed_immediately_ = false;
};

}  // namespace courier::network
