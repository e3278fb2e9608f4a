// Loads Envoy-style YAML or JSON configuration into any protobuf message by
// reflection, with errors that name the source line and the field path; and
// prints messages as proto3 JSON the way Envoy's config_dump does.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <map>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace courier::protobuf {

struct LoadOptions {
  // Names the input in errors ("bootstrap.yaml:14: ..."). loadFromFile uses
  // the path when this is empty; loadFromYamlString uses "<yaml>".
  std::string source_name;
  // Envoy's --allow-unknown-static-fields: skip fields the message lacks.
  bool allow_unknown_fields = false;
  // Called once per deprecated field or enum value that ends up set, after the
  // whole input loaded without error, so the caller can warn and count
  // runtime.deprecated_feature_use.
  std::function<void(const std::string& field_path, const std::string& message)> on_deprecated;
  // When set, receives the 1-based line of every field and list element by
  // its path ("static_resources.clusters[1].name"), so errors found after
  // loading (validation) can still point at the line.
  std::map<std::string, int>* field_lines = nullptr;
};

// "file:LINE: " for the longest known prefix of `field_path`, or "file: ".
std::string locate(const std::string& source, const std::map<std::string, int>& field_lines,
                   const std::string& field_path);

// Replaces `out` with the message described by `text` (YAML, or JSON, which
// is YAML too). Errors are InvalidArgument and read
// "<source>:<line>: <field path>: <what was expected>"; on error `out` holds
// an unspecified partial result.
absl::Status loadFromYamlString(std::string_view text, google::protobuf::Message& out, const LoadOptions& opts = {});

// Reads `path` and loads it as loadFromYamlString does. A ".json" file is
// parsed by the same YAML parser (JSON is YAML), so its errors carry lines too.
absl::Status loadFromFile(const std::string& path, google::protobuf::Message& out, const LoadOptions& opts = {});

// Proto3 JSON with the proto field names ("static_resources"), as Envoy's
// admin config_dump prints it; Any payloads print with "@type" when their type
// is linked in. Printing cannot fail for messages this binary knows; if it
// does (an Any of an unknown type), the result is {"error": "<reason>"}.
// print_defaults also prints scalars and enums left at their default (Envoy
// does so for /server_info, /listeners and /clusters, not for /config_dump).
std::string toJson(const google::protobuf::Message& m, bool pretty = false, bool print_defaults = false);

}  // namespace courier::protobuf
