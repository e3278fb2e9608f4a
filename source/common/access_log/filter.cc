#include "source/common/access_log/filter.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace courier::access_log {
namespace {

using ProtoFilter = envoy::config::accesslog::v3::AccessLogFilter;
using Comparison = envoy::config::accesslog::v3::ComparisonFilter;
using stream_info::StreamInfo;

bool compare(const Comparison& c, uint64_t value) {
  const uint64_t want = c.value().default_value();
  switch (c.op()) {
    case Comparison::GE:
      return value >= want;
    case Comparison::LE:
      return value <= want;
    default:
      return value == want;
  }
}

class StatusCodeFilter : public Filter {
 public:
  explicit StatusCodeFilter(Comparison c) : comparison_(std::move(c)) {}
  bool evaluate(const StreamInfo& info) const override {
    return compare(comparison_, info.response_code.value_or(0));
  }

 private:
  const Comparison comparison_;
};

class DurationFilter : public Filter {
 public:
  explicit DurationFilter(Comparison c) : comparison_(std::move(c)) {}
  bool evaluate(const StreamInfo& info) const override {
    auto d = info.requestComplete();
    if (!d.has_value()) return false;
    return compare(comparison_, std::chrono::duration_cast<std::chrono::milliseconds>(*d).count());
  }

 private:
  const Comparison comparison_;
};

// Health checks are not yet marked in StreamInfo, so nothing is one.
class NotHealthCheckFilter : public Filter {
 public:
  bool evaluate(const StreamInfo&) const override { return true; }
};

class AndFilter : public Filter {
 public:
  explicit AndFilter(std::vector<std::unique_ptr<Filter>> f) : filters_(std::move(f)) {}
  bool evaluate(const StreamInfo& info) const override {
    for (const auto& f : filters_) {
      if (!f->evaluate(info)) return false;
    }
    return true;
  }

 private:
  const std::vector<std::unique_ptr<Filter>> filters_;
};

class OrFilter : public Filter {
 public:
  explicit OrFilter(std::vector<std::unique_ptr<Filter>> f) : filters_(std::move(f)) {}
  bool evaluate(const StreamInfo& info) const override {
    for (const auto& f : filters_) {
      if (f->evaluate(info)) return true;
    }
    return false;
  }

 private:
  const std::vector<std::unique_ptr<Filter>> filters_;
};

class ResponseFlagFilter : public Filter {
 public:
  // mask 0: any flag matches (Envoy's empty flag list).
  explicit ResponseFlagFilter(uint32_t mask) : mask_(mask) {}
  bool evaluate(const StreamInfo& info) const override {
    return mask_ == 0 ? info.response_flags != 0 : (info.response_flags & mask_) != 0;
  }

 private:
  const uint32_t mask_;
};

uint32_t flagBit(const std::string& name) {
  using namespace stream_info;
  static const std::pair<const char*, uint32_t> kFlags[] = {
      {"LH", kFailedLocalHealthCheck}, {"UH", kNoHealthyUpstream},
      {"UT", kUpstreamRequestTimeout}, {"LR", kLocalReset},
      {"UR", kUpstreamRemoteReset},    {"UF", kUpstreamConnectionFailure},
      {"UC", kUpstreamConnectionTermination}, {"UO", kUpstreamOverflow},
      {"NR", kNoRouteFound},           {"DI", kDelayInjected},
      {"FI", kFaultInjected},          {"RL", kRateLimited},
      {"DC", kDownstreamConnectionTermination}, {"URX", kUpstreamRetryLimitExceeded},
      {"SI", kStreamIdleTimeout},      {"DPE", kDownstreamProtocolError},
      {"UPE", kUpstreamProtocolError}, {"NC", kNoClusterFound},
      {"DT", kDurationTimeout},
  };
  for (const auto& [n, bit] : kFlags) {
    if (name == n) return bit;
  }
  return 0;
}

absl::StatusOr<std::vector<std::unique_ptr<Filter>>> createList(
    const google::protobuf::RepeatedPtrField<ProtoFilter>& list, const std::string& path) {
  std::vector<std::unique_ptr<Filter>> out;
  for (int i = 0; i < list.size(); ++i) {
    auto f = createFilter(list[i], absl::StrCat(path, ".filters[", i, "]"));
    if (!f.ok()) return f.status();
    out.push_back(std::move(*f));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Filter>> createFilter(const ProtoFilter& config, const std::string& path) {
  switch (config.filter_specifier_case()) {
    case ProtoFilter::kStatusCodeFilter:
      return std::make_unique<StatusCodeFilter>(config.status_code_filter().comparison());
    case ProtoFilter::kDurationFilter:
      return std::make_unique<DurationFilter>(config.duration_filter().comparison());
    case ProtoFilter::kNotHealthCheckFilter:
      return std::make_unique<NotHealthCheckFilter>();
    case ProtoFilter::kAndFilter: {
      auto list = createList(config.and_filter().filters(), path + ".and_filter");
      if (!list.ok()) return list.status();
      return std::make_unique<AndFilter>(std::move(*list));
    }
    case ProtoFilter::kOrFilter: {
      auto list = createList(config.or_filter().filters(), path + ".or_filter");
      if (!list.ok()) return list.status();
      return std::make_unique<OrFilter>(std::move(*list));
    }
    case ProtoFilter::kResponseFlagFilter: {
      uint32_t mask = 0;
      const auto& flags = config.response_flag_filter().flags();
      for (int i = 0; i < flags.size(); ++i) {
        uint32_t bit = flagBit(flags[i]);
        if (bit == 0) {
          return absl::InvalidArgumentError(absl::StrCat(path, ".response_flag_filter.flags[", i,
                                                         "]: unknown or unsupported response flag \"", flags[i],
                                                         "\""));
        }
        mask |= bit;
      }
      return std::make_unique<ResponseFlagFilter>(mask);
    }
    case ProtoFilter::FILTER_SPECIFIER_NOT_SET:
      return absl::InvalidArgumentError(absl::StrCat(path, ": access log filter has no filter set"));
    default: {
      const auto* field = ProtoFilter::descriptor()->FindFieldByNumber(config.filter_specifier_case());
      const std::string name = field != nullptr ? field->name() : "unknown";
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".", name, ": access log filter ", name, " is not supported"));
    }
  }
}

}  // namespace courier::access_log
