// The seam between the server and network filter extensions: a factory turns
// a filter's typed_config into a callback that installs the filter on each new
// connection of a worker.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/any.pb.h"
#include "source/common/access_log/log_file.h"
#include "source/common/event/dispatcher.h"
#include "source/common/http/filter.h"
#include "source/common/http/pool/conn_pool.h"
#include "source/common/network/connection.h"
#include "source/common/network/transport_socket.h"
#include "source/common/router/rds.h"
#include "source/common/stats/store.h"
#include "source/common/upstream/cluster.h"
#include "source/common/upstream/thread_local_cluster_manager.h"

namespace courier::tls {
class SecretManager;
class SecretProvider;
}  // namespace courier::tls

namespace courier::server {

// What a filter sees of the worker it runs on.
struct WorkerContext {
  event::Dispatcher& dispatcher;
  upstream::ThreadLocalClusterManager& cluster_manager;
  http::pool::ConnPoolManager& http_pools;
  size_t index;
};

// Runs on a worker for every accepted connection of a filter chain.
using NetworkFilterFactoryCb = std::function<void(network::Connection&, WorkerContext&)>;

// Main-thread context for building filter factories from config.
struct FactoryContext {
  stats::Store& stats;
  // The clusters known when the listener is built (static ones), for
  // validating cluster names as Envoy does; null when not checked.
  const upstream::ClusterSet* clusters = nullptr;
  // Where access loggers get their shared, buffered log files.
  access_log::AccessLogManager* access_logs = nullptr;
  // Route tables by name (an HCM's `rds`); null where RDS is not available.
  router::RdsManager* rds = nullptr;
  // When set, filters add the RDS tables they use: the listener warms until
  // each has had its first fetch.
  std::vector<std::shared_ptr<router::RouteConfigProvider>>* rds_providers = nullptr;
  // Secrets by name (a TLS context's SDS references); null where SDS is not available.
  tls::SecretManager* secrets = nullptr;
  // When set, TLS contexts add the SDS secrets they use: the listener warms
  // until each has had its first fetch.
  std::vector<std::shared_ptr<tls::SecretProvider>>* secret_providers = nullptr;
};

class NetworkFilterConfigFactory {
 public:
  virtual ~NetworkFilterConfigFactory() = default;
  // Envoy's extension name, e.g. "envoy.filters.network.tcp_proxy".
  virtual std::string name() const = 0;
  // Full name of the typed_config message, e.g. "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy".
  virtual std::string configType() const = 0;
  // field_path prefixes error messages (".../filters[0].typed_config").
  virtual absl::StatusOr<NetworkFilterFactoryCb> createFilterFactory(const google::protobuf::Any& typed_config,
                                                                     FactoryContext& context,
                                                                     const std::string& field_path) = 0;
};

// A transport socket extension (envoy.transport_sockets.*) for a listener's
// filter chains.
class TransportSocketConfigFactory {
 public:
  virtual ~TransportSocketConfigFactory() = default;
  virtual std::string name() const = 0;
  virtual std::string configType() const = 0;
  // stat_prefix is the listener's ("listener.127.0.0.1_443."); field_path
  // names the typed_config. A null factory means plaintext.
  virtual absl::StatusOr<network::TransportSocketFactoryConstSharedPtr> createDownstreamFactory(
      const google::protobuf::Any& typed_config, FactoryContext& context, const std::string& stat_prefix,
      const std::string& field_path) = 0;
};

// An HTTP filter extension (envoy.filters.http.*), used by the connection
// manager to build each stream's filter chain.
class HttpFilterConfigFactory {
 public:
  virtual ~HttpFilterConfigFactory() = default;
  virtual std::string name() const = 0;
  virtual std::string configType() const = 0;
  // A terminal filter (the router) must be the last in http_filters.
  virtual bool isTerminal() const { return false; }
  // stat_prefix is the connection manager's; field_path prefixes errors.
  virtual absl::StatusOr<http::FilterFactoryCb> createFilterFactory(const google::protobuf::Any& typed_config,
                                                                    const std::string& stat_prefix,
                                                                    FactoryContext& context,
                                                                    const std::string& field_path) = 0;
};

}  // namespace courier::server
