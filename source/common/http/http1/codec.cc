#include "source/common/http/http1/codec.h"

#include "source/common/http/http1/wire_format.h"

#include <cstdio>
#include <cstring>

namespace courier::http::http1 {

namespace {

// Removes the listed tokens from every "connection" header; drops emptied ones.
void removeConnectionTokens(HeaderMap& h, std::initializer_list<std::string_view> tokens) {
  std::string kept;
  for (const auto& e : h) {
    if (e.key() != "connection") continue;
    std::string_view v = e.value();
    while (true) {
      size_t comma = v.find(',');
      std::string_view item = trimOws(v.substr(0, comma));
      bool drop = item.empty();
      for (auto t : tokens) drop = drop || equalsIgnoreCase(item, t);
      if (!drop) {
        if (!kept.empty()) kept.append(",");
        kept.append(item);
      }
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  h.remove("connection");
  if (!kept.empty()) h.add("connection", kept);
}

void appendDecimal(buffer::Buffer& out, uint64_t v) {
  char buf[24];
  int n = std::snprintf(buf, sizeof(buf), "%llu", static_cast<unsigned long long>(v));
  out.add(buf, n);
}

}  // namespace

std::string_view reasonPhrase(int code) {
  switch (code) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

const llhttp_settings_t& ServerConnection::parserSettings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = [](llhttp_t* p) { return self(p).onMessageBegin(); };
    s.on_url = [](llhttp_t* p, const char* at, size_t n) { return self(p).onUrl(at, n); };
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

ServerConnection::ServerConnection(ServerConnectionCallbacks& callbacks, buffer::Buffer& output,
                                   const Http1Settings& settings)
    : callbacks_(callbacks), output_(output), settings_(settings) {
  llhttp_init(&parser_, HTTP_REQUEST, &parserSettings());
  parser_.data = this;
  // The only lenient flag: let CL + TE through llhttp so that the codec
  // answers them with Envoy's detail (and honours allow_chunked_length).
  // Transfer-Encoding other than exactly "chunked" is rejected in
  // onHeadersComplete before llhttp would read such a body.
  llhttp_set_lenient_chunked_length(&parser_, 1);
}

ServerConnection::~ServerConnection() = default;

int ServerConnection::fail(int status, std::string_view details, std::string message,
                           CodecError::Kind kind) {
  if (!error_) {
    CodecError e;
    e.kind = kind;
    e.http_status = status;
    e.details = std::string(details);
    e.message = std::move(message);
    error_ = std::move(e);
  }
  return -1;
}

bool ServerConnection::addHeaderBytes(size_t n) {
  header_bytes_ += n;
  if (header_bytes_ > static_cast<size_t>(settings_.max_request_headers_kb) * 1024) {
    fail(431, details::kHeadersTooLarge, "headers size exceeds limit");
    return false;
  }
  return true;
}

int ServerConnection::onMessageBegin() {
  headers_ = std::make_unique<RequestHeaderMap>();
  decoder_ = nullptr;
  in_trailers_ = false;
  headers_deferred_ = false;
  url_.clear();
  field_.clear();
  value_.clear();
  header_bytes_ = 0;
  body_.drain(body_.length());
  is_head_ = false;
  upgrade_request_ = false;
  expect_100_continue_ = false;
  close_after_response_ = false;
  request_complete_ = false;
  response_complete_ = false;
  encoder_.reset();
  return 0;
}

int ServerConnection::onUrl(const char* at, size_t len) {
  if (!addHeaderBytes(len)) return -1;
  url_.append(at, len);
  return 0;
}

int ServerConnection::onHeaderField(const char* at, size_t len) {
  if (!addHeaderBytes(len)) return -1;
  field_.append(at, len);
  return 0;
}

int ServerConnection::onHeaderValue(const char* at, size_t len) {
  if (!addHeaderBytes(len)) return -1;
  value_.append(at, len);
  return 0;
}

int ServerConnection::onHeaderValueComplete() {
  if (in_trailers_ && headers_ == nullptr) headers_ = std::make_unique<TrailerMap>();
  if (headers_->size() + 1 > settings_.max_headers_count) {
    return fail(431, details::kTooManyHeaders, "too many headers");
  }
  // Belt and braces over llhttp: tokens only in names; no CR/LF/NUL in
  // values (obs-fold reaches us as "a\r\n b").
  if (!validHeaderName(field_) || !validHeaderValue(value_)) {
    return fail(400, details::kInvalidCharacters, "invalid header characters");
  }
  headers_->add(field_, trimOws(value_));
  field_.clear();
  value_.clear();
  return 0;
}

int ServerConnection::onHeadersComplete() {
  RequestHeaderMap& h = static_cast<RequestHeaderMap&>(*headers_);
  if (parser_.http_major != 1 || parser_.http_minor > 1) {
    return fail(400, details::kCodecError, "unsupported HTTP version");
  }
  protocol_ = parser_.http_minor == 0 ? Protocol::Http10 : Protocol::Http11;
  if (protocol_ == Protocol::Http10 && !settings_.accept_http_10) {
    return fail(426, "low_version", "HTTP/1.0 not allowed");
  }

  // Framing: only exactly "chunked" is accepted (Envoy: 501 otherwise).
  if (h.has("transfer-encoding")) {
    std::string te = h.getJoined("transfer-encoding");
    if (!equalsIgnoreCase(trimOws(te), "chunked")) {
      return fail(501, details::kInvalidTransferEncoding, "unsupported transfer encoding");
    }
    if (h.has("content-length")) {
      if (!settings_.allow_chunked_length) {
        return fail(400, details::kChunkedContentLength,
                    "both 'Content-Length' and 'Transfer-Encoding' are set");
      }
      h.remove("content-length");
    }
  }

  // Upgrades: h2c is dropped (served as plain HTTP/1.1, as Envoy); others refused.
  const bool is_connect = parser_.method == HTTP_CONNECT;
  if (parser_.upgrade && !is_connect && equalsIgnoreCase(trimOws(h.getValue("upgrade")), "h2c")) {
    h.remove("upgrade");
    h.remove("http2-settings");
    removeConnectionTokens(h, {"upgrade", "http2-settings"});
    parser_.upgrade = 0;
  }
  if (parser_.upgrade && !is_connect && upgradeAllowed(h.getValue("upgrade"))) {
    // Connection and Upgrade stay: the upstream must see the request as sent.
    upgrade_request_ = true;
  } else if (parser_.upgrade || is_connect) {
    return fail(403, details::kUpgradeFailed, "upgrade/CONNECT not supported",
                CodecError::Kind::UpgradeRefused);
  }

  h.add(headers::kMethod, llhttp_method_name(static_cast<llhttp_method_t>(parser_.method)));
  // Request target.
  std::string_view url = url_;
  if (!url.empty() && url[0] == '/') {
    h.add(headers::kPath, url);
  } else if (url == "*" && parser_.method == HTTP_OPTIONS) {
    h.add(headers::kPath, url);
  } else {
    std::string_view rest;
    if (url.size() > 7 && equalsIgnoreCase(url.substr(0, 7), "http://")) {
      h.add(headers::kScheme, "http");
      rest = url.substr(7);
    } else if (url.size() > 8 && equalsIgnoreCase(url.substr(0, 8), "https://")) {
      h.add(headers::kScheme, "https");
      rest = url.substr(8);
    } else {
      return fail(400, details::kInvalidUrl, "invalid request target");
    }
    size_t slash = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, slash);
    if (authority.empty()) return fail(400, details::kInvalidUrl, "invalid request target");
    std::string path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (path[0] == '?') path.insert(path.begin(), '/');
    h.set("host", authority);  // absolute-form wins over Host (RFC 9112 3.2.2)
    h.add(headers::kPath, path);
  }

  // Host becomes :authority, as Envoy does for HTTP/1.
  if (const HeaderEntry* host = h.get("host")) {
    std::string authority(host->value());
    if (h.getAll("host").size() > 1) return fail(400, details::kCodecError, "multiple Host headers");
    h.remove("host");
    h.add(headers::kAuthority, authority);
  }

  is_head_ = parser_.method == HTTP_HEAD;
  expect_100_continue_ = protocol_ == Protocol::Http11 &&
                         equalsIgnoreCase(trimOws(h.getValue("expect")), "100-continue");
  if (protocol_ == Protocol::Http10) {
    close_after_response_ = !headersHaveToken(h, "connection", "keep-alive");
  } else {
    close_after_response_ = headersHaveToken(h, "connection", "close");
  }

  // Hop-by-hop headers are this connection's business, not the upstream's
  // (a client's "connection: close" must not end upstream keep-alive), as
  // Envoy strips them; an allowed upgrade keeps what the upstream needs.
  if (!upgrade_request_) {
    h.remove("connection");
    h.remove("keep-alive");
    h.remove("proxy-connection");
    h.remove("upgrade");
  }

  const bool has_body =
      (parser_.flags & F_CHUNKED) || ((parser_.flags & F_CONTENT_LENGTH) && parser_.content_length > 0);
  decoder_ = &callbacks_.newStream(encoder_);
  if (has_body || upgrade_request_) {
    decoder_->decodeHeaders(std::move(headers_), false);
  } else {
    headers_deferred_ = true;
  }
  in_trailers_ = true;  // any further header lines are trailers
  header_bytes_ = 0;
  return 0;
}

int ServerConnection::onBody(const char* at, size_t len) {
  body_.add(at, len);
  return 0;
}

void ServerConnection::flushBody() {
  if (decoder_ == nullptr || request_complete_ || headers_deferred_ || body_.empty()) return;
  decoder_->decodeData(body_, false);
  body_.drain(body_.length());
}

int ServerConnection::onMessageComplete() {
  if (upgrade_request_) {
    // The request does not end here: what follows is the tunnel's.
    flushBody();
    tunnel_input_ = true;
    return 0;
  }
  if (headers_deferred_) {
    headers_deferred_ = false;
    decoder_->decodeHeaders(std::move(headers_), true);
  } else if (headers_ != nullptr && !headers_->empty()) {
    // Trailers.
    flushBody();
    decoder_->decodeTrailers(std::move(headers_));
  } else {
    decoder_->decodeData(body_, true);
    body_.drain(body_.length());
  }
  request_complete_ = true;
  if (!response_complete_ || close_after_response_) {
    paused_ = true;
    return HPE_PAUSED;
  }
  return 0;
}

void ServerConnection::onResponseComplete() {
  response_complete_ = true;
  if (paused_ && request_complete_ && !close_after_response_) {
    paused_ = false;
    llhttp_resume(&parser_);
  }
}

bool ServerConnection::upgradeAllowed(std::string_view value) const {
  const std::string_view type = trimOws(value);
  for (const auto& allowed : settings_.upgrade_types) {
    if (equalsIgnoreCase(type, allowed)) return true;
  }
  return false;
}

void ServerConnection::endOfInput() {
  if (!tunnel_input_ || decoder_ == nullptr) return;
  tunnel_input_ = false;
  request_complete_ = true;
  buffer::Buffer empty;
  decoder_->decodeData(empty, true);
}

DispatchResult ServerConnection::dispatch(buffer::Buffer& input) {
  if (error_) return error_;
  if (tunnel_input_) {
    if (!input.empty() && decoder_ != nullptr) decoder_->decodeData(input, false);
    input.drain(input.length());
    return std::nullopt;
  }
  while (!paused_ && !input.empty()) {
    struct iovec iov[16];
    const int n = input.fillIovecs(iov, 16);
    size_t consumed = 0;
    bool stop = false;
    for (int i = 0; i < n && !stop; ++i) {
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
        stop = true;
        break;
      }
      if (err == HPE_PAUSED_UPGRADE && tunnel_input_) {
        // The rest of the input (and all later input) is tunnel bytes.
        consumed += pos - data;
        flushBody();
        input.drain(consumed);
        if (!input.empty() && decoder_ != nullptr) decoder_->decodeData(input, false);
        input.drain(input.length());
        return std::nullopt;
      }
      if (!error_ && err == HPE_INVALID_TRANSFER_ENCODING) {
        fail(501, details::kInvalidTransferEncoding, llhttp_get_error_reason(&parser_));
      } else if (!error_) {
        fail(400, details::kCodecError, llhttp_get_error_reason(&parser_));
      }
      decoder_ = nullptr;
      input.drain(consumed + (pos != nullptr && pos >= data ? pos - data : 0));
      return error_;
    }
    flushBody();
    input.drain(consumed);
    if (stop) break;
  }
  return std::nullopt;
}

bool ServerConnection::sendErrorResponse(const CodecError& err) {
  if (encoder_.started()) return false;
  output_.add("HTTP/1.1 ");
  appendDecimal(output_, err.http_status);
  output_.add(" ");
  output_.add(reasonPhrase(err.http_status));
  output_.add("\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
  close_after_response_ = true;
  response_complete_ = true;
  return true;
}

void ServerConnection::Encoder::reset() {
  started_ = false;
  chunked_ = false;
  bodiless_ = false;
}

void ServerConnection::Encoder::encode100ContinueHeaders() {
  conn_.output_.add("HTTP/1.1 100 Continue\r\n\r\n");
}

void ServerConnection::Encoder::encodeHeaders(const HeaderMap& headers, bool end_stream) {
  buffer::Buffer& out = conn_.output_;
  const int status = headers.status();
  started_ = true;
  out.add("HTTP/1.1 ");
  std::string_view status_str = headers.statusString();
  out.add(status_str);
  out.add(" ");
  out.add(reasonPhrase(status));
  out.add("\r\n");
  appendHeaders(out, headers, /*skip_framing=*/true);

  if (conn_.upgrade_request_) {
    // The connection ends with this exchange: a tunnel after 101, and a
    // refused upgrade leaves input we will not parse as HTTP.
    conn_.close_after_response_ = true;
    if (status == 101) {
      out.add("\r\n");
      chunked_ = false;
      bodiless_ = false;
      if (end_stream) endStream();
      return;
    }
  }
  const bool no_body_status = status < 200 || status == 204 || status == 304;
  bodiless_ = conn_.is_head_ || no_body_status;
  // Framing, as Envoy's StreamEncoderImpl::encodeHeadersBase.
  if (headers.has("content-length")) {
    chunked_ = false;
  } else if (no_body_status) {
    chunked_ = false;
  } else if (end_stream) {
    if (!conn_.is_head_) out.add("content-length: 0\r\n");
    chunked_ = false;
  } else if (conn_.protocol_ == Protocol::Http10) {
    // Close-delimited body.
    chunked_ = false;
    conn_.close_after_response_ = true;
  } else {
    out.add("transfer-encoding: chunked\r\n");
    chunked_ = true;
  }
  out.add("\r\n");
  if (end_stream) endStream();
}

void ServerConnection::Encoder::encodeData(buffer::Buffer& data, bool end_stream) {
  buffer::Buffer& out = conn_.output_;
  if (bodiless_) {
    data.drain(data.length());
  } else if (data.length() > 0) {
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
    if (chunked_ && !bodiless_) out.add("0\r\n\r\n");
    endStream();
  }
}

void ServerConnection::Encoder::encodeTrailers(const HeaderMap& trailers) {
  buffer::Buffer& out = conn_.output_;
  if (chunked_ && !bodiless_) {
    out.add("0\r\n");
    appendHeaders(out, trailers, false);
    out.add("\r\n");
  }
  endStream();
}

void ServerConnection::Encoder::endStream() { conn_.onResponseComplete(); }

}  // namespace courier::http::http1
