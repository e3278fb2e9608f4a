// HTTP/1.1 CLIENT (upstream) codec over llhttp (HTTP_RESPONSE, strict):
// RequestEncoder calls in, bytes out into the output buffer; bytes in through
// dispatch(), ResponseDecoder calls out. No sockets, no pipelining: one
// request outstanding at a time, as Envoy's HTTP/1 upstream codec.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "llhttp.h"
#include "source/common/buffer/buffer.h"
#include "source/common/http/codec.h"
#include "source/common/http/header_map.h"

namespace courier::http::http1 {

namespace client_details {
// Client-side details (no Envoy equivalent at codec level; the router maps
// these to "upstream_reset_before_response_started{...}" etc.).
inline constexpr std::string_view kPrematureClose = "http1.premature_close";
inline constexpr std::string_view kUnexpectedResponse = "http1.unexpected_response";
}  // namespace client_details

struct Http1ClientSettings {
  uint32_t max_response_headers_kb = 60;
  uint32_t max_headers_count = 100;
};

class ClientConnection {
 public:
  ClientConnection(buffer::Buffer& output, const Http1ClientSettings& settings = {});
  ~ClientConnection();
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Starts a request whose response goes to decoder. Only when idle(): one
  // request outstanding at a time. The encoder belongs to the codec and stays
  // valid until the next newStream() (or the codec is destroyed).
  RequestEncoder& newStream(ResponseDecoder& decoder);

  // Parses response bytes and drains what was consumed. Bytes arriving with
  // no request outstanding (including bytes after a complete response) are an
  // error. Errors are sticky: afterwards every call returns the same error.
  DispatchResult dispatch(buffer::Buffer& input);

  // The upstream closed the connection. Completes a close-delimited response
  // (decodeData(end_stream=true)); returns a PrematureResponse error if a
  // request was outstanding and its response was not complete otherwise.
  // Returns nullopt if nothing was outstanding (or the response completed).
  DispatchResult onConnectionClosed();

  // No request outstanding and the connection can carry another request.
  bool idle() const { return !outstanding_ && !shouldClose(); }
  // The connection must not be reused: an error happened, or the completed
  // response (or its request) said "connection: close", or it was HTTP/1.0
  // without keep-alive, or it was close-delimited.
  bool shouldClose() const {
    return error_.has_value() || closed_ || (close_after_response_ && !outstanding_);
  }
  // A request was started and its response is not complete yet.
  bool outstanding() const { return outstanding_; }
  // A 101 answered an upgrade request: the connection is a raw tunnel now.
  bool tunneling() const { return tunnel_; }
  // Protocol of the last response's status line (Http11 before any).
  Protocol protocol() const { return protocol_; }
  const std::optional<CodecError>& error() const { return error_; }

 private:
  class Encoder : public RequestEncoder {
   public:
    explicit Encoder(ClientConnection& conn) : conn_(conn) {}
    void encodeHeaders(const HeaderMap& headers, bool end_stream) override;
    void encodeData(buffer::Buffer& data, bool end_stream) override;
    void encodeTrailers(const HeaderMap& trailers) override;
    void reset();
    bool complete() const { return complete_; }

   private:
    ClientConnection& conn_;
    bool started_ = false;
    bool chunked_ = false;
    bool complete_ = false;
  };

  static const llhttp_settings_t& parserSettings();
  static ClientConnection& self(llhttp_t* p) { return *static_cast<ClientConnection*>(p->data); }
  int onMessageBegin();
  int onStatus(const char* at, size_t len);
  int onHeaderField(const char* at, size_t len);
  int onHeaderValue(const char* at, size_t len);
  int onHeaderValueComplete();
  int onHeadersComplete();
  int onBody(const char* at, size_t len);
  int onMessageComplete();
  int fail(std::string_view details, std::string message,
           CodecError::Kind kind = CodecError::Kind::Protocol);
  bool addHeaderBytes(size_t n);
  void flushBody();
  void resetResponseState();

  buffer::Buffer& output_;
  const Http1ClientSettings settings_;
  llhttp_t parser_;
  Encoder encoder_{*this};
  std::optional<CodecError> error_;

  // Per-request state.
  ResponseDecoder* decoder_ = nullptr;
  bool outstanding_ = false;
  bool is_head_request_ = false;
  bool request_close_ = false;

  // Per-response-message state (a 1xx is a message of its own).
  HeaderMapPtr headers_;  // response headers, then trailers
  bool in_trailers_ = false;
  bool headers_deferred_ = false;
  bool headers_sent_ = false;
  bool informational_ = false;
  bool close_delimited_ = false;
  std::string field_;
  std::string value_;
  size_t header_bytes_ = 0;
  buffer::Buffer body_;
  Protocol protocol_ = Protocol::Http11;
  bool close_after_response_ = false;
  bool closed_ = false;
  // The request asked to upgrade; after a 101 the connection is a tunnel:
  // bytes both ways are raw, and the response ends when the upstream closes.
  bool upgrade_request_ = false;
  bool tunnel_ = false;
};

}  // namespace courier::http::http1
