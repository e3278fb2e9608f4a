// HTTP/1.1 server codec over llhttp (strict mode): bytes in through
// dispatch(), StreamDecoder calls out; ResponseEncoder calls in, bytes out
// into the output buffer. No sockets. One request at a time: once a request
// is fully decoded the parser pauses until its response is fully encoded;
// pipelined bytes stay in the input buffer and the owner calls dispatch()
// again after the response completes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llhttp.h"
#include "source/common/buffer/buffer.h"
#include "source/common/http/codec.h"
#include "source/common/http/header_map.h"

namespace courier::http::http1 {

struct Http1Settings {
  uint32_t max_request_headers_kb = 60;
  uint32_t max_headers_count = 100;
  // Envoy's allow_chunked_length: accept CL + TE: chunked by dropping CL.
  bool allow_chunked_length = false;
  // Envoy's accept_http_10 (default false: HTTP/1.0 requests get 426).
  bool accept_http_10 = false;
  // Upgrade types the connection manager allows (upgrade_configs), lowercase,
  // e.g. "websocket". Other upgrades are refused with 403.
  std::vector<std::string> upgrade_types;
};

// Reason phrase for a status code ("Unknown" if not known).
std::string_view reasonPhrase(int code);

class ServerConnection {
 public:
  ServerConnection(ServerConnectionCallbacks& callbacks, buffer::Buffer& output,
                   const Http1Settings& settings = {});
  ~ServerConnection();
  ServerConnection(const ServerConnection&) = delete;
  ServerConnection& operator=(const ServerConnection&) = delete;

  // Parses as much of input as allowed and drains what was consumed. Returns
  // an error once the bytes are malformed; afterwards every call returns the
  // same error and consumes nothing. While paused (see below) consumes nothing.
  DispatchResult dispatch(buffer::Buffer& input);

  // A request was fully decoded and its response is not complete yet: more
  // input waits. Call dispatch() again once the response completes.
  bool waitingForResponse() const { return paused_; }
  // The current (or last) request demands closing after its response:
  // "connection: close", or HTTP/1.0 without "connection: keep-alive", or a
  // close-delimited response body (HTTP/1.0 without content-length).
  bool closeAfterResponse() const { return close_after_response_; }
  // The connection has nothing more to do: an error happened, or the response
  // to a close-after-response request is complete. The owner should flush the
  // output and close. Bytes after such a request are never parsed.
  bool shouldClose() const { return error_.has_value() || (close_after_response_ && response_complete_); }
  // Protocol of the current request (Http11 before any request).
  Protocol protocol() const { return protocol_; }
  // The request of the current stream carries "expect: 100-continue".
  bool expect100Continue() const { return expect_100_continue_; }
  // If the current request has no response started, writes a minimal error
  // response for err ("HTTP/1.1 <status> <reason>", content-length: 0,
  // connection: close). Returns whether anything was written.
  bool sendErrorResponse(const CodecError& err);
  // After an allowed Upgrade request every input byte is the tunnel's: it is
  // delivered as body data of the stream until endOfInput().
  bool tunneling() const { return tunnel_input_; }
  // The peer closed its side of an upgraded connection: ends the request.
  void endOfInput();

 private:
  class Encoder : public ResponseEncoder {
   public:
    explicit Encoder(ServerConnection& conn) : conn_(conn) {}
    void encodeHeaders(const HeaderMap& headers, bool end_stream) override;
    void encodeData(buffer::Buffer& data, bool end_stream) override;
    void encodeTrailers(const HeaderMap& trailers) override;
    void encode100ContinueHeaders() override;
    void reset();
    bool started() const { return started_; }

   private:
    void endStream();
    ServerConnection& conn_;
    bool started_ = false;
    bool chunked_ = false;
    bool bodiless_ = false;
  };

  static const llhttp_settings_t& parserSettings();
  static ServerConnection& self(llhttp_t* p) { return *static_cast<ServerConnection*>(p->data); }
  int onMessageBegin();
  int onUrl(const char* at, size_t len);
  int onHeaderField(const char* at, size_t len);
  int onHeaderValue(const char* at, size_t len);
  int onHeaderValueComplete();
  int onHeadersComplete();
  int onBody(const char* at, size_t len);
  int onMessageComplete();
  int fail(int status, std::string_view details, std::string message,
           CodecError::Kind kind = CodecError::Kind::Protocol);
  bool addHeaderBytes(size_t n);
  bool upgradeAllowed(std::string_view value) const;
  void flushBody();
  void onResponseComplete();

  ServerConnectionCallbacks& callbacks_;
  buffer::Buffer& output_;
  const Http1Settings settings_;
  llhttp_t parser_;
  Encoder encoder_{*this};
  std::optional<CodecError> error_;

  // Per-request decode state.
  StreamDecoder* decoder_ = nullptr;
  HeaderMapPtr headers_;   // request headers, then trailers
  bool in_trailers_ = false;
  bool headers_deferred_ = false;
  std::string url_;
  std::string field_;
  std::string value_;
  size_t header_bytes_ = 0;
  buffer::Buffer body_;
  Protocol protocol_ = Protocol::Http11;
  bool is_head_ = false;
  bool expect_100_continue_ = false;
  bool close_after_response_ = false;
  bool request_complete_ = false;
  bool response_complete_ = true;
  bool paused_ = false;
  bool upgrade_request_ = false;  // the current request asks for an allowed upgrade
  bool tunnel_input_ = false;     // its headers are done: input is raw tunnel bytes
};

}  // namespace courier::http::http1
