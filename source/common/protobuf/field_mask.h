// Field masks as Envoy's /config_dump?mask= applies them: a comma-separated
// list of field paths ("cluster.name,last_updated"); every field not on a
// path is cleared. Unlike protobuf's FieldMaskUtil, a path continues into an
// Any (the config dump wraps every resource in one), which is unpacked,
// trimmed and packed again.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "google/protobuf/any.pb.h"
#include "google/protobuf/message.h"

namespace courier::protobuf {

struct FieldMask {
  // Each path split at '.'.
  std::vector<std::vector<std::string>> paths;
  bool empty() const { return paths.empty(); }
};

// "a.b,c" -> {{a, b}, {c}}; empty segments are dropped.
FieldMask parseFieldMask(std::string_view text);

// Clears every field of `message` that no path names. A path through a field
// that is not a message (or an Any of a type this binary does not know)
// keeps the whole field.
void trimMessage(const FieldMask& mask, google::protobuf::Message& message);

// The same for the message packed in `any` (left whole when its type is not
// known to this binary).
void trimPacked(const FieldMask& mask, google::protobuf::Any& any);

}  // namespace courier::protobuf
