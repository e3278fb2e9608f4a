// TLS over a connection's socket with OpenSSL: the handshake, then
// encrypted reads and writes straight on the non-blocking fd, with the
// handshake outcome counted in the listener's ssl.* stats.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/any.pb.h"
#include "source/common/network/transport_socket.h"
#include "source/extensions/transport_sockets/tls/context.h"

namespace courier::tls {

class SslSocket : public network::TransportSocket {
 public:
  explicit SslSocket(std::shared_ptr<const TlsContext> context);
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
  // ssl.handshake and what it negotiated (versions, ciphers, curves, sigalgs).
  void countHandshake();
  // Records why the session failed (OpenSSL's error queue), and clears it.
  void fail(int ssl_error);

  std::shared_ptr<const TlsContext> context_;
  SSL* ssl_ = nullptr;
  State state_ = State::Handshaking;
  bool reset_ = false;
  std::string failure_;
};

class SslSocketFactory : public network::TransportSocketFactory {
 public:
  explicit SslSocketFactory(std::shared_ptr<const TlsContext> context) : context_(std::move(context)) {}
  std::unique_ptr<network::TransportSocket> createTransportSocket() const override {
    return std::make_unique<SslSocket>(context_);
  }

 private:
  std::shared_ptr<const TlsContext> context_;
};

class SecretManager;
class SecretProvider;

// A cluster's transport_socket (envoy.transport_sockets.tls with an
// UpstreamTlsContext, or raw_buffer: null) as a socket factory; stats under
// stat_prefix ("cluster.<name>."), errors under path. `secrets` resolves SDS
// references (null: SDS is refused); the secrets used are appended to
// `warm_on` when set, so the cluster can warm until they arrive.
// offer_http_alpn (clusters with HttpProtocolOptions auto_config): a context
// without alpn_protocols offers "h2", "http/1.1", as Envoy does.
absl::StatusOr<network::TransportSocketFactoryConstSharedPtr> createUpstreamTransportSocketFactory(
    const std::string& name, const google::protobuf::Any* typed_config, const std::string& path, stats::Store& store,
    const std::string& stat_prefix, SecretManager* secrets = nullptr,
    std::vector<std::shared_ptr<SecretProvider>>* warm_on = nullptr, bool offer_http_alpn = false);

}  // namespace courier::tls
