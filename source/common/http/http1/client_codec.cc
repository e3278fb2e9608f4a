#include "source/common/http/http1/client_codec.h"

#include "source/common/http/http1/wire_format.h"

#include <cstdio>
#include <cstring>

namespace courier::http::http1 {

namespace {

constexpr int kClientErrorStatus = 503;

// Methods that carry no body by definition (Envoy's requestShouldHaveNoBody):
// a headers-only request of these gets no "content-length: 0".
bool bodilessMethod(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "DELETE" || m == "CONNECT" || m == "OPTIONS" ||
         m == "TRACE";
}

}  // namespace

const llhttp_settings_t& ClientConnection::parserSettings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = [](llhttp_t* p) { return self(p).onMessageBegin(); };
    s.on_status = [](llhttp_t* p, const char* at, size_t n) { return self(p).onStatus(at, n); };
    s.on_header_field = [](llhttp_t* p, const char* at, size_t n) {
      return self(p).onHeaderField(at, n);
    };
    s.on_header_value = [](llhttp_t* p, const char* at, size_t n) {
      return self(p).onHeaderValue(at, n);
    };
    s.on_header_value_complete = [](llhttp_t* p) { return self(p).onHeaderValueComplete(); };
    s.on_headers_complete = [](llhttp_t* p) { return self(p).onHeadersComplete(); };
    s.on_body = [](llhttp_t* p, const char* at, size_t n) { return self(p).onBody(at, n); };
    s.on_message_complete = [](llhttp_t* p) { return self(p).onMessageComplete(); };
    return s;
  }();
  return settings;
}

ClientConnection::ClientConnection(buffer::Buffer& output, const Http1ClientSettings& settings)
    : output_(output), settings_(settings) {
  llhttp_init(&parser_, HTTP_RESPONSE, &parserSettings());
  parser_.data = this;
  // As the server codec: let CL + TE through llhttp so that the codec
  // rejects them with Envoy's detail in onHeadersComplete.
  llhttp_set_lenient_chunked_length(&parser_, 1);
}

ClientConnection::~ClientConnection() = default;

int ClientConnection::fail(std::string_view details, std::string message, CodecError::Kind kind) {
  if (!error_) {
    CodecError e;
    e.kind = kind;
    e.http_status = kClientErrorStatus;
    e.details = std::string(details);
    e.message = std::move(message);
    error_ = std::move(e);
  }
  return -1;
}

RequestEncoder& ClientConnection::newStream(ResponseDecoder& decoder) {
  decoder_ = &decoder;
  outstanding_ = true;
  is_head_request_ = false;
  request_close_ = false;
  upgrade_request_ = false;
  encoder_.reset();
  return encoder_;
}

bool ClientConnection::addHeaderBytes(size_t n) {
  header_bytes_ += n;
  if (header_bytes_ > static_cast<size_t>(settings_.max_response_headers_kb) * 1024) {
    fail(details::kHeadersTooLarge, "headers size exceeds limit");
    return false;
  }
  return true;
}

void ClientConnection::resetResponseState() {
  headers_ = std::make_unique<ResponseHeaderMap>();
  in_trailers_ = false;
  headers_deferred_ = false;
  headers_sent_ = false;
  informational_ = false;
  close_delimited_ = false;
  field_.clear();
  value_.clear();
  header_bytes_ = 0;
  body_.drain(body_.length());
}

int ClientConnection::onMessageBegin() {
  if (!outstanding_ || decoder_ == nullptr) {
    return fail(client_details::kUnexpectedResponse, "response with no request outstanding");
  }
  resetResponseState();
  return 0;
}

int ClientConnection::onStatus(const char*, size_t len) {
  return addHeaderBytes(len) ? 0 : -1;
}

int ClientConnection::onHeaderField(const char* at, size_t len) {
  if (!addHeaderBytes(len)) return -1;
  field_.append(at, len);
  return 0;
}

int ClientConnection::onHeaderValue(const char* at, size_t len) {
  if (!addHeaderBytes(len)) return -1;
  value_.append(at, len);
  return 0;
}

int ClientConnection::onHeaderValueComplete() {
  if (in_trailers_ && headers_ == nullptr) headers_ = std::make_unique<TrailerMap>();
  if (headers_->size() + 1 > settings_.max_headers_count) {
    return fail(details::kTooManyHeaders, "too many headers");
  }
  if (!validHeaderName(field_) || !validHeaderValue(value_)) {
    return fail(details::kInvalidCharacters, "invalid header characters");
  }
  headers_->add(field_, trimOws(value_));
  field_.clear();
  value_.clear();
  return 0;
}

int ClientConnection::onHeadersComplete() {
  HeaderMap& h = *headers_;
  if (parser_.http_major != 1 || parser_.http_minor > 1) {
    return fail(details::kCodecError, "unsupported HTTP version");
  }
  protocol_ = parser_.http_minor == 0 ? Protocol::Http10 : Protocol::Http11;
  const int status = parser_.status_code;
  if (status < 100 || status > 999) return fail(details::kCodecError, "invalid status code");
  if (status == 101) {
    if (!upgrade_request_) {
      return fail(details::kCodecError, "upgrade response to a request that did not ask for one");
    }
    h.setStatus(status);
    tunnel_ = true;
    close_after_response_ = true;
    headers_sent_ = true;
    in_trailers_ = true;
    decoder_->decodeHeaders(std::move(headers_), false);
    return 1;  // no body: llhttp pauses for the upgrade after this message
  }

  const bool chunked = (parser_.flags & F_CHUNKED) != 0;
  if (h.has("transfer-encoding")) {
    if (!equalsIgnoreCase(trimOws(h.getJoined("transfer-encoding")), "chunked")) {
      return fail(details::kInvalidTransferEncoding, "unsupported transfer encoding");
    }
    if (h.has("content-length")) {
      return fail(details::kChunkedContentLength,
                  "both 'Content-Length' and 'Transfer-Encoding' are set");
    }
  }

  h.setStatus(status);
  in_trailers_ = true;  // any further header lines are trailers
  header_bytes_ = 0;

  if (status < 200) {
    // 1xx: a message of its own with no body; the final response follows.
    informational_ = true;
    HeaderMapPtr informational = std::move(headers_);
    decoder_->decode1xxHeaders(std::move(informational));
    return 1;  // no body
  }

  // Connection reuse, as Envoy's HTTP/1 pool: "connection: close", or
  // HTTP/1.0 without "connection: keep-alive", or "proxy-connection: close".
  if (request_close_ || headersHaveToken(h, "connection", "close") ||
      headersHaveToken(h, "proxy-connection", "close") ||
      (protocol_ == Protocol::Http10 && !headersHaveToken(h, "connection", "keep-alive"))) {
    close_after_response_ = true;
  }

  const bool bodiless = is_head_request_ || status == 204 || status == 304;
  if (bodiless) {
    headers_deferred_ = true;
    return 1;  // skip any body the framing headers announce
  }
  bool has_body;
  if (chunked) {
    has_body = true;
  } else if (parser_.flags & F_CONTENT_LENGTH) {
    has_body = parser_.content_length > 0;
  } else {
    // No length and not chunked: the body runs until the connection closes.
    has_body = true;
    close_delimited_ = true;
    close_after_response_ = true;
  }
  if (has_body) {
    headers_sent_ = true;
    decoder_->decodeHeaders(std::move(headers_), false);
  } else {
    headers_deferred_ = true;
  }
  return 0;
}

int ClientConnection::onBody(const char* at, size_t len) {
  body_.add(at, len);
  return 0;
}

void ClientConnection::flushBody() {
  if (!outstanding_ || !headers_sent_ || body_.empty() || error_) return;
  decoder_->decodeData(body_, false);
  body_.drain(body_.length());
}

int ClientConnection::onMessageComplete() {
  if (tunnel_) return 0;
  if (informational_) {
    // Keep waiting for the final response.
    headers_.reset();
    informational_ = false;
    in_trailers_ = false;
    return 0;
  }
  ResponseDecoder* decoder = decoder_;
  HeaderMapPtr headers = std::move(headers_);
  const bool deferred = headers_deferred_;
  // The stream is over before the last callback, so that the callee may
  // start the next request from inside it.
  outstanding_ = false;
  decoder_ = nullptr;
  headers_deferred_ = false;
  headers_sent_ = false;
  close_delimited_ = false;
  if (deferred) {
    decoder->decodeHeaders(std::move(headers), true);
  } else if (headers != nullptr && !headers->empty()) {
    if (!body_.empty()) decoder->decodeData(body_, false);
    body_.drain(body_.length());
    decoder->decodeTrailers(std::move(headers));
  } else {
    buffer::Buffer last;
    last.move(body_);
    decoder->decodeData(last, true);
  }
  return HPE_PAUSED;
}

DispatchResult ClientConnection::dispatch(buffer::Buffer& input) {
  if (error_) return error_;
  if (tunnel_) {
    if (!input.empty() && decoder_ != nullptr) decoder_->decodeData(input, false);
    input.drain(input.length());
    return std::nullopt;
  }
  while (!input.empty()) {
    if (!outstanding_) {
      fail(client_details::kUnexpectedResponse, "bytes with no request outstanding");
      return error_;
    }
    struct iovec iov[16];
    const int n = input.fillIovecs(iov, 16);
    size_t consumed = 0;
    bool paused = false;
    for (int i = 0; i < n && !paused; ++i) {
      const char* data = static_cast<const char*>(iov[i].iov_base);
      const size_t len = iov[i].iov_len;
      const llhttp_errno_t err = llhttp_execute(&parser_, data, len);
      if (err == HPE_OK) {
        consumed += len;
        continue;
      }
      const char* pos = llhttp_get_error_pos(&parser_);
      if (err == HPE_PAUSED) {
        consumed += pos - data;
        llhttp_resume(&parser_);
        paused = true;
        break;
      }
      if (err == HPE_PAUSED_UPGRADE && tunnel_) {
        consumed += pos - data;
        input.drain(consumed);
        if (!input.empty() && decoder_ != nullptr) decoder_->decodeData(input, false);
        input.drain(input.length());
        return std::nullopt;
      }
      if (!error_ && err == HPE_INVALID_TRANSFER_ENCODING) {
        fail(details::kInvalidTransferEncoding, llhttp_get_error_reason(&parser_));
      } else if (!error_) {
        fail(details::kCodecError, llhttp_get_error_reason(&parser_));
      }
      input.drain(consumed + (pos != nullptr && pos >= data ? pos - data : 0));
      return error_;
    }
    flushBody();
    input.drain(consumed);
  }
  return std::nullopt;
}

DispatchResult ClientConnection::onConnectionClosed() {
  if (error_) return error_;
  const bool was_outstanding = outstanding_;
  closed_ = true;
  if (!was_outstanding) return std::nullopt;
  if (tunnel_) {
    // The upstream closing ends the tunnel's response.
    ResponseDecoder* decoder = decoder_;
    outstanding_ = false;
    decoder_ = nullptr;
    buffer::Buffer empty;
    if (decoder != nullptr) decoder->decodeData(empty, true);
    return std::nullopt;
  }
  if (close_delimited_ && headers_sent_) {
    onMessageComplete();
    return std::nullopt;
  }
  outstanding_ = false;
  decoder_ = nullptr;
  fail(client_details::kPrematureClose,
       headers_sent_ ? "connection closed before the response body was complete"
                     : "connection closed before the response was complete",
       CodecError::Kind::PrematureResponse);
  return error_;
}

void ClientConnection::Encoder::reset() {
  started_ = false;
  chunked_ = false;
  complete_ = false;
}

void ClientConnection::Encoder::encodeHeaders(const HeaderMap& headers, bool end_stream) {
  buffer::Buffer& out = conn_.output_;
  started_ = true;
  const std::string_view method = headers.method();
  const std::string_view path = headers.path();
  conn_.is_head_request_ = method == "HEAD";
  out.add(method);
  out.add(" ");
  out.add(path.empty() ? std::string_view("/") : path);
  out.add(" HTTP/1.1\r\n");
  const std::string_view authority = headers.host();
  if (!authority.empty()) {
    out.add("host: ");
    out.add(authority);
    out.add("\r\n");
  }
  appendHeaders(out, headers, /*skip_framing=*/true, /*skip_host=*/!authority.empty());
  conn_.request_close_ = headersHaveToken(headers, "connection", "close");
  conn_.upgrade_request_ = headersHaveToken(headers, "connection", "upgrade") && headers.has("upgrade");

  // Framing, as Envoy's StreamEncoderImpl::encodeHeadersBase for requests.
  if (conn_.upgrade_request_) {
    // Whatever the client sends after an upgrade request is tunnel bytes.
    chunked_ = false;
  } else if (headers.has("content-length")) {
    chunked_ = false;
  } else if (end_stream) {
    if (!bodilessMethod(method)) out.add("content-length: 0\r\n");
    chunked_ = false;
  } else {
    out.add("transfer-encoding: chunked\r\n");
    chunked_ = true;
  }
  out.add("\r\n");
  if (end_stream) complete_ = true;
}

void ClientConnection::Encoder::encodeData(buffer::Buffer& data, bool end_stream) {
  buffer::Buffer& out = conn_.output_;
  if (data.length() > 0) {
    if (chunked_) {
      appendHex(out, data.length());
      out.add("\r\n");
      out.move(data);
      out.add("\r\n");
    } else {
      out.move(data);
    }
  }
  if (end_stream) {
    if (chunked_) out.add("0\r\n\r\n");
    complete_ = true;
  }
}

void ClientConnection::Encoder::encodeTrailers(const HeaderMap& trailers) {
  buffer::Buffer& out = conn_.output_;
  if (chunked_) {
    out.add("0\r\n");
    appendHeaders(out, trailers, false, false);
    out.add("\r\n");
  }
  complete_ = true;
}

}  // namespace courier::http::http1
