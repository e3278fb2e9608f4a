// TLS over a connection's socket with OpenSSL: the handshake, then
// encrypted reads and writes straight on the non-blocking fd, with the
// handshake outcome counted in the listener's ssl.* stats.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "source/common/network/transport_socket.h"
#include "source/extensions/transport_sockets/tls/context.h"

namespace courier::tls {

class SslSocket : public network::TransportSocket {
 public:
  explicit SslSocket(std::shared_ptr<const ServerContext> context);
  ~SslSocket() override;

  void setFd(int fd) override;
  network::TransportIoResult doRead(buffer::Buffer& buffer, size_t max_bytes) override;
  network::TransportIoResult doWrite(buffer::Buffer& buffer) override;
  void shutdownWrite() override;
  bool handshakeComplete() const override { return state_ == State::Done; }
  std::string_view nextProtocol() const override;
  std::string_view serverName() const override;
  std::string failureReason() const override { return failure_; }

 private:
  enum class State { Handshaking, Done, Failed };
  // Advances the handshake; counts its outcome once.
  State handshake();
  // Records why the session failed (OpenSSL's error queue), and clears it.
  void fail(int ssl_error);

  std::shared_ptr<const ServerContext> context_;
  SSL* ssl_ = nullptr;
  State state_ = State::Handshaking;
  bool reset_ = false;
  std::string failure_;
};

class SslSocketFactory : public network::TransportSocketFactory {
 public:
  explicit SslSocketFactory(std::shared_ptr<const ServerContext> context) : context_(std::move(context)) {}
  std::unique_ptr<network::TransportSocket> createTransportSocket() const override {
    return std::make_unique<SslSocket>(context_);
  }

 private:
  std::shared_ptr<const ServerContext> context_;
};

}  // namespace courier::tls
