// A message's bytes in deterministic order (maps sorted), so that equal
// messages give equal bytes: for change detection and duplicate keys.
#pragma once

#include <string>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/message.h"

namespace courier::protobuf {

// Exactly sized: callers may keep the bytes (a cluster's config for /config_dump).
inline std::string deterministicBytes(const google::protobuf::Message& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  out.shrink_to_fit();
  return out;
}

}  // namespace courier::protobuf
