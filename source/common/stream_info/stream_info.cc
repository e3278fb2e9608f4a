#include "source/common/stream_info/stream_info.h"

namespace courier::stream_info {

std::string responseFlagsToString(uint32_t flags) {
  static constexpr std::pair<uint32_t, const char*> kNames[] = {
      {kFailedLocalHealthCheck, "LH"}, {kNoHealthyUpstream, "UH"},     {kUpstreamRequestTimeout, "UT"},
      {kLocalReset, "LR"},             {kUpstreamRemoteReset, "UR"},   {kUpstreamConnectionFailure, "UF"},
      {kUpstreamConnectionTermination, "UC"}, {kUpstreamOverflow, "UO"}, {kNoRouteFound, "NR"},
      {kDelayInjected, "DI"},          {kFaultInjected, "FI"},         {kRateLimited, "RL"},
      {kDownstreamConnectionTermination, "DC"}, {kUpstreamRetryLimitExceeded, "URX"},
      {kStreamIdleTimeout, "SI"},      {kDownstreamProtocolError, "DPE"}, {kUpstreamProtocolError, "UPE"},
      {kNoClusterFound, "NC"},         {kDurationTimeout, "DT"},
  };
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if ((flags & bit) == 0) continue;
    if (!out.empty()) out += ",";
    out += name;
  }
  return out.empty() ? "-" : out;
}

}  // namespace courier::stream_info
