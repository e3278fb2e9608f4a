// OpenSSL SSL_CTXs built from Envoy's DownstreamTlsContext (a listener's) and
// UpstreamTlsContext (a cluster's), with their ssl.* stats. Built on the main
// thread, then shared read-only by every worker (SSL_new on a shared SSL_CTX
// is thread-safe).
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/config/core/v3/base.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "source/common/stats/store.h"

namespace courier::tls {

class CertValidator;
class OcspStaples;
class SessionTicketKeys;

// Counters under one prefix whose last name part is only known at handshake
// time (ssl.ciphers.<name>): created on first use, then found again without
// building a string or taking the store's lock. Names must have static
// storage (OpenSSL's cipher table, string literals): the store keeps the
// pointer.
class LazyCounters {
 public:
  LazyCounters(stats::Store& store, const std::string& prefix);
  stats::Counter& get(const char* static_name);

 private:
  static constexpr size_t kSlots = 48;
  struct Slot {
    std::atomic<const char*> name{nullptr};
    std::atomic<stats::Counter*> counter{nullptr};
  };
  stats::Store& store_;
  std::shared_ptr<const std::string> prefix_;
  Slot slots_[kSlots];
};

// listener.<addr>.ssl.* (or cluster.<name>.ssl.*) as Envoy names them.
struct SslStats {
  SslStats(stats::Store& store, const std::string& prefix);
  stats::Counter& handshake;
  stats::Counter& connection_error;
  stats::Counter& no_certificate;
  stats::Counter& fail_verify_no_cert;
  stats::Counter& fail_verify_error;
  stats::Counter& fail_verify_san;
  stats::Counter& fail_verify_cert_hash;
  stats::Counter& session_reused;
  stats::Counter& ocsp_staple_responses;
  stats::Counter& ocsp_staple_omitted;
  stats::Counter& ocsp_staple_failed;
  stats::Counter& ocsp_staple_requests;
  LazyCounters versions;
  LazyCounters ciphers;
  LazyCounters curves;
  LazyCounters sigalgs;
};

// Envoy's (BoringSSL's) names for what a finished handshake negotiated,
// with static storage; null when unknown.
const char* curveName(SSL* ssl);
const char* sigalgName(SSL* ssl);

// What a TLS socket needs of either side's context.
class TlsContext {
 public:
  virtual ~TlsContext();
  SSL_CTX* ctx() const { return ctx_; }
  SslStats& stats() const { return *stats_; }
  bool isClient() const { return client_; }
  // Client: the SNI to send (UpstreamTlsContext.sni), or empty.
  const std::string& serverNameIndication() const { return sni_; }
  // Client: a session to resume (most recent first), or null; the caller
  // owns the reference.
  virtual SSL_SESSION* takeSession() const { return nullptr; }

 protected:
  SSL_CTX* ctx_ = nullptr;
  std::unique_ptr<SslStats> stats_;
  std::unique_ptr<CertValidator> validator_;
  bool client_ = false;
  std::string sni_;
};

// The bytes of a DataSource (filename, inline_string, inline_bytes,
// environment_variable); errors name path.<specifier>.
absl::StatusOr<std::string> readDataSource(const envoy::config::core::v3::DataSource& source, const std::string& path);

// Whether a secret's contents would load: a tls_certificate's chain and key
// parse and match, a validation_context's trusted_ca parses. Errors name
// path.<field>. Lets SDS refuse a bad secret before any context uses it.
absl::Status checkTlsCertificate(const envoy::extensions::transport_sockets::tls::v3::TlsCertificate& cert,
                                 const std::string& path);
absl::Status checkValidationContext(
    const envoy::extensions::transport_sockets::tls::v3::CertificateValidationContext& context,
    const std::string& path);

class ServerContext : public TlsContext {
 public:
  ~ServerContext() override;
  // path names the DownstreamTlsContext (".../transport_socket.typed_config");
  // stat_prefix is the listener's ("listener.127.0.0.1_443.").
  static absl::StatusOr<std::shared_ptr<const ServerContext>> create(
      const envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext& config, const std::string& path,
      stats::Store& store, const std::string& stat_prefix);
  bool requireClientCertificate() const { return require_client_cert_; }

 private:
  ServerContext();
  // session_ticket_keys, disable_stateless/stateful_session_resumption,
  // session_timeout.
  absl::Status configureResumption(
      const envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext& config, const std::string& path);
  bool require_client_cert_ = false;
  std::unique_ptr<SessionTicketKeys> ticket_keys_;
  std::unique_ptr<OcspStaples> ocsp_;
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
  ~ClientContext() override;
  SSL_SESSION* takeSession() const override;
  static absl::StatusOr<std::shared_ptr<const ClientContext>> create(
      const envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext& config, const std::string& path,
      stats::Store& store, const std::string& stat_prefix);

 private:
  ClientContext() = default;
  static int newSession(SSL* ssl, SSL_SESSION* session);
  // Sessions from earlier connections to this cluster (max_session_keys,
  // Envoy's default 1), newest first. Touched once per new upstream
  // connection and per ticket received, not per request.
  mutable std::mutex sessions_mutex_;
  mutable std::deque<SSL_SESSION*> sessions_;
  size_t max_sessions_ = 1;
};

}  // namespace courier::tls
