// A small ADS management server for development and examples: serves the
// resources of a directory of DiscoveryResponse YAML files over state-of-the-
// world and delta ADS, and pushes a new snapshot whenever the files change.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "google/protobuf/any.pb.h"

namespace courier::tools {

// Resources by type URL, then by name; each with its own version (a hash of
// its bytes, so unchanged resources keep theirs across snapshots).
struct Snapshot {
  struct Resource {
    std::string version;
    google::protobuf::Any any;
  };
  uint64_t number = 0;  // bumped on every update()
  std::map<std::string, std::map<std::string, Resource>> types;
  // SotW version_info per type: a hash of its resources, so a restarted
  // server does not resend what a reconnecting client already holds.
  std::map<std::string, std::string> type_versions;
};

// Reads every *.yaml / *.json file of `dir` (each a DiscoveryResponse, as
// Envoy's path_config_source files) into one snapshot. Two resources of one
// type with one name are an error naming both files.
absl::Status loadSnapshot(const std::string& dir, Snapshot& out);

class SnapshotServer final : public envoy::service::discovery::v3::AggregatedDiscoveryService::Service {
 public:
  // Replaces the served snapshot and pushes it to every open stream.
  void update(Snapshot snapshot);

  grpc::Status StreamAggregatedResources(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<envoy::service::discovery::v3::DiscoveryResponse,
                               envoy::service::discovery::v3::DiscoveryRequest>* stream) override;
  grpc::Status DeltaAggregatedResources(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<envoy::service::discovery::v3::DeltaDiscoveryResponse,
                               envoy::service::discovery::v3::DeltaDiscoveryRequest>* stream) override;

 private:
  std::shared_ptr<const Snapshot> current();

  std::mutex mu_;
  std::condition_variable changed_;
  std::shared_ptr<const Snapshot> snapshot_ = std::make_shared<Snapshot>();
};

}  // namespace courier::tools
