// The one list of extensions linked into Courier, keyed by Envoy extension
// name and by typed_config type: no static registration, so this file and the
// link line say exactly what is in the binary.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "source/server/filter_config.h"
#include "source/server/listener_filter.h"

namespace courier::extensions {

class Registry {
 public:
  static const Registry& get();

  // By typed_config type (full message name, without the type URL prefix),
  // falling back to the Envoy extension name. nullptr when not linked in.
  server::NetworkFilterConfigFactory* networkFilter(const std::string& config_type,
                                                    const std::string& name) const;
  std::vector<std::string> networkFilterNames() const;
  // HTTP filters (envoy.filters.http.*), looked up the same way.
  server::HttpFilterConfigFactory* httpFilter(const std::string& config_type, const std::string& name) const;
  // Transport sockets (envoy.transport_sockets.*), looked up the same way.
  server::TransportSocketConfigFactory* transportSocket(const std::string& config_type, const std::string& name) const;
  std::vector<std::string> transportSocketNames() const;
  // Listener filters (envoy.filters.listener.*), looked up the same way.
  server::ListenerFilterConfigFactory* listenerFilter(const std::string& config_type, const std::string& name) const;
  std::vector<std::string> listenerFilterNames() const;

 private:
  Registry();
  std::vector<std::unique_ptr<server::NetworkFilterConfigFactory>> network_filters_;
  std::vector<std::unique_ptr<server::HttpFilterConfigFactory>> http_filters_;
  std::vector<std::unique_ptr<server::TransportSocketConfigFactory>> transport_sockets_;
  std::vector<std::unique_ptr<server::ListenerFilterConfigFactory>> listener_filters_;
};

}  // namespace courier::extensions
