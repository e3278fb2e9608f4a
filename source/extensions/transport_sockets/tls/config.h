// The envoy.transport_sockets.tls extension: DownstreamTlsContext on a
// listener's filter chain becomes a factory of TLS sockets.
#pragma once

#include <memory>

#include "source/server/filter_config.h"

namespace courier::tls {

std::unique_ptr<server::TransportSocketConfigFactory> createTlsTransportSocketConfigFactory();

}  // namespace courier::tls
