// An OpenSSL SSL_CTX built from an Envoy DownstreamTlsContext, with the
// listener's ssl.* stats. Built on the main thread, then shared read-only by
// every worker (SSL_new on a shared SSL_CTX is thread-safe).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/config/core/v3/base.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "source/common/stats/store.h"

namespace courier::tls {

// listener.<addr>.ssl.* as Envoy names them.
struct SslStats {
  SslStats(stats::Store& store, const std::string& prefix);
  stats::Counter& handshake;
  stats::Counter& connection_error;
  stats::Counter& no_certificate;
  stats::Counter& fail_verify_no_cert;
  stats::Counter& fail_verify_error;
};

// The bytes of a DataSource (filename, inline_string, inline_bytes,
// environment_variable); errors name path.<specifier>.
absl::StatusOr<std::string> readDataSource(const envoy::config::core::v3::DataSource& source, const std::string& path);

class ServerContext {
 public:
  // path names the DownstreamTlsContext (".../transport_socket.typed_config");
  // stat_prefix is the listener's ("listener.127.0.0.1_443.").
  static absl::StatusOr<std::shared_ptr<const ServerContext>> create(
      const envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext& config, const std::string& path,
      stats::Store& store, const std::string& stat_prefix);
  ~ServerContext();

  SSL_CTX* ctx() const { return ctx_; }
  SslStats& stats() const { return *stats_; }
  bool requireClientCertificate() const { return require_client_cert_; }

 private:
  ServerContext() = default;
  SSL_CTX* ctx_ = nullptr;
  std::unique_ptr<SslStats> stats_;
  bool require_client_cert_ = false;
  // ALPN protocols in wire format (length-prefixed), server preference order.
  std::string alpn_wire_;
  static int selectAlpn(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                        unsigned int inlen, void* arg);
};

}  // namespace courier::tls
