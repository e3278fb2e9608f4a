#include "source/extensions/transport_sockets/tls/ssl_socket.h"

#include <errno.h>
#include <openssl/err.h>
#include <sys/uio.h>

#include <algorithm>

namespace courier::tls {
namespace {
// Plaintext is decrypted through this much stack per SSL_read: one TLS record.
constexpr size_t kReadChunk = 16 * 1024;
constexpr int kMaxIovecs = 16;
}  // namespace

SslSocket::SslSocket(std::shared_ptr<const ServerContext> context) : context_(std::move(context)) {
  ssl_ = SSL_new(context_->ctx());
  if (ssl_ != nullptr) {
    SSL_set_accept_state(ssl_);
    // A peer's FIN without close_notify ends the stream like a plaintext FIN
    // (HTTP framing tells truncation), rather than an error.
    SSL_set_options(ssl_, SSL_OP_IGNORE_UNEXPECTED_EOF);
  }
}

SslSocket::~SslSocket() { SSL_free(ssl_); }

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
    context_->stats().handshake.inc();
    if (SSL_get0_peer_certificate(ssl_) == nullptr) context_->stats().no_certificate.inc();
    return state_;
  }
  const int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return state_;
  const unsigned long code = ERR_peek_error();
  fail(err);
  SslStats& stats = context_->stats();
  stats.connection_error.inc();
  if (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    stats.fail_verify_no_cert.inc();
  } else if (SSL_get_verify_result(ssl_) != X509_V_OK) {
    stats.fail_verify_error.inc();
  }
  ERR_clear_error();
  return state_;
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
  while (!buffer.empty()) {
    struct iovec iov[kMaxIovecs];
    const int n = buffer.fillIovecs(iov, kMaxIovecs);
    size_t written = 0;
    bool blocked = false;
    for (int i = 0; i < n; ++i) {
      size_t done = 0;
      const int rc = SSL_write_ex(ssl_, iov[i].iov_base, iov[i].iov_len, &done);
      if (rc == 1) {
        written += done;
        if (done < iov[i].iov_len) {
          blocked = true;
          break;
        }
        continue;
      }
      const int err = SSL_get_error(ssl_, rc);
      if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
        blocked = true;
        break;
      }
      buffer.drain(written);
      result.bytes += written;
      fail(err);
      ERR_clear_error();
      result.close = true;
      result.reset = reset_;
      return result;
    }
    buffer.drain(written);
    result.bytes += written;
    if (blocked) break;
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

}  // namespace courier::tls
