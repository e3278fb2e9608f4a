#include "source/extensions/transport_sockets/tls/ssl_socket.h"

#include <errno.h>
#include <openssl/err.h>
#include <sys/uio.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "source/common/common/field_error.h"
#include "source/extensions/transport_sockets/tls/sds_socket_factory.h"

namespace courier::tls {
namespace {
// Plaintext is decrypted through this much stack per SSL_read: one TLS record.
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kRecordSize = 16 * 1024;
}  // namespace

SslSocket::SslSocket(std::shared_ptr<const TlsContext> context) : context_(std::move(context)) {
  ssl_ = SSL_new(context_->ctx());
  if (ssl_ != nullptr) {
    if (context_->isClient()) {
      SSL_set_connect_state(ssl_);
      if (!context_->serverNameIndication().empty()) {
        SSL_set_tlsext_host_name(ssl_, context_->serverNameIndication().c_str());
      }
      if (SSL_SESSION* session = context_->takeSession()) {
        SSL_set_session(ssl_, session);
        SSL_SESSION_free(session);
      }
    } else {
      SSL_set_accept_state(ssl_);
    }
    // A peer's FIN without close_notify ends the stream like a plaintext FIN
    // (HTTP framing tells truncation), rather than an error.
    SSL_set_options(ssl_, SSL_OP_IGNORE_UNEXPECTED_EOF);
  }
}

SslSocket::~SslSocket() {
  // OpenSSL forgets (and marks unresumable) the session of a connection
  // freed without a close_notify exchange. A finished handshake's session is
  // good however the connection ended (as BoringSSL and Envoy see it), so it
  // stays resumable.
  if (ssl_ != nullptr && state_ == State::Done) SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(ssl_);
}

void SslSocket::setFd(int fd) {
  if (ssl_ == nullptr || SSL_set_fd(ssl_, fd) != 1) {
    state_ = State::Failed;
    failure_ = "cannot create a TLS session";
    ERR_clear_error();
  }
}

void SslSocket::fail(int ssl_error) {
  state_ = State::Failed;
  if (ssl_error == SSL_ERROR_SYSCALL && errno == ECONNRESET) reset_ = true;
  unsigned long code = ERR_peek_error();
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    failure_ = buf;
  } else {
    failure_ = ssl_error == SSL_ERROR_SYSCALL ? "peer closed or reset the connection" : "TLS error";
  }
}

SslSocket::State SslSocket::handshake() {
  if (state_ != State::Handshaking) return state_;
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    state_ = State::Done;
    countHandshake();
    return state_;
  }
  const int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return state_;
  const unsigned long code = ERR_peek_error();
  fail(err);
  SslStats& stats = context_->stats();
  stats.connection_error.inc();
  // Certificate verification failures were counted by the validator.
  if (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    stats.fail_verify_no_cert.inc();
  }
  ERR_clear_error();
  return state_;
}

void SslSocket::countHandshake() {
  SslStats& stats = context_->stats();
  stats.handshake.inc();
  if (SSL_session_reused(ssl_)) stats.session_reused.inc();
  if (!context_->isClient() && SSL_get0_peer_certificate(ssl_) == nullptr) stats.no_certificate.inc();
  // The names below have static storage, so after the first handshake these
  // are lookups in a small table, no string built.
  stats.versions.get(SSL_get_version(ssl_)).inc();
  if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_)) stats.ciphers.get(SSL_CIPHER_get_name(cipher)).inc();
  if (const char* curve = curveName(ssl_)) stats.curves.get(curve).inc();
  if (const char* sigalg = sigalgName(ssl_)) stats.sigalgs.get(sigalg).inc();
}

network::TransportIoResult SslSocket::doRead(buffer::Buffer& buffer, size_t max_bytes) {
  network::TransportIoResult result;
  if (handshake() != State::Done) {
    result.close = state_ == State::Failed;
    result.reset = reset_;
    return result;
  }
  char chunk[kReadChunk];
  while (result.bytes < max_bytes) {
    size_t got = 0;
    const size_t want = std::min(sizeof(chunk), max_bytes - static_cast<size_t>(result.bytes));
    const int rc = SSL_read_ex(ssl_, chunk, want, &got);
    if (rc == 1) {
      buffer.add(chunk, got);
      result.bytes += got;
      continue;
    }
    const int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
    if (err == SSL_ERROR_ZERO_RETURN) {
      result.end_stream = true;
      break;
    }
    fail(err);
    ERR_clear_error();
    result.close = true;
    result.reset = reset_;
    break;
  }
  return result;
}

network::TransportIoResult SslSocket::doWrite(buffer::Buffer& buffer) {
  network::TransportIoResult result;
  if (handshake() != State::Done) {
    result.close = state_ == State::Failed;
    result.reset = reset_;
    return result;
  }
  // One SSL_write per TLS record's worth: a large slice goes as it is, small
  // slices (headers, then a body) are gathered so they share a record.
  char gather[kRecordSize];
  while (!buffer.empty()) {
    struct iovec iov[2];
    const int n = buffer.fillIovecs(iov, 2);
    const void* data = iov[0].iov_base;
    size_t len = iov[0].iov_len;
    if (n > 1 && len < kRecordSize) {
      len = std::min(buffer.length(), kRecordSize);
      buffer.copyOut(0, len, gather);
      data = gather;
    }
    size_t done = 0;
    const int rc = SSL_write_ex(ssl_, data, len, &done);
    if (rc == 1) {
      // Partial-write mode returns after each whole record: go on until the
      // socket says EAGAIN, or no writable edge would bring us back.
      buffer.drain(done);
      result.bytes += done;
      continue;
    }
    const int err = SSL_get_error(ssl_, rc);
    // The same bytes lead the buffer on the retry, as OpenSSL requires.
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) break;
    fail(err);
    ERR_clear_error();
    result.close = true;
    result.reset = reset_;
    return result;
  }
  return result;
}

void SslSocket::shutdownWrite() {
  if (state_ != State::Done) return;
  // close_notify, best effort: the TCP half-close follows regardless.
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string_view SslSocket::nextProtocol() const {
  if (state_ != State::Done) return {};
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return data == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(data), len);
}

std::string_view SslSocket::serverName() const {
  const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  return name == nullptr ? std::string_view() : std::string_view(name);
}

absl::StatusOr<network::TransportSocketFactoryConstSharedPtr> createUpstreamTransportSocketFactory(
    const std::string& name, const google::protobuf::Any* typed_config, const std::string& path, stats::Store& store,
    const std::string& stat_prefix, SecretManager* secrets, std::vector<std::shared_ptr<SecretProvider>>* warm_on,
    bool offer_http_alpn) {
  using envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext;
  static constexpr char kRawBuffer[] = "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";
  if (typed_config == nullptr) {
    if (name == "envoy.transport_sockets.raw_buffer") return network::TransportSocketFactoryConstSharedPtr();
    return fieldError(path + ".typed_config", "is required");
  }
  if (typed_config->type_url() == kRawBuffer) return network::TransportSocketFactoryConstSharedPtr();
  UpstreamTlsContext proto;
  if (!typed_config->Is<UpstreamTlsContext>() || !typed_config->UnpackTo(&proto)) {
    return fieldError(path + ".typed_config",
                      absl::StrCat("no upstream transport socket for type \"", typed_config->type_url(),
                                   "\" (available: envoy.transport_sockets.raw_buffer, envoy.transport_sockets.tls "
                                   "with UpstreamTlsContext)"));
  }
  if (offer_http_alpn && proto.common_tls_context().alpn_protocols_size() == 0) {
    proto.mutable_common_tls_context()->add_alpn_protocols("h2");
    proto.mutable_common_tls_context()->add_alpn_protocols("http/1.1");
  }
  if (usesSds(proto.common_tls_context())) {
    return createSdsClientFactory(proto, path + ".typed_config", secrets, store, stat_prefix, warm_on);
  }
  auto context = ClientContext::create(proto, path + ".typed_config", store, stat_prefix);
  if (!context.ok()) return context.status();
  return network::TransportSocketFactoryConstSharedPtr(std::make_shared<SslSocketFactory>(std::move(*context)));
}

}  // namespace courier::tls
