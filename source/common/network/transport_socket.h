// The seam between a connection and what runs over its socket (TLS, or
// nothing): the connection owns the fd and the buffers, a transport socket
// moves bytes between them. Plaintext uses no transport socket at all, so the
// raw path stays a direct readv/writev with no virtual call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "source/common/buffer/buffer.h"

namespace courier::network {

struct TransportIoResult {
  // Close: the transport failed (bad handshake, peer reset, protocol error).
  bool close = false;
  // Plaintext bytes moved into (read) or out of (write) the buffer.
  uint64_t bytes = 0;
  // Read: the peer ended its stream (close_notify or FIN).
  bool end_stream = false;
  // The failure was a TCP reset.
  bool reset = false;
};

class TransportSocket {
 public:
  virtual ~TransportSocket() = default;
  // The connected, non-blocking socket; called once before any I/O.
  virtual void setFd(int fd) = 0;
  // Reads at most max_bytes of plaintext into buffer, driving the handshake
  // first if it is not done. Reads until the socket would block or the limit.
  virtual TransportIoResult doRead(buffer::Buffer& buffer, size_t max_bytes) = 0;
  // Writes (and drains) as much of buffer as the socket takes, driving the
  // handshake first. An incomplete handshake writes nothing and keeps open.
  virtual TransportIoResult doWrite(buffer::Buffer& buffer) = 0;
  // Our side is done writing: say so in the transport (TLS close_notify)
  // before the TCP half-close.
  virtual void shutdownWrite() = 0;
  virtual bool handshakeComplete() const = 0;
  // The protocol negotiated by ALPN ("h2", "http/1.1"), or empty.
  virtual std::string_view nextProtocol() const = 0;
  // The server name the client asked for (SNI), or empty.
  virtual std::string_view serverName() const = 0;
  // Why the transport failed, for logs; empty when it did not.
  virtual std::string failureReason() const = 0;
};

// Shared by all workers (const, thread-safe): makes one transport socket per
// connection.
class TransportSocketFactory {
 public:
  virtual ~TransportSocketFactory() = default;
  virtual std::unique_ptr<TransportSocket> createTransportSocket() const = 0;
};
using TransportSocketFactoryConstSharedPtr = std::shared_ptr<const TransportSocketFactory>;

}  // namespace courier::network
