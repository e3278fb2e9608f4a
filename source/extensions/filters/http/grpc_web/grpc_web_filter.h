// envoy.filters.http.grpc_web: lets gRPC-Web clients (usually browsers over
// HTTP/1.1) call gRPC upstreams. A request with content-type
// application/grpc-web[+proto] goes upstream as application/grpc; with
// application/grpc-web-text its base64 body is decoded first. The response
// goes back as gRPC-Web: its trailers become a final length-prefixed frame
// whose flag byte is 0x80 ("key:value\r\n" lines), and for text requests the
// whole body is base64. Other requests pass through untouched.
#pragma once

#include <memory>
#include <string>

#include "source/common/http/filter.h"
#include "source/server/filter_config.h"

namespace courier::extensions::grpc_web {

class GrpcWebFilter : public http::StreamFilter {
 public:
  http::FilterHeadersStatus decodeHeaders(http::HeaderMap& headers, bool end_stream) override;
  http::FilterDataStatus decodeData(buffer::Buffer& data, bool end_stream) override;
  http::FilterTrailersStatus decodeTrailers(http::HeaderMap&) override { return http::FilterTrailersStatus::Continue; }
  void setDecoderFilterCallbacks(http::StreamDecoderFilterCallbacks& callbacks) override { decoder_ = &callbacks; }

  http::FilterHeadersStatus encodeHeaders(http::HeaderMap& headers, bool end_stream) override;
  http::FilterDataStatus encodeData(buffer::Buffer& data, bool end_stream) override;
  http::FilterTrailersStatus encodeTrailers(http::HeaderMap& trailers) override;
  void setEncoderFilterCallbacks(http::StreamEncoderFilterCallbacks& callbacks) override { encoder_ = &callbacks; }

 private:
  http::StreamDecoderFilterCallbacks* decoder_ = nullptr;
  http::StreamEncoderFilterCallbacks* encoder_ = nullptr;
  bool grpc_web_ = false;
  bool text_ = false;
  bool failed_ = false;
  std::string decode_pending_;  // text request: base64 not yet a whole group
  std::string encode_pending_;  // text response: bytes not yet a whole group
};

// Registered under "envoy.filters.http.grpc_web".
std::unique_ptr<server::HttpFilterConfigFactory> createGrpcWebConfigFactory();

}  // namespace courier::extensions::grpc_web
