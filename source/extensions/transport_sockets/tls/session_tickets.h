// A listener's session_ticket_keys: 80-byte keys as Envoy's (16-byte name,
// 32-byte HMAC secret, 32-byte AES-256 key); the first encrypts new tickets,
// any of them decrypts, so keys can be rotated without losing sessions.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/extensions/transport_sockets/tls/v3/common.pb.h"

namespace courier::tls {

class SessionTicketKeys {
 public:
  // path names the TlsSessionTicketKeys ("...session_ticket_keys").
  static absl::StatusOr<std::unique_ptr<SessionTicketKeys>> create(
      const envoy::extensions::transport_sockets::tls::v3::TlsSessionTicketKeys& config, const std::string& path);
  // Installs the ticket callback on ctx; this must outlive ctx's sessions.
  void install(SSL_CTX* ctx) const;

 private:
  struct Key {
    std::array<unsigned char, 16> name;
    std::array<unsigned char, 32> hmac;
    std::array<unsigned char, 32> aes;
  };
  static int ticketCallback(SSL* ssl, unsigned char key_name[16], unsigned char iv[16], EVP_CIPHER_CTX* cipher,
                            EVP_MAC_CTX* mac, int encrypt);
  static int exIndex();
  std::vector<Key> keys_;
};

}  // namespace courier::tls
