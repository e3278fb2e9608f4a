// Turns an Envoy v3 Listener into the immutable ListenerConfig the workers
// accept with, building each filter chain's factories through the extension
// registry. Errors carry the caller's field path.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "source/server/filter_config.h"
#include "source/server/listener_config.h"

namespace courier::server {

absl::StatusOr<ListenerConfigConstSharedPtr> createListener(const envoy::config::listener::v3::Listener& config,
                                                            const std::string& path, FactoryContext& context);

}  // namespace courier::server
