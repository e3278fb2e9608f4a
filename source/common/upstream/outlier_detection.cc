#include "source/common/upstream/outlier_detection.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/common/field_error.h"
#include "source/common/common/random.h"
#include "spdlog/spdlog.h"

namespace courier::upstream {
namespace {

using google::protobuf::util::TimeUtil;
constexpr uint64_t kOneRequest = uint64_t{1} << 32;

absl::Status percent(const google::protobuf::UInt32Value& v, bool has, const std::string& path, uint32_t& out) {
  if (!has) return absl::OkStatus();
  if (v.value() > 100) return fieldError(path, absl::StrCat("must be at most 100, got ", v.value()));
  out = v.value();
  return absl::OkStatus();
}

absl::Status duration(const google::protobuf::Duration& d, bool has, const std::string& path,
                      std::chrono::milliseconds& out) {
  if (!has) return absl::OkStatus();
  const int64_t ms = TimeUtil::DurationToMilliseconds(d);
  if (ms <= 0) return fieldError(path, "must be greater than 0s");
  out = std::chrono::milliseconds(ms);
  return absl::OkStatus();
}

}  // namespace

const char* ejectionTypeName(EjectionType type) {
  switch (type) {
    case EjectionType::Consecutive5xx: return "consecutive_5xx";
    case EjectionType::ConsecutiveGatewayFailure: return "consecutive_gateway_failure";
    case EjectionType::ConsecutiveLocalOriginFailure: return "consecutive_local_origin_failure";
    case EjectionType::SuccessRate: return "success_rate";
    case EjectionType::LocalOriginSuccessRate: return "local_origin_success_rate";
    case EjectionType::FailurePercentage: return "failure_percentage";
    case EjectionType::FailurePercentageLocalOrigin: return "failure_percentage_local_origin";
  }
  return "unknown";
}

absl::StatusOr<OutlierDetectionConfig> parseOutlierDetection(const envoy::config::cluster::v3::OutlierDetection& p,
                                                             const std::string& path) {
  OutlierDetectionConfig c;
#define COURIER_OD_DURATION(f) \
  if (auto s = duration(p.f(), p.has_##f(), path + "." #f, c.f); !s.ok()) return s
#define COURIER_OD_PERCENT(f) \
  if (auto s = percent(p.f(), p.has_##f(), path + "." #f, c.f); !s.ok()) return s
#define COURIER_OD_COUNT(f) \
  if (p.has_##f()) c.f = p.f().value()
  // Consecutive counters are 16 bits wide (HostOutlierCounters).
#define COURIER_OD_CONSECUTIVE(f) \
  if (p.has_##f()) c.f = std::min<uint32_t>(p.f().value(), 65535)
  COURIER_OD_DURATION(interval);
  COURIER_OD_DURATION(base_ejection_time);
  COURIER_OD_DURATION(max_ejection_time);
  COURIER_OD_PERCENT(max_ejection_percent);
  COURIER_OD_PERCENT(enforcing_consecutive_5xx);
  COURIER_OD_PERCENT(enforcing_consecutive_gateway_failure);
  COURIER_OD_PERCENT(enforcing_consecutive_local_origin_failure);
  COURIER_OD_PERCENT(enforcing_success_rate);
  COURIER_OD_PERCENT(enforcing_local_origin_success_rate);
  COURIER_OD_PERCENT(failure_percentage_threshold);
  COURIER_OD_PERCENT(enforcing_failure_percentage);
  COURIER_OD_PERCENT(enforcing_failure_percentage_local_origin);
  COURIER_OD_CONSECUTIVE(consecutive_5xx);
  COURIER_OD_CONSECUTIVE(consecutive_gateway_failure);
  COURIER_OD_CONSECUTIVE(consecutive_local_origin_failure);
  COURIER_OD_COUNT(success_rate_minimum_hosts);
  COURIER_OD_COUNT(success_rate_request_volume);
  COURIER_OD_COUNT(success_rate_stdev_factor);
  COURIER_OD_COUNT(failure_percentage_minimum_hosts);
  COURIER_OD_COUNT(failure_percentage_request_volume);
#undef COURIER_OD_DURATION
#undef COURIER_OD_PERCENT
#undef COURIER_OD_COUNT
#undef COURIER_OD_CONSECUTIVE
  c.split_external_local_origin_errors = p.split_external_local_origin_errors();
  if (p.has_always_eject_one_host()) c.always_eject_one_host = p.always_eject_one_host().value();
  if (p.has_successful_active_health_check_uneject_host()) {
    c.successful_active_health_check_uneject_host = p.successful_active_health_check_uneject_host().value();
  }
  // Envoy: max_ejection_time defaults to 300s but is never below the base.
  if (!p.has_max_ejection_time()) c.max_ejection_time = std::max(c.max_ejection_time, c.base_ejection_time);
  if (c.max_ejection_time < c.base_ejection_time) {
    return fieldError(path + ".max_ejection_time", "must not be less than base_ejection_time");
  }
  if (p.has_max_ejection_time_jitter()) {
    return fieldError(path + ".max_ejection_time_jitter", "is not supported yet");
  }
  if (!p.monitors().empty()) return fieldError(path + ".monitors", "outlier detection monitors are not supported");
  return c;
}

// Worker side.

void OutlierSink::reportHttpCode(const Host& host, int code) const {
  HostOutlierCounters& c = host.outlier;
  if (code >= 500) {
    c.external.fetch_add(kOneRequest | 1, std::memory_order_relaxed);
    if (uint32_t(uint16_t(c.consecutive_5xx.fetch_add(1, std::memory_order_relaxed) + 1)) == config_.consecutive_5xx) {
      crossed(host, EjectionType::Consecutive5xx);
    }
    if (code == 502 || code == 503 || code == 504) {
      if (uint32_t(uint16_t(c.consecutive_gateway_failure.fetch_add(1, std::memory_order_relaxed) + 1)) ==
          config_.consecutive_gateway_failure) {
        crossed(host, EjectionType::ConsecutiveGatewayFailure);
      }
    } else if (c.consecutive_gateway_failure.load(std::memory_order_relaxed) != 0) {
      c.consecutive_gateway_failure.store(0, std::memory_order_relaxed);
    }
    return;
  }
  c.external.fetch_add(kOneRequest, std::memory_order_relaxed);
  // Load first: most requests succeed and the line then stays shared.
  if (c.consecutive_5xx.load(std::memory_order_relaxed) != 0) c.consecutive_5xx.store(0, std::memory_order_relaxed);
  if (c.consecutive_gateway_failure.load(std::memory_order_relaxed) != 0) {
    c.consecutive_gateway_failure.store(0, std::memory_order_relaxed);
  }
}

void OutlierSink::reportLocalOrigin(const Host& host, LocalOriginEvent event) const {
  if (!config_.split_external_local_origin_errors) {
    // Unsplit, Envoy counts a local failure as the gateway error it becomes.
    if (event == LocalOriginEvent::ConnectFailed) reportHttpCode(host, 503);
    if (event == LocalOriginEvent::Timeout) reportHttpCode(host, 504);
    return;
  }
  HostOutlierCounters& c = host.outlier;
  if (event == LocalOriginEvent::ConnectSuccess) {
    c.local_origin.fetch_add(kOneRequest, std::memory_order_relaxed);
    if (c.consecutive_local_origin_failure.load(std::memory_order_relaxed) != 0) {
      c.consecutive_local_origin_failure.store(0, std::memory_order_relaxed);
    }
    return;
  }
  c.local_origin.fetch_add(kOneRequest | 1, std::memory_order_relaxed);
  if (uint32_t(uint16_t(c.consecutive_local_origin_failure.fetch_add(1, std::memory_order_relaxed) + 1)) ==
      config_.consecutive_local_origin_failure) {
    crossed(host, EjectionType::ConsecutiveLocalOriginFailure);
  }
}

void OutlierSink::crossed(const Host& host, EjectionType type) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (main_ == nullptr || on_crossing_ == nullptr) return;
  // The callback is looked up again on main: the detector may go meanwhile.
  std::weak_ptr<CrossingCallback> weak = on_crossing_;
  const Host* h = &host;
  main_->post([weak, h, type] {
    if (auto cb = weak.lock()) (*cb)(h, type);
  });
}

void OutlierSink::bind(event::Dispatcher* main, std::shared_ptr<CrossingCallback> on_crossing) {
  std::lock_guard<std::mutex> lock(mutex_);
  main_ = main;
  on_crossing_ = std::move(on_crossing);
}

// Main thread side.

OutlierDetectionStats::OutlierDetectionStats(stats::Store& store, const std::string& cluster_name)
    : ejections_active(store.gauge(absl::StrCat("cluster.", cluster_name, ".outlier_detection.ejections_active"))),
      ejections_total(store.counter(absl::StrCat("cluster.", cluster_name, ".outlier_detection.ejections_total"))),
      ejections_overflow(
          store.counter(absl::StrCat("cluster.", cluster_name, ".outlier_detection.ejections_overflow"))),
      ejections_enforced_total(
          store.counter(absl::StrCat("cluster.", cluster_name, ".outlier_detection.ejections_enforced_total"))) {
  for (int i = 0; i < 7; ++i) {
    const char* name = ejectionTypeName(static_cast<EjectionType>(i));
    enforced[i] = &store.counter(absl::StrCat("cluster.", cluster_name, ".outlier_detection.ejections_enforced_", name));
    detected[i] = &store.counter(absl::StrCat("cluster.", cluster_name, ".outlier_detection.ejections_detected_", name));
  }
}

OutlierDetector::OutlierDetector(ClusterConstSharedPtr cluster, event::Dispatcher& main, stats::Store& store,
                                 Clock clock, std::function<uint32_t()> random_percent)
    : cluster_(std::move(cluster)),
      config_(cluster_->outlier->config()),
      stats_(store, cluster_->name),
      clock_(clock ? std::move(clock) : [] { return std::chrono::steady_clock::now(); }),
      random_percent_(random_percent ? std::move(random_percent)
                                     : [] { return static_cast<uint32_t>(threadRandom()() % 100); }) {
  hosts_.resize(cluster_->hosts.size());
  for (size_t i = 0; i < cluster_->hosts.size(); ++i) {
    index_.emplace(cluster_->hosts[i].get(), i);
    // A new cluster version starts with no ejections of its own.
    if (!cluster_->hosts[i]->healthy()) setHealthFlag(*cluster_, *cluster_->hosts[i], health_flag::kFailedOutlierCheck, false);
  }
  crossing_ = std::make_shared<OutlierSink::CrossingCallback>(
      [this](const Host* host, EjectionType type) { onCrossing(host, type); });
  cluster_->outlier->bind(&main, crossing_);
  timer_ = main.createTimer([this] {
    runInterval();
    timer_->enable(config_.interval);
  });
  timer_->enable(config_.interval);
}

OutlierDetector::~OutlierDetector() {
  cluster_->outlier->bind(nullptr, nullptr);
  uint32_t active = 0;
  for (const auto& h : hosts_) active += h.ejected ? 1 : 0;
  // The gauge is shared with the next version of the cluster.
  stats_.ejections_active.set(stats_.ejections_active.value() >= active ? stats_.ejections_active.value() - active : 0);
}

void OutlierDetector::onCrossing(const Host* host, EjectionType type) {
  auto it = index_.find(host);
  if (it == index_.end()) return;
  HostOutlierCounters& c = host->outlier;
  uint32_t enforcing = 0;
  switch (type) {
    case EjectionType::Consecutive5xx:
      c.consecutive_5xx.store(0, std::memory_order_relaxed);
      enforcing = config_.enforcing_consecutive_5xx;
      break;
    case EjectionType::ConsecutiveGatewayFailure:
      c.consecutive_gateway_failure.store(0, std::memory_order_relaxed);
      enforcing = config_.enforcing_consecutive_gateway_failure;
      break;
    case EjectionType::ConsecutiveLocalOriginFailure:
      c.consecutive_local_origin_failure.store(0, std::memory_order_relaxed);
      enforcing = config_.enforcing_consecutive_local_origin_failure;
      break;
    default:
      return;
  }
  if (hosts_[it->second].ejected) return;
  eject(it->second, type, enforce(enforcing));
}

void OutlierDetector::eject(size_t index, EjectionType type, bool enforcing) {
  const auto t = static_cast<size_t>(type);
  stats_.detected[t]->inc();
  if (!enforcing) return;
  uint32_t active = 0;
  for (const auto& h : hosts_) active += h.ejected ? 1 : 0;
  const double ejected_percent = 100.0 * active / hosts_.size();
  if (!(ejected_percent < config_.max_ejection_percent || (config_.always_eject_one_host && active == 0))) {
    stats_.ejections_overflow.inc();
    return;
  }
  HostState& h = hosts_[index];
  h.ejected = true;
  h.ejected_at = clock_();
  ++h.num_ejections;
  setHealthFlag(*cluster_, *cluster_->hosts[index], health_flag::kFailedOutlierCheck, true);
  stats_.enforced[t]->inc();
  stats_.ejections_enforced_total.inc();
  stats_.ejections_total.inc();
  stats_.ejections_active.inc();
  spdlog::info("outlier detection: cluster '{}' ejects {} ({})", cluster_->name,
               cluster_->hosts[index]->address.asString(), ejectionTypeName(type));
}

void OutlierDetector::uneject(size_t index) {
  HostState& h = hosts_[index];
  h.ejected = false;
  const Host& host = *cluster_->hosts[index];
  host.outlier.consecutive_5xx.store(0, std::memory_order_relaxed);
  host.outlier.consecutive_gateway_failure.store(0, std::memory_order_relaxed);
  host.outlier.consecutive_local_origin_failure.store(0, std::memory_order_relaxed);
  setHealthFlag(*cluster_, host, health_flag::kFailedOutlierCheck, false);
  stats_.ejections_active.dec();
  spdlog::info("outlier detection: cluster '{}' returns {}", cluster_->name, host.address.asString());
}

void OutlierDetector::onActiveHealthCheckSuccess(const Host& host) {
  if (!config_.successful_active_health_check_uneject_host) return;
  auto it = index_.find(&host);
  if (it != index_.end() && hosts_[it->second].ejected) uneject(it->second);
}

void OutlierDetector::runInterval() {
  const auto now = clock_();
  for (size_t i = 0; i < hosts_.size(); ++i) {
    HostState& h = hosts_[i];
    // The ejection lasts base_ejection_time times the ejections in a row,
    // capped at max_ejection_time; each interval out of trouble takes one
    // off that count (Envoy's back-off).
    if (h.ejected) {
      const auto duration = std::min<std::chrono::milliseconds>(config_.base_ejection_time * h.num_ejections,
                                                                config_.max_ejection_time);
      if (now - h.ejected_at >= duration) uneject(i);
    } else if (h.num_ejections > 0) {
      --h.num_ejections;
    }
  }
  std::vector<std::pair<uint64_t, uint64_t>> external(hosts_.size()), local(hosts_.size());
  for (size_t i = 0; i < hosts_.size(); ++i) {
    const uint64_t e = cluster_->hosts[i]->outlier.external.exchange(0, std::memory_order_relaxed);
    const uint64_t l = cluster_->hosts[i]->outlier.local_origin.exchange(0, std::memory_order_relaxed);
    external[i] = {e >> 32, e & 0xffffffffu};
    local[i] = {l >> 32, l & 0xffffffffu};
  }
  successRateEjections(false, external);
  failurePercentageEjections(false, external);
  if (config_.split_external_local_origin_errors) {
    successRateEjections(true, local);
    failurePercentageEjections(true, local);
  }
}

void OutlierDetector::successRateEjections(bool local_origin,
                                           const std::vector<std::pair<uint64_t, uint64_t>>& counts) {
  std::vector<std::pair<size_t, double>> rates;
  for (size_t i = 0; i < counts.size(); ++i) {
    double& rate = local_origin ? hosts_[i].local_origin_success_rate : hosts_[i].success_rate;
    rate = -1;
    const auto [total, failed] = counts[i];
    if (total == 0 || total < config_.success_rate_request_volume) continue;
    rate = 100.0 * static_cast<double>(total - failed) / static_cast<double>(total);
    rates.emplace_back(i, rate);
  }
  if (rates.empty() || rates.size() < config_.success_rate_minimum_hosts) return;
  double mean = 0;
  for (const auto& [i, r] : rates) mean += r;
  mean /= rates.size();
  double variance = 0;
  for (const auto& [i, r] : rates) variance += (r - mean) * (r - mean);
  variance /= rates.size();
  const double threshold = mean - std::sqrt(variance) * (config_.success_rate_stdev_factor / 1000.0);
  const EjectionType type = local_origin ? EjectionType::LocalOriginSuccessRate : EjectionType::SuccessRate;
  const uint32_t enforcing =
      local_origin ? config_.enforcing_local_origin_success_rate : config_.enforcing_success_rate;
  for (const auto& [i, r] : rates) {
    if (r < threshold && !hosts_[i].ejected) eject(i, type, enforce(enforcing));
  }
}

void OutlierDetector::failurePercentageEjections(bool local_origin,
                                                 const std::vector<std::pair<uint64_t, uint64_t>>& counts) {
  std::vector<size_t> eligible;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i].first > 0 && counts[i].first >= config_.failure_percentage_request_volume) eligible.push_back(i);
  }
  if (eligible.empty() || eligible.size() < config_.failure_percentage_minimum_hosts) return;
  const EjectionType type = local_origin ? EjectionType::FailurePercentageLocalOrigin : EjectionType::FailurePercentage;
  const uint32_t enforcing =
      local_origin ? config_.enforcing_failure_percentage_local_origin : config_.enforcing_failure_percentage;
  for (size_t i : eligible) {
    const double failed = 100.0 * counts[i].second / counts[i].first;
    if (failed >= config_.failure_percentage_threshold && !hosts_[i].ejected) eject(i, type, enforce(enforcing));
  }
}

double OutlierDetector::successRate(const Host& host) const {
  auto it = index_.find(&host);
  return it == index_.end() ? -1 : hosts_[it->second].success_rate;
}

double OutlierDetector::localOriginSuccessRate(const Host& host) const {
  auto it = index_.find(&host);
  return it == index_.end() ? -1 : hosts_[it->second].local_origin_success_rate;
}

}  // namespace courier::upstream
