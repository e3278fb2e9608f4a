#include "source/common/router/rds.h"

#include <algorithm>
#include <atomic>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"

namespace courier::router {

using envoy::config::route::v3::RouteConfiguration;

RdsStats::RdsStats(stats::Store& store, const std::string& prefix)
    : update_attempt(store.counter(prefix + "update_attempt")),
      update_success(store.counter(prefix + "update_success")),
      update_rejected(store.counter(prefix + "update_rejected")),
      update_failure(store.counter(prefix + "update_failure")),
      update_empty(store.counter(prefix + "update_empty")),
      version(store.gauge(prefix + "version")) {}

// One route_config_name from one source: the subscription, the last accepted
// table, and the (weakly held) provider the HCMs share.
class RdsManager::Subscription : public config::SubscriptionCallbacks {
 public:
  Subscription(RdsManager& parent, std::string name, const std::string& stat_prefix)
      : parent_(parent),
        name_(std::move(name)),
        stats_(parent.stats_, absl::StrCat("http.", stat_prefix, ".rds.", name_, ".")) {}
  ~Subscription() override { *alive_ = false; }

  // A provider for a new HCM: the live one, or a fresh one that starts with
  // the last accepted table (it reaches workers with the listener using it).
  std::shared_ptr<RouteConfigProvider> provider() {
    if (auto live = provider_.lock()) return live;
    auto fresh = std::make_shared<RouteConfigProvider>(parent_.workers_.size());
    for (auto& w : fresh->per_worker_) w.table = table_;
    fresh->warm_ = warm_;
    provider_ = fresh;
    return fresh;
  }
  bool unused() const { return provider_.expired(); }
  void setSubscription(std::unique_ptr<config::Subscription> s) { subscription_ = std::move(s); }
  config::Subscription* subscription() { return subscription_.get(); }
  const std::string& name() const { return name_; }
  bool hasConfig() const { return table_ != nullptr; }
  Dump dump() const { return Dump{name_, version_info_, config_, last_updated_}; }

  absl::Status onConfigUpdate(const std::vector<config::DecodedResource>& resources,
                              const std::string& version_info) override {
    absl::Status status = update(resources, version_info);
    setWarm();
    return status;
  }

  absl::Status update(const std::vector<config::DecodedResource>& resources, const std::string& version_info) {
    stats_.update_attempt.inc();
    if (resources.empty()) {
      // Envoy counts it and keeps serving what it has.
      stats_.update_empty.inc();
      spdlog::debug("rds: empty update for route configuration '{}'", name_);
      return absl::OkStatus();
    }
    if (resources.size() > 1) {
      return reject(absl::InvalidArgumentError(
          absl::StrCat("route configuration \"", name_, "\": expected one resource, got ", resources.size())));
    }
    return apply(resources[0], version_info);
  }

  absl::Status onConfigUpdate(const std::vector<config::DecodedResource>& added,
                              const std::vector<std::string>& removed, const std::string& system_version_info) override {
    if (!added.empty()) return onConfigUpdate(added, system_version_info);
    // As Envoy's RDS: a removal is logged and ignored (the last table keeps
    // serving), the response itself accepted; it is not the first fetch's
    // answer, so a listener waiting for this table goes on waiting.
    stats_.update_attempt.inc();
    stats_.update_success.inc();
    if (!removed.empty()) {
      spdlog::error("rds: the server sent a delta update removing route configuration '{}'; ignoring it", name_);
    }
    return absl::OkStatus();
  }

  void onConfigUpdateFailed(config::UpdateFailureReason reason, const absl::Status& error) override {
    stats_.update_attempt.inc();
    (reason == config::UpdateFailureReason::UpdateRejected ? stats_.update_rejected : stats_.update_failure).inc();
    spdlog::warn("rds: route configuration '{}': update failed, keeping the current table: {}", name_,
                 std::string(error.message()));
    setWarm();
  }

 private:
  // The first fetch ended: listeners waiting for this table may go on.
  void setWarm() {
    if (warm_) return;
    warm_ = true;
    if (auto provider = provider_.lock()) provider->setWarm();
  }

  absl::Status reject(absl::Status status) {
    stats_.update_rejected.inc();
    spdlog::warn("rds: update rejected, the previous table keeps serving: {}", std::string(status.message()));
    return status;
  }

  absl::Status apply(const config::DecodedResource& resource, const std::string& version_info) {
    const auto* proto = dynamic_cast<const RouteConfiguration*>(resource.resource.get());
    if (proto == nullptr) {
      return reject(absl::InvalidArgumentError(
          absl::StrCat("resources[0]: not a ", RouteConfiguration::descriptor()->full_name())));
    }
    const std::string prefix = absl::StrCat("route configuration \"", name_, "\": ");
    if (proto->name() != name_) {
      return reject(absl::InvalidArgumentError(
          absl::StrCat(prefix, "resources[0].name: expected \"", name_, "\", got \"", proto->name(), "\"")));
    }
    // RDS tables are not checked against the cluster set (Envoy's
    // validate_clusters defaults to false for RDS): clusters may arrive later.
    auto table = RouteTable::create(*proto, "resources[0]", nullptr);
    if (!table.ok()) {
      return reject(absl::Status(table.status().code(), absl::StrCat(prefix, table.status().message())));
    }
    version_info_ = version_info;
    stats_.version.set(config::versionHash(version_info));
    if (table_ != nullptr && google::protobuf::util::MessageDifferencer::Equals(config_, *proto)) {
      stats_.update_success.inc();
      return absl::OkStatus();
    }
    config_ = *proto;
    last_updated_ = google::protobuf::util::TimeUtil::GetCurrentTime();
    table_ = *table;
    publish();
    spdlog::info("rds: route configuration '{}' version '{}' applied", name_, version_info);
    return absl::OkStatus();
  }

  // Every worker swaps its pointer on its own loop; success is counted once
  // all have, so the next request anyone sends meets the new table.
  void publish() {
    std::shared_ptr<RouteConfigProvider> provider = provider_.lock();
    const auto& workers = parent_.workers_;
    if (provider == nullptr || workers.empty()) {
      stats_.update_success.inc();
      return;
    }
    auto remaining = std::make_shared<std::atomic<size_t>>(workers.size());
    std::shared_ptr<const RouteTable> table = table_;
    event::Dispatcher& main = parent_.main_;
    auto done = [this, alive = alive_] {
      if (*alive) stats_.update_success.inc();
    };
    for (size_t i = 0; i < workers.size(); ++i) {
      workers[i]->post([provider, table, i, remaining, &main, done] {
        provider->per_worker_[i].table = table;
        if (remaining->fetch_sub(1) == 1) main.post(done);
      });
    }
  }

  RdsManager& parent_;
  const std::string name_;
  RdsStats stats_;
  std::unique_ptr<config::Subscription> subscription_;
  std::weak_ptr<RouteConfigProvider> provider_;
  std::shared_ptr<const RouteTable> table_;
  RouteConfiguration config_;
  std::string version_info_;
  google::protobuf::Timestamp last_updated_;
  bool warm_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

RdsManager::RdsManager(event::Dispatcher& main, std::vector<event::Dispatcher*> workers, stats::Store& stats)
    : main_(main), workers_(std::move(workers)), stats_(stats) {}

RdsManager::~RdsManager() = default;

absl::StatusOr<std::shared_ptr<RouteConfigProvider>> RdsManager::provider(
    const envoy::config::core::v3::ConfigSource& source, const std::string& route_config_name,
    const std::string& stat_prefix, const std::string& field_path) {
  if (route_config_name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field_path, ".route_config_name: must not be empty"));
  }
  std::string key = route_config_name;
  key.push_back('\0');
  key += source.SerializeAsString();
  sweep(key);
  auto it = subscriptions_.find(key);
  if (it != subscriptions_.end()) return it->second->provider();
  if (!factory_) {
    return absl::FailedPreconditionError(absl::StrCat(field_path, ": RDS is not available here"));
  }
  auto subscription = std::make_unique<Subscription>(*this, route_config_name, stat_prefix);
  auto made = factory_(source, field_path + ".config_source", config::type_url::kRouteConfiguration, *subscription);
  if (!made.ok()) return made.status();
  auto provider = subscription->provider();
  subscription->setSubscription(std::move(*made));
  Subscription* raw = subscription.get();
  subscriptions_.emplace(std::move(key), std::move(subscription));
  // After it is stored: a file subscription delivers from start().
  if (raw->subscription() != nullptr) raw->subscription()->start({route_config_name});
  return provider;
}

void RdsManager::sweep(const std::string& keep) {
  for (auto it = subscriptions_.begin(); it != subscriptions_.end();) {
    if (it->first != keep && it->second->unused()) {
      spdlog::debug("rds: no listener uses route configuration '{}' any more; unsubscribing", it->second->name());
      subscriptions_.erase(it++);
    } else {
      ++it;
    }
  }
}

std::vector<RdsManager::Dump> RdsManager::dumps() const {
  std::vector<Dump> out;
  for (const auto& [key, s] : subscriptions_) {
    if (s->hasConfig()) out.push_back(s->dump());
  }
  std::sort(out.begin(), out.end(), [](const Dump& a, const Dump& b) { return a.name < b.name; });
  return out;
}

}  // namespace courier::router
