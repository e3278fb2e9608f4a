#include "source/extensions/extensions.h"

#include "source/extensions/filters/http/buffer/buffer_filter.h"
#include "source/extensions/filters/http/grpc_stats/grpc_stats_filter.h"
#include "source/extensions/filters/http/grpc_web/grpc_web_filter.h"
#include "source/extensions/filters/http/router/router.h"
#include "source/extensions/filters/listener/http_inspector/http_inspector.h"
#include "source/extensions/filters/listener/tls_inspector/tls_inspector.h"
#include "source/extensions/filters/network/http_connection_manager/connection_manager.h"
#include "source/extensions/filters/network/tcp_proxy/tcp_proxy.h"
#include "source/extensions/transport_sockets/tls/config.h"

namespace courier::extensions {

Registry::Registry() {
  http_filters_.push_back(buffer_filter::createBufferConfigFactory());
  http_filters_.push_back(grpc_stats::createGrpcStatsConfigFactory());
  http_filters_.push_back(grpc_web::createGrpcWebConfigFactory());
  http_filters_.push_back(router::createRouterConfigFactory());
  network_filters_.push_back(http_connection_manager::createHttpConnectionManagerConfigFactory(
      [this](const std::string& config_type, const std::string& name) { return httpFilter(config_type, name); }));
  network_filters_.push_back(tcp_proxy::createTcpProxyConfigFactory());
  transport_sockets_.push_back(tls::createTlsTransportSocketConfigFactory());
  listener_filters_.push_back(tls_inspector::createTlsInspectorConfigFactory());
  listener_filters_.push_back(http_inspector::createHttpInspectorConfigFactory());
}

const Registry& Registry::get() {
  static const Registry* registry = new Registry();
  return *registry;
}

server::NetworkFilterConfigFactory* Registry::networkFilter(const std::string& config_type,
                                                            const std::string& name) const {
  for (const auto& f : network_filters_) {
    if (!config_type.empty() ? f->configType() == config_type : f->name() == name) return f.get();
  }
  return nullptr;
}

server::HttpFilterConfigFactory* Registry::httpFilter(const std::string& config_type,
                                                      const std::string& name) const {
  for (const auto& f : http_filters_) {
    if (!config_type.empty() ? f->configType() == config_type : f->name() == name) return f.get();
  }
  return nullptr;
}

server::TransportSocketConfigFactory* Registry::transportSocket(const std::string& config_type,
                                                               const std::string& name) const {
  for (const auto& f : transport_sockets_) {
    if (!config_type.empty() ? f->configType() == config_type : f->name() == name) return f.get();
  }
  return nullptr;
}

std::vector<std::string> Registry::transportSocketNames() const {
  std::vector<std::string> names;
  for (const auto& f : transport_sockets_) names.push_back(f->name());
  return names;
}

server::ListenerFilterConfigFactory* Registry::listenerFilter(const std::string& config_type,
                                                              const std::string& name) const {
  for (const auto& f : listener_filters_) {
    if (!config_type.empty() ? f->configType() == config_type : f->name() == name) return f.get();
  }
  return nullptr;
}

std::vector<std::string> Registry::listenerFilterNames() const {
  std::vector<std::string> names;
  for (const auto& f : listener_filters_) names.push_back(f->name());
  return names;
}

std::vector<std::string> Registry::networkFilterNames() const {
  std::vector<std::string> names;
  for (const auto& f : network_filters_) names.push_back(f->name());
  return names;
}

}  // namespace courier::extensions
