#include "source/extensions/transport_sockets/tls/config.h"

#include "absl/strings/str_cat.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "source/common/common/field_error.h"
#include "source/extensions/transport_sockets/tls/context.h"
#include "source/extensions/transport_sockets/tls/sds_socket_factory.h"
#include "source/extensions/transport_sockets/tls/ssl_socket.h"

namespace courier::tls {
namespace {

using envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;

class TlsTransportSocketConfigFactory : public server::TransportSocketConfigFactory {
 public:
  std::string name() const override { return "envoy.transport_sockets.tls"; }
  std::string configType() const override { return DownstreamTlsContext::descriptor()->full_name(); }

  absl::StatusOr<network::TransportSocketFactoryConstSharedPtr> createDownstreamFactory(
      const google::protobuf::Any& typed_config, server::FactoryContext& context, const std::string& stat_prefix,
      const std::string& path) override {
    DownstreamTlsContext proto;
    if (!typed_config.Is<DownstreamTlsContext>() || !typed_config.UnpackTo(&proto)) {
      return fieldError(path, absl::StrCat("a listener's TLS transport socket needs a ", configType()));
    }
    if (usesSds(proto.common_tls_context())) {
      return createSdsServerFactory(proto, path, context.secrets, context.secret_providers, context.stats,
                                    stat_prefix);
    }
    auto tls = ServerContext::create(proto, path, context.stats, stat_prefix);
    if (!tls.ok()) return tls.status();
    return network::TransportSocketFactoryConstSharedPtr(std::make_shared<SslSocketFactory>(std::move(*tls)));
  }
};

}  // namespace

std::unique_ptr<server::TransportSocketConfigFactory> createTlsTransportSocketConfigFactory() {
  return std::make_unique<TlsTransportSocketConfigFactory>();
}

}  // namespace courier::tls
