// OpenSSL SSL_CTXs built from Envoy's DownstreamTlsContext (a listener's) and
// UpstreamTlsContext (a cluster's), with their ssl.* stats. Built on the main
// thread, then shared read-only by every worker (SSL_new on a shared SSL_CTX
// is thread-safe).
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
  stats::Counter& fail_verify_san;
};

// What a TLS socket needs of either side's context.
class TlsContext {
 public:
  virtual ~TlsContext();
  SSL_CTX* ctx() const { return ctx_; }
  SslStats& stats() const { return *stats_; }
  bool isClient() const { return client_; }
  // Client: the SNI to send (UpstreamTlsContext.sni), or empty.
  const std::string& serverNameIndication() const { return sni_; }

 protected:
  SSL_CTX* ctx_ = nullptr;
  std::unique_ptr<SslStats> stats_;
  bool client_ = false;
  std::string sni_;
};

// The bytes of a DataSource (filename, inline_string, inline_bytes,
// environment_variable); errors name path.<specifier>.
absl::StatusOr<std::string> readDataSource(const envoy::config::core::v3::DataSource& source, const std::string& path);

class ServerContext : public TlsContext {
 public:
  // path names the DownstreamTlsContext (".../transport_socket.typed_config");
  // stat_prefix is the listener's ("listener.127.0.0.1_443.").
  static absl::StatusOr<std::shared_ptr<const ServerContext>> create(
      const envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext& config, const std::string& path,
      stats::Store& store, const std::string& stat_prefix);
  bool requireClientCertificate() const { return require_client_cert_; }

 private:
  ServerContext() = default;
  bool require_client_cert_ = false;
  // ALPN protocols in wire format (length-prefixed), server preference order.
  std::string alpn_wire_;
  static int selectAlpn(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                        unsigned int inlen, void* arg);
};

// A cluster's side: SNI, the server's chain verified against trusted_ca, DNS
// SAN matchers (exact), an optional client certificate; stats under
// cluster.<name>.ssl.
class ClientContext : public TlsContext {
 public:
  static absl::StatusOr<std::shared_ptr<const ClientContext>> create(
      const envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext& config, const std::string& path,
      stats::Store& store, const std::string& stat_prefix);

 private:
  ClientContext() = default;
};

}  // namespace courier::tls
