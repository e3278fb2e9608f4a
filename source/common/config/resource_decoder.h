// Turns the Any-wrapped resources of a DiscoveryResponse into typed messages.
// Everything a control plane sends passes through here before any subscriber
// sees it, so every failure is a status naming the resource, never a crash.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/any.pb.h"
#include "source/common/config/subscription.h"

namespace courier::config {

// Decodes one resource that must be of `type_url`. A SotW response may wrap it
// in envoy.service.discovery.v3.Resource (for TTLs); that wrapper is opened
// too. `where` names the resource in errors when its own name is unknown.
absl::StatusOr<DecodedResource> decodeResource(const google::protobuf::Any& any, const std::string& type_url,
                                               const std::string& version, const std::string& where);

// The name a resource is known by: `name`, or `cluster_name` for a
// ClusterLoadAssignment, as Envoy's resource decoders read it.
std::string resourceName(const google::protobuf::Message& resource);

// Deep copy, for handing the same resource to several subscribers.
DecodedResource cloneResource(const DecodedResource& resource);

}  // namespace courier::config
