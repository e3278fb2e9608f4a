#include "source/extensions/transport_sockets/tls/context.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/common/common/field_error.h"
#include "source/extensions/transport_sockets/tls/cert_validator.h"
#include "source/extensions/transport_sockets/tls/ocsp.h"
#include "source/extensions/transport_sockets/tls/session_tickets.h"

namespace courier::tls {
namespace {

using envoy::extensions::transport_sockets::tls::v3::TlsParameters;

// The most recent OpenSSL error as text, and the queue cleared.
std::string opensslError() {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

int clientExIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

BioPtr memBio(const std::string& pem) { return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); }

int protocolVersion(TlsParameters::TlsProtocol p, int automatic) {
  switch (p) {
    case TlsParameters::TLSv1_0:
      return TLS1_VERSION;
    case TlsParameters::TLSv1_1:
      return TLS1_1_VERSION;
    case TlsParameters::TLSv1_2:
      return TLS1_2_VERSION;
    case TlsParameters::TLSv1_3:
      return TLS1_3_VERSION;
    default:
      return automatic;
  }
}

// Envoy (BoringSSL) lists equal-preference groups as "[A|B]"; OpenSSL has no
// such groups, so they become plain preference order.
std::string opensslCipherName(std::string name) {
  std::string out;
  for (char c : name) {
    if (c == '[' || c == ']') continue;
    out.push_back(c == '|' ? ':' : c);
  }
  return out;
}

// Envoy's defaults for servers (non-FIPS): TLS 1.2 ciphers, and curves.
constexpr char kDefaultServerCiphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-GCM-SHA256:AES128-SHA:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:"
    "AES256-GCM-SHA384:AES256-SHA";
constexpr char kDefaultCurves[] = "X25519:P-256";

// Envoy's client defaults: ECDHE with AEAD only.
constexpr char kDefaultClientCiphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";

absl::Status applyTlsParams(SSL_CTX* ctx, const TlsParameters& params, const std::string& path, bool client) {
  if (params.signature_algorithms_size() > 0) {
    return fieldError(path + ".signature_algorithms", "is not supported yet");
  }
  if (params.cipher_suites_size() == 0 &&
      SSL_CTX_set_cipher_list(ctx, client ? kDefaultClientCiphers : kDefaultServerCiphers) != 1) {
    return fieldError(path + ".cipher_suites", opensslError());
  }
  if (params.ecdh_curves_size() == 0 && SSL_CTX_set1_groups_list(ctx, kDefaultCurves) != 1) {
    return fieldError(path + ".ecdh_curves", opensslError());
  }
  // Envoy's defaults: TLS 1.2 to 1.3 for servers, TLS 1.2 only for clients.
  const int min = protocolVersion(params.tls_minimum_protocol_version(), TLS1_2_VERSION);
  const int max = protocolVersion(params.tls_maximum_protocol_version(), client ? TLS1_2_VERSION : TLS1_3_VERSION);
  if (min > max) {
    return fieldError(path + ".tls_minimum_protocol_version", "is above tls_maximum_protocol_version");
  }
  if (SSL_CTX_set_min_proto_version(ctx, min) != 1 || SSL_CTX_set_max_proto_version(ctx, max) != 1) {
    return fieldError(path, absl::StrCat("protocol versions not supported: ", opensslError()));
  }
  if (params.cipher_suites_size() > 0) {
    std::vector<std::string> names;
    for (int i = 0; i < params.cipher_suites_size(); ++i) {
      std::string name = opensslCipherName(params.cipher_suites(i));
      // Each must be known on its own: OpenSSL accepts a list if any entry is.
      SSL_CTX* probe = SSL_CTX_new(TLS_method());
      const bool ok = probe != nullptr && SSL_CTX_set_cipher_list(probe, name.c_str()) == 1;
      SSL_CTX_free(probe);
      if (!ok) {
        ERR_clear_error();
        return fieldError(absl::StrCat(path, ".cipher_suites[", i, "]"),
                          absl::StrCat("unknown cipher suite \"", params.cipher_suites(i), "\""));
      }
      names.push_back(std::move(name));
    }
    if (SSL_CTX_set_cipher_list(ctx, absl::StrJoin(names, ":").c_str()) != 1) {
      return fieldError(path + ".cipher_suites", opensslError());
    }
  }
  if (params.ecdh_curves_size() > 0) {
    for (int i = 0; i < params.ecdh_curves_size(); ++i) {
      SSL_CTX* probe = SSL_CTX_new(TLS_method());
      const bool ok = probe != nullptr && SSL_CTX_set1_groups_list(probe, params.ecdh_curves(i).c_str()) == 1;
      SSL_CTX_free(probe);
      if (!ok) {
        ERR_clear_error();
        return fieldError(absl::StrCat(path, ".ecdh_curves[", i, "]"),
                          absl::StrCat("unknown curve \"", params.ecdh_curves(i), "\""));
      }
    }
    const std::string list = absl::StrJoin(params.ecdh_curves(), ":");
    if (SSL_CTX_set1_groups_list(ctx, list.c_str()) != 1) return fieldError(path + ".ecdh_curves", opensslError());
  }
  return absl::OkStatus();
}

absl::Status loadCertificate(SSL_CTX* ctx, const envoy::extensions::transport_sockets::tls::v3::TlsCertificate& cert,
                             const std::string& path) {
  if (!cert.has_certificate_chain()) return fieldError(path + ".certificate_chain", "is required");
  if (!cert.has_private_key()) return fieldError(path + ".private_key", "is required");
  if (cert.has_pkcs12()) return fieldError(path + ".pkcs12", "is not supported yet");
  if (cert.has_password()) return fieldError(path + ".password", "encrypted private keys are not supported yet");
  if (cert.has_private_key_provider()) return fieldError(path + ".private_key_provider", "is not supported yet");
  auto chain_pem = readDataSource(cert.certificate_chain(), path + ".certificate_chain");
  if (!chain_pem.ok()) return chain_pem.status();
  auto key_pem = readDataSource(cert.private_key(), path + ".private_key");
  if (!key_pem.ok()) return key_pem.status();

  BioPtr bio = memBio(*chain_pem);
  X509* leaf = PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr) {
    ERR_clear_error();
    return fieldError(path + ".certificate_chain", "no PEM certificate found");
  }
  const int used = SSL_CTX_use_certificate(ctx, leaf);
  X509_free(leaf);
  if (used != 1) return fieldError(path + ".certificate_chain", opensslError());
  // The rest of the chain: intermediates, sent after the leaf.
  while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      return fieldError(path + ".certificate_chain", opensslError());
    }
  }
  ERR_clear_error();  // the end of the PEM stream reads as an error

  BioPtr key_bio = memBio(*key_pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) {
    ERR_clear_error();
    return fieldError(path + ".private_key", "no PEM private key found");
  }
  const int key_used = SSL_CTX_use_PrivateKey(ctx, key);
  EVP_PKEY_free(key);
  if (key_used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return fieldError(path + ".private_key", "does not match the certificate_chain");
  }
  return absl::OkStatus();
}

absl::Status loadTrustedCa(SSL_CTX* ctx, const envoy::config::core::v3::DataSource& source, const std::string& path,
                           bool client = false) {
  auto pem = readDataSource(source, path);
  if (!pem.ok()) return pem.status();
  BioPtr bio = memBio(*pem);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
  int count = 0;
  while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, ca);
    // Tells clients which CAs we accept (CertificateRequest).
    if (X509_NAME* name = X509_NAME_dup(X509_get_subject_name(ca))) sk_X509_NAME_push(names, name);
    X509_free(ca);
    ++count;
  }
  ERR_clear_error();
  if (count == 0) {
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    return fieldError(path, "no PEM certificate found");
  }
  if (client) {
    sk_X509_NAME_pop_free(names, X509_NAME_free);
  } else {
    SSL_CTX_set_client_CA_list(ctx, names);
  }
  return absl::OkStatus();
}

}  // namespace

LazyCounters::LazyCounters(stats::Store& store, const std::string& prefix)
    : store_(store), prefix_(std::make_shared<const std::string>(stats::sanitizeStatName(prefix) + ".")) {}

stats::Counter& LazyCounters::get(const char* static_name) {
  for (Slot& slot : slots_) {
    const char* name = slot.name.load(std::memory_order_acquire);
    if (name == nullptr) break;
    if (name == static_name) {
      if (stats::Counter* c = slot.counter.load(std::memory_order_acquire)) return *c;
      break;  // another thread is publishing it; the store has it
    }
  }
  stats::Counter& counter = store_.counter(prefix_, static_name);
  for (Slot& slot : slots_) {
    const char* expected = nullptr;
    if (slot.name.compare_exchange_strong(expected, static_name, std::memory_order_acq_rel)) {
      slot.counter.store(&counter, std::memory_order_release);
      break;
    }
    if (expected == static_name) break;
  }
  return counter;
}

SslStats::SslStats(stats::Store& store, const std::string& prefix)
    : handshake(store.counter(prefix + "ssl.handshake")),
      connection_error(store.counter(prefix + "ssl.connection_error")),
      no_certificate(store.counter(prefix + "ssl.no_certificate")),
      fail_verify_no_cert(store.counter(prefix + "ssl.fail_verify_no_cert")),
      fail_verify_error(store.counter(prefix + "ssl.fail_verify_error")),
      fail_verify_san(store.counter(prefix + "ssl.fail_verify_san")),
      fail_verify_cert_hash(store.counter(prefix + "ssl.fail_verify_cert_hash")),
      session_reused(store.counter(prefix + "ssl.session_reused")),
      ocsp_staple_responses(store.counter(prefix + "ssl.ocsp_staple_responses")),
      ocsp_staple_omitted(store.counter(prefix + "ssl.ocsp_staple_omitted")),
      ocsp_staple_failed(store.counter(prefix + "ssl.ocsp_staple_failed")),
      ocsp_staple_requests(store.counter(prefix + "ssl.ocsp_staple_requests")),
      versions(store, prefix + "ssl.versions"),
      ciphers(store, prefix + "ssl.ciphers"),
      curves(store, prefix + "ssl.curves"),
      sigalgs(store, prefix + "ssl.sigalgs") {}

const char* curveName(SSL* ssl) {
  switch (SSL_get_negotiated_group(ssl)) {
    case NID_X25519:
      return "X25519";
    case NID_X9_62_prime256v1:
      return "P-256";
    case NID_secp384r1:
      return "P-384";
    case NID_secp521r1:
      return "P-521";
    case NID_X448:
      return "X448";
    default:
      return nullptr;
  }
}

const char* sigalgName(SSL* ssl) {
  int type = NID_undef;
  int hash = NID_undef;
  if (SSL_get_peer_signature_type_nid(ssl, &type) != 1) return nullptr;
  SSL_get_peer_signature_nid(ssl, &hash);
  switch (type) {
    case EVP_PKEY_EC:
      return hash == NID_sha256 ? "ecdsa_secp256r1_sha256"
             : hash == NID_sha384 ? "ecdsa_secp384r1_sha384"
             : hash == NID_sha512 ? "ecdsa_secp521r1_sha512"
             : hash == NID_sha1   ? "ecdsa_sha1"
                                  : nullptr;
    case EVP_PKEY_RSA_PSS:
      return hash == NID_sha256 ? "rsa_pss_rsae_sha256"
             : hash == NID_sha384 ? "rsa_pss_rsae_sha384"
             : hash == NID_sha512 ? "rsa_pss_rsae_sha512"
                                  : nullptr;
    case EVP_PKEY_RSA:
      return hash == NID_sha256 ? "rsa_pkcs1_sha256"
             : hash == NID_sha384 ? "rsa_pkcs1_sha384"
             : hash == NID_sha512 ? "rsa_pkcs1_sha512"
             : hash == NID_sha1   ? "rsa_pkcs1_sha1"
                                  : nullptr;
    case EVP_PKEY_ED25519:
      return "ed25519";
    default:
      return nullptr;
  }
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

absl::StatusOr<std::string> readDataSource(const envoy::config::core::v3::DataSource& source,
                                           const std::string& path) {
  using envoy::config::core::v3::DataSource;
  switch (source.specifier_case()) {
    case DataSource::kFilename: {
      std::ifstream in(source.filename(), std::ios::binary);
      if (!in) {
        return fieldError(path + ".filename",
                          absl::StrCat("cannot read \"", source.filename(), "\": ", std::strerror(errno)));
      }
      std::ostringstream out;
      out << in.rdbuf();
      return out.str();
    }
    case DataSource::kInlineString:
      return source.inline_string();
    case DataSource::kInlineBytes:
      return source.inline_bytes();
    case DataSource::kEnvironmentVariable: {
      const char* value = std::getenv(source.environment_variable().c_str());
      if (value == nullptr) {
        return fieldError(path + ".environment_variable",
                          absl::StrCat("environment variable \"", source.environment_variable(), "\" is not set"));
      }
      return std::string(value);
    }
    default:
      return fieldError(path, "needs filename, inline_string, inline_bytes or environment_variable");
  }
}

absl::Status checkTlsCertificate(const envoy::extensions::transport_sockets::tls::v3::TlsCertificate& cert,
                                 const std::string& path) {
  SSL_CTX* scratch = SSL_CTX_new(TLS_server_method());
  if (scratch == nullptr) return absl::InternalError(absl::StrCat(path, ": ", opensslError()));
  absl::Status status = loadCertificate(scratch, cert, path);
  SSL_CTX_free(scratch);
  return status;
}

absl::Status checkValidationContext(
    const envoy::extensions::transport_sockets::tls::v3::CertificateValidationContext& context,
    const std::string& path) {
  if (!context.has_trusted_ca()) return absl::OkStatus();
  SSL_CTX* scratch = SSL_CTX_new(TLS_client_method());
  if (scratch == nullptr) return absl::InternalError(absl::StrCat(path, ": ", opensslError()));
  absl::Status status = loadTrustedCa(scratch, context.trusted_ca(), path + ".trusted_ca", true);
  SSL_CTX_free(scratch);
  return status;
}

absl::StatusOr<std::shared_ptr<const ServerContext>> ServerContext::create(
    const envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext& config, const std::string& path,
    stats::Store& store, const std::string& stat_prefix) {
  std::shared_ptr<ServerContext> context(new ServerContext());
  context->ctx_ = SSL_CTX_new(TLS_server_method());
  if (context->ctx_ == nullptr) return absl::InternalError(absl::StrCat(path, ": ", opensslError()));
  SSL_CTX* ctx = context->ctx_;
  // Partial writes let us write straight from buffer slices; the moving
  // buffer is because a slice may move between a retry and the next call.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  if (!config.prefer_client_ciphers()) SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  // What we do not implement yet is refused, not silently ignored.
  if (config.has_require_sni() && config.require_sni().value()) {
    return fieldError(path + ".require_sni", "is not supported yet");
  }
  if (auto status = context->configureResumption(config, path); !status.ok()) return status;

  const auto& common = config.common_tls_context();
  const std::string cpath = path + ".common_tls_context";
  if (common.tls_certificate_sds_secret_configs_size() > 0) {
    return fieldError(cpath + ".tls_certificate_sds_secret_configs", "SDS is not supported yet");
  }
  if (common.has_tls_certificate_provider_instance() || common.has_custom_tls_certificate_selector()) {
    return fieldError(cpath, "certificate providers and selectors are not supported yet");
  }
  if (common.has_custom_handshaker()) return fieldError(cpath + ".custom_handshaker", "is not supported");
  if (common.has_combined_validation_context()) {
    return fieldError(cpath + ".combined_validation_context", "is not supported yet");
  }
  if (common.tls_certificates_size() == 0) {
    return fieldError(cpath + ".tls_certificates", "a server needs at least one certificate");
  }
  for (int i = 0; i < common.tls_certificates_size(); ++i) {
    auto status = loadCertificate(ctx, common.tls_certificates(i), absl::StrCat(cpath, ".tls_certificates[", i, "]"));
    if (!status.ok()) return status;
  }
  if (auto status = applyTlsParams(ctx, common.tls_params(), cpath + ".tls_params", false); !status.ok()) return status;

  for (int i = 0; i < common.alpn_protocols_size(); ++i) {
    const std::string& p = common.alpn_protocols(i);
    if (p.empty() || p.size() > 255) {
      return fieldError(absl::StrCat(cpath, ".alpn_protocols[", i, "]"), "must be 1 to 255 bytes");
    }
    context->alpn_wire_.push_back(static_cast<char>(p.size()));
    context->alpn_wire_ += p;
  }
  if (!context->alpn_wire_.empty()) SSL_CTX_set_alpn_select_cb(ctx, &ServerContext::selectAlpn, context.get());

  if (common.has_validation_context_sds_secret_config()) {
    return fieldError(cpath + ".validation_context_sds_secret_config", "SDS is not supported yet");
  }
  bool verifies = false;
  if (common.has_validation_context()) {
    const auto& vc = common.validation_context();
    const std::string vpath = cpath + ".validation_context";
    if (vc.has_trusted_ca()) {
      if (auto status = loadTrustedCa(ctx, vc.trusted_ca(), vpath + ".trusted_ca"); !status.ok()) return status;
    }
    auto validator = CertValidator::create(ctx, vc, vpath, context.get());
    if (!validator.ok()) return validator.status();
    verifies = (*validator)->active();
    context->validator_ = std::move(*validator);
  }
  context->require_client_cert_ = config.has_require_client_certificate() && config.require_client_certificate().value();
  if (context->require_client_cert_ && !verifies) {
    return fieldError(path + ".require_client_certificate",
                      "needs common_tls_context.validation_context.trusted_ca to verify client certificates");
  }
  if (verifies) {
    // A client certificate is verified when sent; required only when asked.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (context->require_client_cert_ ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                       nullptr);
  }
  auto ocsp = OcspStaples::create(common, config.ocsp_staple_policy(), cpath);
  if (!ocsp.ok()) return ocsp.status();
  context->ocsp_ = std::move(*ocsp);
  if (context->ocsp_ != nullptr) context->ocsp_->install(ctx, context.get());
  // A session resumes only on a listener with the certificates and
  // validation it was made under (Envoy hashes the same things), whatever the
  // ticket keys, so servers sharing keys resume each other's sessions.
  unsigned char sid_ctx[SHA256_DIGEST_LENGTH];
  const std::string serialized =
      common.SerializeAsString() + (context->require_client_cert_ ? "require_client_certificate" : "");
  SHA256(reinterpret_cast<const unsigned char*>(serialized.data()), serialized.size(), sid_ctx);
  static_assert(SHA256_DIGEST_LENGTH <= SSL_MAX_SID_CTX_LENGTH);
  SSL_CTX_set_session_id_context(ctx, sid_ctx, SHA256_DIGEST_LENGTH);
  context->stats_ = std::make_unique<SslStats>(store, stat_prefix);
  return std::shared_ptr<const ServerContext>(std::move(context));
}

ServerContext::ServerContext() = default;
ServerContext::~ServerContext() = default;

absl::Status ServerContext::configureResumption(
    const envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext& config, const std::string& path) {
  SSL_CTX* ctx = ctx_;
  if (config.has_session_ticket_keys_sds_secret_config()) {
    return fieldError(path + ".session_ticket_keys_sds_secret_config", "SDS is not supported yet");
  }
  if (config.has_session_ticket_keys()) {
    auto keys = SessionTicketKeys::create(config.session_ticket_keys(), path + ".session_ticket_keys");
    if (!keys.ok()) return keys.status();
    ticket_keys_ = std::move(*keys);
    ticket_keys_->install(ctx);
  }
  if (config.disable_stateless_session_resumption()) SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  if (config.disable_stateful_session_resumption()) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    // TLS 1.3 otherwise issues stateful tickets when stateless ones are off.
    SSL_CTX_set_num_tickets(ctx, config.disable_stateless_session_resumption() ? 0 : 2);
  }
  if (config.has_session_timeout()) {
    const auto& t = config.session_timeout();
    if (t.seconds() < 0 || t.nanos() < 0) return fieldError(path + ".session_timeout", "must not be negative");
    if (t.seconds() > UINT32_MAX) return fieldError(path + ".session_timeout", "is too large");
    SSL_CTX_set_timeout(ctx, static_cast<long>(t.seconds()));
  }
  return absl::OkStatus();
}

int ServerContext::selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                              unsigned int inlen, void* arg) {
  const auto* self = static_cast<const ServerContext*>(arg);
  // Our preference order wins, as Envoy: the first of ours the client offers.
  unsigned char* selected = nullptr;
  const auto* ours = reinterpret_cast<const unsigned char*>(self->alpn_wire_.data());
  if (SSL_select_next_proto(&selected, outlen, ours, static_cast<unsigned int>(self->alpn_wire_.size()), in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no overlap: carry on without ALPN
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

absl::StatusOr<std::shared_ptr<const ClientContext>> ClientContext::create(
    const envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext& config, const std::string& path,
    stats::Store& store, const std::string& stat_prefix) {
  std::shared_ptr<ClientContext> context(new ClientContext());
  context->client_ = true;
  context->ctx_ = SSL_CTX_new(TLS_client_method());
  if (context->ctx_ == nullptr) return absl::InternalError(absl::StrCat(path, ": ", opensslError()));
  SSL_CTX* ctx = context->ctx_;
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  if (config.allow_renegotiation()) return fieldError(path + ".allow_renegotiation", "is not supported");
  context->sni_ = config.sni();

  const auto& common = config.common_tls_context();
  const std::string cpath = path + ".common_tls_context";
  if (common.tls_certificate_sds_secret_configs_size() > 0 || common.has_validation_context_sds_secret_config()) {
    return fieldError(cpath, "SDS is not supported yet");
  }
  if (common.has_combined_validation_context()) {
    return fieldError(cpath + ".combined_validation_context", "is not supported yet");
  }
  if (common.tls_certificates_size() > 1) {
    return fieldError(cpath + ".tls_certificates", "a client presents at most one certificate");
  }
  for (int i = 0; i < common.tls_certificates_size(); ++i) {
    const std::string tpath = absl::StrCat(cpath, ".tls_certificates[", i, "]");
    if (common.tls_certificates(i).has_ocsp_staple()) {
      return fieldError(tpath + ".ocsp_staple", "is only stapled by servers (DownstreamTlsContext)");
    }
    auto status = loadCertificate(ctx, common.tls_certificates(i), tpath);
    if (!status.ok()) return status;
  }
  if (auto status = applyTlsParams(ctx, common.tls_params(), cpath + ".tls_params", true); !status.ok()) return status;
  // Sessions are kept per cluster and offered again on new connections.
  context->max_sessions_ = config.has_max_session_keys() ? config.max_session_keys().value() : 1;
  if (context->max_sessions_ > 0) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, &ClientContext::newSession);
    SSL_CTX_set_ex_data(ctx, clientExIndex(), context.get());
  }
  std::string alpn;
  for (int i = 0; i < common.alpn_protocols_size(); ++i) {
    const std::string& p = common.alpn_protocols(i);
    if (p.empty() || p.size() > 255) {
      return fieldError(absl::StrCat(cpath, ".alpn_protocols[", i, "]"), "must be 1 to 255 bytes");
    }
    alpn.push_back(static_cast<char>(p.size()));
    alpn += p;
  }
  if (!alpn.empty() &&
      SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(alpn.data()),
                              static_cast<unsigned int>(alpn.size())) != 0) {
    return fieldError(cpath + ".alpn_protocols", opensslError());
  }
  if (common.has_validation_context()) {
    const auto& vc = common.validation_context();
    const std::string vpath = cpath + ".validation_context";
    if (!vc.has_trusted_ca() && vc.trust_chain_verification() != vc.ACCEPT_UNTRUSTED) {
      return fieldError(vpath + ".trusted_ca", "is required to verify the upstream");
    }
    if (vc.has_trusted_ca()) {
      if (auto status = loadTrustedCa(ctx, vc.trusted_ca(), vpath + ".trusted_ca", true); !status.ok()) return status;
    }
    auto validator = CertValidator::create(ctx, vc, vpath, context.get());
    if (!validator.ok()) return validator.status();
    context->validator_ = std::move(*validator);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  context->stats_ = std::make_unique<SslStats>(store, stat_prefix);
  return std::shared_ptr<const ClientContext>(std::move(context));
}

ClientContext::~ClientContext() {
  for (SSL_SESSION* session : sessions_) SSL_SESSION_free(session);
}

int ClientContext::newSession(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<ClientContext*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), clientExIndex()));
  if (self == nullptr || SSL_SESSION_is_resumable(session) != 1) return 0;
  std::lock_guard<std::mutex> lock(self->sessions_mutex_);
  self->sessions_.push_front(session);
  while (self->sessions_.size() > self->max_sessions_) {
    SSL_SESSION_free(self->sessions_.back());
    self->sessions_.pop_back();
  }
  return 1;  // we keep the reference
}

SSL_SESSION* ClientContext::takeSession() const {
  if (max_sessions_ == 0) return nullptr;
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  if (sessions_.empty()) return nullptr;
  SSL_SESSION* session = sessions_.front();
  // TLS 1.3 tickets are for one use (RFC 8446 C.4): hand it out and forget
  // it; TLS 1.2 sessions can be offered again.
  if (SSL_SESSION_get_protocol_version(session) >= TLS1_3_VERSION) {
    sessions_.pop_front();
    return session;
  }
  SSL_SESSION_up_ref(session);
  return session;
}

}  // namespace courier::tls
