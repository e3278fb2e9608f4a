// The seam between a source of xDS resources (an ADS stream, a watched
// DiscoveryResponse file) and the code that applies them (cluster manager,
// listener manager, route tables). Sources decode and type-check; callbacks
// validate and apply, or refuse with a status that becomes the NACK.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/message.h"

namespace envoy::config::core::v3 {
class ConfigSource;
}  // namespace envoy::config::core::v3

namespace courier::config {

// Type URLs exactly as Envoy's v3 API names them.
namespace type_url {
inline constexpr char kListener[] = "type.googleapis.com/envoy.config.listener.v3.Listener";
inline constexpr char kRouteConfiguration[] = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
inline constexpr char kCluster[] = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
inline constexpr char kClusterLoadAssignment[] = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
inline constexpr char kSecret[] = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
}  // namespace type_url

// The value of Envoy's <type>.version gauges (cds.version, lds.version): a
// hash of version_info. FNV-1a is stable between runs; 52 bits keep it exact
// when gauges are read back as JSON or Prometheus doubles.
inline uint64_t versionHash(std::string_view version) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : version) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h & ((1ull << 52) - 1);
}

// One resource as the source received it, already unpacked from its Any.
struct DecodedResource {
  std::string name;
  // The resource's own version (delta xDS); for state of the world it is the
  // response's version_info.
  std::string version;
  std::unique_ptr<google::protobuf::Message> resource;
};

enum class UpdateFailureReason { ConnectionFailure, FetchTimedOut, UpdateRejected };

class SubscriptionCallbacks {
 public:
  virtual ~SubscriptionCallbacks() = default;
  // State of the world: the complete set of resources of this type the
  // subscriber asked for. A non-OK status rejects the whole update (NACK with
  // the status message as error_detail); the previous config keeps serving.
  virtual absl::Status onConfigUpdate(const std::vector<DecodedResource>& resources,
                                      const std::string& version_info) = 0;
  // Delta: resources added or changed, and names removed.
  virtual absl::Status onConfigUpdate(const std::vector<DecodedResource>& added,
                                      const std::vector<std::string>& removed,
                                      const std::string& system_version_info) = 0;
  // The source could not deliver (stream down, initial_fetch_timeout passed,
  // a file that does not parse). Informational: keep serving what you have.
  virtual void onConfigUpdateFailed(UpdateFailureReason reason, const absl::Status& error) = 0;
};

// One subscriber's interest in one resource type from one source. Destroying
// it ends the interest.
class Subscription {
 public:
  virtual ~Subscription() = default;
  // Empty names == wildcard (every resource of the type), as LDS and CDS ask.
  virtual void start(const absl::flat_hash_set<std::string>& resource_names) = 0;
  virtual void updateResourceInterest(const absl::flat_hash_set<std::string>& resource_names) = 0;
};

// Makes the subscription a ConfigSource asks for (path, ads) on behalf of a
// resource manager (RDS, EDS, SDS); errors name field_path. The server gives
// every manager the same one; --mode validate gives one that only checks.
using SubscriptionFactory = std::function<absl::StatusOr<std::unique_ptr<Subscription>>(
    const envoy::config::core::v3::ConfigSource& source, const std::string& field_path, const std::string& type_url,
    SubscriptionCallbacks& callbacks)>;

}  // namespace courier::config
