// OCSP stapling for a listener's certificates (tls_certificates[].ocsp_staple
// with ocsp_staple_policy): each response is parsed and checked at load time
// (successful, for this certificate, not expired), then stapled to the
// handshakes of clients that ask for it while it is still current.
#pragma once

#include <openssl/ssl.h>

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"

namespace courier::tls {

class TlsContext;

class OcspStaples {
 public:
  using Policy = envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext::OcspStaplePolicy;
  // cpath names the CommonTlsContext. Null when no certificate has a staple
  // and the policy does not require one.
  static absl::StatusOr<std::unique_ptr<OcspStaples>> create(
      const envoy::extensions::transport_sockets::tls::v3::CommonTlsContext& common, Policy policy,
      const std::string& cpath);
  ~OcspStaples();
  void install(SSL_CTX* ctx, const TlsContext* owner);

 private:
  struct Staple {
    X509* cert = nullptr;
    std::string der;          // empty: nothing to staple for this certificate
    time_t next_update = 0;   // 0: no nextUpdate
  };
  static int statusCallback(SSL* ssl, void* arg);
  int onStatusRequest(SSL* ssl) const;

  Policy policy_{};
  const TlsContext* owner_ = nullptr;
  std::vector<Staple> staples_;
};

}  // namespace courier::tls
