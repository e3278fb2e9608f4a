#include "source/common/upstream/original_dst_cluster.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/common/field_error.h"

namespace courier::upstream {
namespace {

using ProtoCluster = envoy::config::cluster::v3::Cluster;

// "1.2.3.4:80" or "[::1]:80"; nullopt for anything else.
std::optional<network::Address> parseHostPort(std::string_view value) {
  std::string_view ip, port;
  if (!value.empty() && value.front() == '[') {
    size_t close = value.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    ip = value.substr(1, close - 1);
    port = value.substr(close + 2);
  } else {
    size_t colon = value.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    ip = value.substr(0, colon);
    port = value.substr(colon + 1);
  }
  uint32_t port_value = 0;
  if (!absl::SimpleAtoi(absl::string_view(port.data(), port.size()), &port_value) || port_value == 0 || port_value > 65535) return std::nullopt;
  auto address = network::Address::fromIpPort(std::string(ip), port_value);
  if (!address.ok()) return std::nullopt;
  return *address;
}

class OriginalDstLoadBalancer : public LoadBalancer {
 public:
  explicit OriginalDstLoadBalancer(const OriginalDstLbFactory& factory) : factory_(factory) {}

  const Host* chooseHost(const LoadBalancerContext* context) override {
    if (context == nullptr) return nullptr;
    const auto& settings = factory_.settings();
    std::optional<network::Address> destination;
    if (!settings.header.empty()) {
      std::optional<std::string_view> value = context->originalDstHost();
      // A header that is there but not an address picks no host (as Envoy).
      if (value.has_value() && !(destination = parseHostPort(*value)).has_value()) return nullptr;
    }
    if (!destination.has_value()) {
      const network::Address* local = context->downstreamLocalAddress();
      if (local == nullptr || !local->valid()) return nullptr;
      destination = *local;
    }
    if (settings.port_override.has_value()) {
      auto with_port = network::Address::fromIpPort(destination->ip(), *settings.port_override);
      if (!with_port.ok()) return nullptr;
      destination = *with_port;
    }
    std::string key = destination->asString();
    if (const auto* known = factory_.find(key)) {
      known->used->store(true, std::memory_order_relaxed);
      return known->host.get();
    }
    auto mine = mine_.find(key);
    if (mine != mine_.end()) return mine->second;
    auto host = std::make_shared<Host>();
    host->address = *destination;
    const Host* raw = host.get();
    mine_.emplace(std::move(key), raw);
    factory_.adopt(host);
    {
      std::lock_guard<std::mutex> lock(factory_.sink()->mu);
      if (factory_.sink()->add) factory_.sink()->add(std::move(host));
    }
    return raw;
  }

 private:
  const OriginalDstLbFactory& factory_;
  // Hosts this worker made for this cluster version (owned by the factory).
  absl::flat_hash_map<std::string, const Host*> mine_;
};

class OriginalDstDiscovery : public HostDiscovery {
 public:
  OriginalDstDiscovery(ClusterConstSharedPtr cluster, const OriginalDstLbFactory& factory,
                       event::Dispatcher& dispatcher, HostsChangedCallback on_change)
      : base_(std::move(cluster)),
        settings_(factory.settings()),
        sink_(factory.sink()),
        on_change_(std::move(on_change)),
        timer_(dispatcher.createTimer([this] { cleanup(); })) {
    {
      std::lock_guard<std::mutex> lock(sink_->mu);
      sink_->add = [&dispatcher, alive = alive_, this](HostConstSharedPtr host) {
        dispatcher.post([alive, this, host = std::move(host)] {
          if (*alive) add(host);
        });
      };
    }
    timer_->enable(settings_.cleanup_interval);
  }

  ~OriginalDstDiscovery() override {
    *alive_ = false;
    std::lock_guard<std::mutex> lock(sink_->mu);
    sink_->add = nullptr;
  }

 private:
  void add(const HostConstSharedPtr& host) {
    const std::string key = host->address.asString();
    for (const auto& k : known_) {
      if (k.host->address.asString() == key) return;  // another worker's first
    }
    known_.push_back({host, std::make_shared<std::atomic<bool>>(true)});
    republish();
  }

  void cleanup() {
    const size_t before = known_.size();
    std::vector<OriginalDstLbFactory::Known> kept;
    for (auto& k : known_) {
      if (k.used->exchange(false, std::memory_order_relaxed)) kept.push_back(std::move(k));
    }
    known_ = std::move(kept);
    if (known_.size() != before) republish();
    timer_->enable(settings_.cleanup_interval);
  }

  void republish() {
    auto next = std::make_shared<Cluster>(*base_);
    next->hosts.clear();
    for (const auto& k : known_) next->hosts.push_back(k.host);
    next->lb_factory = std::make_shared<OriginalDstLbFactory>(settings_, sink_, known_);
    if (next->stats != nullptr) {
      next->stats->membership_total.set(next->hosts.size());
      next->stats->membership_healthy.set(next->hosts.size());
    }
    on_change_(std::move(next));
  }

  const ClusterConstSharedPtr base_;
  const OriginalDstSettings settings_;
  const std::shared_ptr<OriginalDstHostSink> sink_;
  HostsChangedCallback on_change_;
  std::vector<OriginalDstLbFactory::Known> known_;
  std::unique_ptr<event::Timer> timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

OriginalDstLbFactory::OriginalDstLbFactory(OriginalDstSettings settings, std::shared_ptr<OriginalDstHostSink> sink,
                                           std::vector<Known> known)
    : settings_(std::move(settings)), sink_(std::move(sink)) {
  for (auto& k : known) {
    std::string key = k.host->address.asString();
    known_.emplace(std::move(key), std::move(k));
  }
}

std::unique_ptr<LoadBalancer> OriginalDstLbFactory::create(const Cluster&) const {
  return std::make_unique<OriginalDstLoadBalancer>(*this);
}

std::shared_ptr<const LoadBalancerFactory> OriginalDstLbFactory::forHosts(const Cluster& cluster) const {
  std::vector<Known> known;
  for (const auto& h : cluster.hosts) known.push_back({h, std::make_shared<std::atomic<bool>>(true)});
  return std::make_shared<OriginalDstLbFactory>(settings_, sink_, std::move(known));
}

const OriginalDstLbFactory::Known* OriginalDstLbFactory::find(const std::string& address) const {
  auto it = known_.find(address);
  return it == known_.end() ? nullptr : &it->second;
}

void OriginalDstLbFactory::adopt(HostConstSharedPtr host) const {
  std::lock_guard<std::mutex> lock(created_mu_);
  created_.push_back(std::move(host));
}

absl::StatusOr<OriginalDstSettings> parseOriginalDstConfig(const ProtoCluster& config, const std::string& path) {
  OriginalDstSettings out;
  if (config.lb_policy() != ProtoCluster::CLUSTER_PROVIDED) {
    return fieldError(path + ".lb_policy", absl::StrCat("an ORIGINAL_DST cluster needs CLUSTER_PROVIDED, not ",
                                                        ProtoCluster::LbPolicy_Name(config.lb_policy())));
  }
  if (config.load_assignment().endpoints_size() > 0) {
    return fieldError(path + ".load_assignment", "an ORIGINAL_DST cluster takes no endpoints");
  }
  if (config.has_cleanup_interval()) {
    int64_t ms = google::protobuf::util::TimeUtil::DurationToMilliseconds(config.cleanup_interval());
    if (ms < 1) return fieldError(path + ".cleanup_interval", "must be at least 1ms");
    out.cleanup_interval = std::chrono::milliseconds(ms);
  }
  if (config.has_original_dst_lb_config()) {
    const auto& lb = config.original_dst_lb_config();
    if (lb.use_http_header()) {
      out.header = lb.http_header_name().empty() ? "x-envoy-original-dst-host" : lb.http_header_name();
      for (auto& c : out.header) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (lb.has_upstream_port_override()) {
      const uint32_t port = lb.upstream_port_override().value();
      if (port == 0 || port > 65535) {
        return fieldError(path + ".original_dst_lb_config.upstream_port_override", "must be a port (1-65535)");
      }
      out.port_override = port;
    }
    if (lb.has_metadata_key()) {
      return fieldError(path + ".original_dst_lb_config.metadata_key", "is not supported");
    }
  }
  return out;
}

std::unique_ptr<HostDiscovery> createOriginalDstDiscovery(ClusterConstSharedPtr cluster, event::Dispatcher& dispatcher,
                                                          HostsChangedCallback on_change) {
  const auto* factory = dynamic_cast<const OriginalDstLbFactory*>(cluster->lb_factory.get());
  if (factory == nullptr) return nullptr;
  return std::make_unique<OriginalDstDiscovery>(cluster, *factory, dispatcher, std::move(on_change));
}

}  // namespace courier::upstream
