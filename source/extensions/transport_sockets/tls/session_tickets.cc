#include "source/extensions/transport_sockets/tls/session_tickets.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "source/common/common/field_error.h"
#include "source/extensions/transport_sockets/tls/context.h"

namespace courier::tls {

absl::StatusOr<std::unique_ptr<SessionTicketKeys>> SessionTicketKeys::create(
    const envoy::extensions::transport_sockets::tls::v3::TlsSessionTicketKeys& config, const std::string& path) {
  std::unique_ptr<SessionTicketKeys> out(new SessionTicketKeys());
  if (config.keys_size() == 0) return fieldError(path + ".keys", "needs at least one key");
  for (int i = 0; i < config.keys_size(); ++i) {
    const std::string kpath = absl::StrCat(path, ".keys[", i, "]");
    auto bytes = readDataSource(config.keys(i), kpath);
    if (!bytes.ok()) return bytes.status();
    if (bytes->size() != 80) {
      return fieldError(kpath, absl::StrCat("a session ticket key must be 80 bytes, this one is ", bytes->size()));
    }
    Key key;
    std::memcpy(key.name.data(), bytes->data(), 16);
    std::memcpy(key.hmac.data(), bytes->data() + 16, 32);
    std::memcpy(key.aes.data(), bytes->data() + 48, 32);
    out->keys_.push_back(key);
  }
  return out;
}

int SessionTicketKeys::exIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

void SessionTicketKeys::install(SSL_CTX* ctx) const {
  SSL_CTX_set_ex_data(ctx, exIndex(), const_cast<SessionTicketKeys*>(this));
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &SessionTicketKeys::ticketCallback);
}

int SessionTicketKeys::ticketCallback(SSL* ssl, unsigned char key_name[16], unsigned char iv[16],
                                      EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int encrypt) {
  const auto* self = static_cast<const SessionTicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), exIndex()));
  if (self == nullptr || self->keys_.empty()) return -1;
  const Key* key = nullptr;
  if (encrypt) {
    key = &self->keys_.front();
    std::memcpy(key_name, key->name.data(), 16);
    if (RAND_bytes(iv, 16) != 1) return -1;
  } else {
    for (const Key& k : self->keys_) {
      if (std::memcmp(k.name.data(), key_name, 16) == 0) {
        key = &k;
        break;
      }
    }
    if (key == nullptr) return 0;  // not ours (or rotated out): a full handshake
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key->hmac.data()), 32),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  const int ok = encrypt ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv)
                         : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv);
  if (ok != 1) return -1;
  // A ticket under an older key is accepted and replaced by one under the
  // current key.
  return !encrypt && key != &self->keys_.front() ? 2 : 1;
}

}  // namespace courier::tls
