#include "source/extensions/filters/http/grpc_web/grpc_web_filter.h"

#include "absl/strings/str_cat.h"
#include "envoy/extensions/filters/http/grpc_web/v3/grpc_web.pb.h"
#include "source/extensions/filters/http/grpc_web/base64.h"

namespace courier::extensions::grpc_web {
namespace {

constexpr std::string_view kGrpcWeb = "application/grpc-web";
constexpr std::string_view kGrpcWebText = "application/grpc-web-text";
constexpr uint8_t kTrailerFlag = 0x80;

bool startsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

http::FilterHeadersStatus GrpcWebFilter::decodeHeaders(http::HeaderMap& headers, bool) {
  const std::string_view content_type = headers.getValue("content-type");
  if (!startsWith(content_type, kGrpcWeb)) return http::FilterHeadersStatus::Continue;
  grpc_web_ = true;
  text_ = startsWith(content_type, kGrpcWebText);
  headers.set("content-type", "application/grpc");
  // The upstream speaks gRPC, which needs TE: trailers; a decoded text body
  // has another length.
  headers.set("te", "trailers");
  if (text_) headers.remove("content-length");
  return http::FilterHeadersStatus::Continue;
}

http::FilterDataStatus GrpcWebFilter::decodeData(buffer::Buffer& data, bool end_stream) {
  if (!text_ || failed_) return http::FilterDataStatus::Continue;
  decode_pending_ += data.toString();
  data.drain(data.length());
  std::string decoded;
  if (!base64DecodeGroups(decode_pending_, decoded) || (end_stream && !decode_pending_.empty())) {
    failed_ = true;
    decoder_->sendLocalReply(400, "Bad gRPC-web request, invalid base64 data.", static_cast<stream_info::ResponseFlag>(0),
                             "grpc_base_64_decode_failed");
    return http::FilterDataStatus::StopIterationNoBuffer;
  }
  data.add(decoded);
  return http::FilterDataStatus::Continue;
}

http::FilterHeadersStatus GrpcWebFilter::encodeHeaders(http::HeaderMap& headers, bool end_stream) {
  if (!grpc_web_) return http::FilterHeadersStatus::Continue;
  headers.set("content-type", text_ ? "application/grpc-web-text+proto" : "application/grpc-web+proto");
  // The trailers become part of the body.
  if (!end_stream) headers.remove("content-length");
  return http::FilterHeadersStatus::Continue;
}

http::FilterDataStatus GrpcWebFilter::encodeData(buffer::Buffer& data, bool end_stream) {
  if (!grpc_web_ || !text_) return http::FilterDataStatus::Continue;
  encode_pending_ += data.toString();
  data.drain(data.length());
  std::string encoded;
  base64EncodeGroups(encode_pending_, encoded, end_stream);
  data.add(encoded);
  return http::FilterDataStatus::Continue;
}

http::FilterTrailersStatus GrpcWebFilter::encodeTrailers(http::HeaderMap& trailers) {
  if (!grpc_web_) return http::FilterTrailersStatus::Continue;
  std::string block;
  for (const auto& entry : trailers) {
    block.append(entry.key()).append(":").append(entry.value()).append("\r\n");
  }
  std::string frame;
  frame.push_back(static_cast<char>(kTrailerFlag));
  const uint32_t len = static_cast<uint32_t>(block.size());
  frame.push_back(static_cast<char>(len >> 24));
  frame.push_back(static_cast<char>(len >> 16));
  frame.push_back(static_cast<char>(len >> 8));
  frame.push_back(static_cast<char>(len));
  frame += block;
  buffer::Buffer out;
  if (text_) {
    encode_pending_ += frame;
    std::string encoded;
    base64EncodeGroups(encode_pending_, encoded, true);
    out.add(encoded);
  } else {
    out.add(frame);
  }
  encoder_->addEncodedData(out);
  // The response ends with the frame: empty trailers end the stream.
  trailers = http::HeaderMap();
  return http::FilterTrailersStatus::Continue;
}

namespace {

using ProtoConfig = envoy::extensions::filters::http::grpc_web::v3::GrpcWeb;

class GrpcWebConfigFactory : public server::HttpFilterConfigFactory {
 public:
  std::string name() const override { return "envoy.filters.http.grpc_web"; }
  std::string configType() const override { return ProtoConfig::descriptor()->full_name(); }

  absl::StatusOr<http::FilterFactoryCb> createFilterFactory(const google::protobuf::Any& typed_config,
                                                            const std::string&, server::FactoryContext&,
                                                            const std::string& path) override {
    ProtoConfig proto;
    if (!typed_config.UnpackTo(&proto)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": cannot decode ", configType()));
    }
    return http::FilterFactoryCb([](http::FilterChainFactoryCallbacks& callbacks) {
      callbacks.addStreamFilter(std::make_unique<GrpcWebFilter>());
    });
  }
};

}  // namespace

std::unique_ptr<server::HttpFilterConfigFactory> createGrpcWebConfigFactory() {
  return std::make_unique<GrpcWebConfigFactory>();
}

}  // namespace courier::extensions::grpc_web
