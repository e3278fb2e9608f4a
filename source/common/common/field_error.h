// The one shape of a configuration error: "<field path>: <what is wrong>",
// so every error names the field (static_resources.clusters[2].lb_policy: ...).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace courier {

inline absl::Status fieldError(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

}  // namespace courier
