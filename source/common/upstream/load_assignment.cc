#include "source/common/upstream/load_assignment.h"

#include "absl/strings/str_cat.h"
#include "source/common/common/field_error.h"

namespace courier::upstream {

absl::StatusOr<LocalityPlacement> placeLocality(const envoy::config::endpoint::v3::LocalityLbEndpoints& endpoints,
                                                const std::string& path, std::vector<LocalityEntry>& table) {
  if (endpoints.priority() > kMaxPriority) {
    return fieldError(path + ".priority", absl::StrCat(endpoints.priority(), " is above the highest supported priority ",
                                                       kMaxPriority));
  }
  // Envoy's validation: a locality weight, when given, is at least 1.
  if (endpoints.has_load_balancing_weight() && endpoints.load_balancing_weight().value() == 0) {
    return fieldError(path + ".load_balancing_weight", "must be at least 1");
  }
  LocalityEntry entry;
  entry.region = endpoints.locality().region();
  entry.zone = endpoints.locality().zone();
  entry.sub_zone = endpoints.locality().sub_zone();
  entry.weight = endpoints.has_load_balancing_weight() ? endpoints.load_balancing_weight().value() : 0;
  LocalityPlacement out;
  out.priority = static_cast<uint16_t>(endpoints.priority());
  for (size_t i = 0; i < table.size(); ++i) {
    if (table[i].sameName(entry)) {
      out.locality = static_cast<uint16_t>(i);
      return out;
    }
  }
  if (table.size() >= kMaxLocalities) return fieldError(path + ".locality", "too many distinct localities");
  out.locality = static_cast<uint16_t>(table.size());
  table.push_back(std::move(entry));
  return out;
}

absl::StatusOr<uint32_t> overprovisioningFactor(const envoy::config::endpoint::v3::ClusterLoadAssignment& cla,
                                                const std::string& path) {
  if (!cla.policy().has_overprovisioning_factor()) return 140u;
  const uint32_t value = cla.policy().overprovisioning_factor().value();
  if (value == 0) return fieldError(path + ".policy.overprovisioning_factor", "must be greater than 0");
  return value;
}

}  // namespace courier::upstream
