#include "source/common/config/grpc_mux.h"

#include <malloc.h>

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "source/common/common/version.h"
#include "source/common/config/resource_decoder.h"

namespace courier::config {
namespace {

using envoy::service::discovery::v3::AggregatedDiscoveryService;
using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

// google.rpc.Code.INTERNAL, which Envoy puts in every NACK.
constexpr int kNackCode = 13;

std::vector<std::string> sorted(const absl::flat_hash_set<std::string>& names) {
  std::vector<std::string> out(names.begin(), names.end());
  std::sort(out.begin(), out.end());
  return out;
}

void fillUserAgent(envoy::config::core::v3::Node& node) {
  // Management servers (Istio, go-control-plane) key behaviour on Envoy's
  // user agent; we speak Envoy's protocol, so we present as Envoy does.
  if (node.user_agent_name().empty()) node.set_user_agent_name("envoy");
  if (node.user_agent_version_type_case() == envoy::config::core::v3::Node::USER_AGENT_VERSION_TYPE_NOT_SET) {
    std::vector<std::string> parts = absl::StrSplit(std::string(kCourierVersion), '.');
    uint32_t numbers[3] = {0, 0, 0};
    for (size_t i = 0; i < parts.size() && i < 3; ++i) {
      if (!absl::SimpleAtoi(parts[i], &numbers[i])) numbers[i] = 0;
    }
    auto* version = node.mutable_user_agent_build_version()->mutable_version();
    version->set_major_number(numbers[0]);
    version->set_minor_number(numbers[1]);
    version->set_patch(numbers[2]);
  }
}

std::string nackMessage(const absl::Status& status) {
  return status.message().empty() ? status.ToString() : std::string(status.message());
}

}  // namespace

class GrpcMux::AdsSubscription : public Subscription {
 public:
  AdsSubscription(GrpcMux& mux, std::string type_url, SubscriptionCallbacks& callbacks,
                  std::chrono::milliseconds initial_fetch_timeout)
      : mux_(mux),
        alive_(mux.alive_),
        type_url_(std::move(type_url)),
        initial_fetch_timeout_(initial_fetch_timeout),
        watch_{&callbacks, {}} {}

  ~AdsSubscription() override {
    if (registered_ && !alive_.expired()) mux_.removeWatch(type_url_, &watch_);
  }

  void start(const absl::flat_hash_set<std::string>& resource_names) override {
    if (registered_ || alive_.expired()) {
      updateResourceInterest(resource_names);
      return;
    }
    watch_.names = resource_names;
    watch_.initial_fetch = true;
    if (initial_fetch_timeout_.count() > 0) {
      watch_.fetch_timer = mux_.dispatcher_.createTimer([this] {
        watch_.initial_fetch = false;
        watch_.callbacks->onConfigUpdateFailed(
            UpdateFailureReason::FetchTimedOut,
            absl::DeadlineExceededError(absl::StrCat("initial fetch of ", type_url_, " timed out after ",
                                                     initial_fetch_timeout_.count(), "ms")));
      });
      watch_.fetch_timer->enable(initial_fetch_timeout_);
    }
    registerWatch();
  }

  void updateResourceInterest(const absl::flat_hash_set<std::string>& resource_names) override {
    if (alive_.expired()) return;
    watch_.names = resource_names;
    if (registered_) mux_.interestChanged(type_url_);
  }

  // Interest from now on (subscribe() registers at once, subscription() at start()).
  void registerWatch() {
    registered_ = true;
    mux_.addWatch(type_url_, &watch_);
  }

  Watch& watch() { return watch_; }

 private:
  GrpcMux& mux_;
  const std::weak_ptr<bool> alive_;
  const std::string type_url_;
  const std::chrono::milliseconds initial_fetch_timeout_;
  Watch watch_;
  bool registered_ = false;
};

GrpcMux::GrpcMux(event::Dispatcher& dispatcher, GrpcMuxOptions options)
    : dispatcher_(dispatcher),
      options_(std::move(options)),
      node_(options_.node),
      backoff_(options_.backoff_base, options_.backoff_max) {
  fillUserAgent(node_);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options_.max_receive_message_length);
  channel_ = grpc::CreateCustomChannel(options_.target_uri, grpc::InsecureChannelCredentials(), args);
  stub_ = AggregatedDiscoveryService::NewStub(channel_);
  retry_timer_ = dispatcher_.createTimer([this] { establishStream(); });
}

GrpcMux::~GrpcMux() {
  alive_.reset();
  retry_timer_.reset();
  sotw_stream_.reset();
  delta_stream_.reset();
}

void GrpcMux::start() {
  if (started_) return;
  started_ = true;
  establishStream();
}

std::unique_ptr<Subscription> GrpcMux::subscribe(const std::string& type_url,
                                                 const absl::flat_hash_set<std::string>& resource_names,
                                                 SubscriptionCallbacks& callbacks) {
  auto subscription = std::make_unique<AdsSubscription>(*this, type_url, callbacks, std::chrono::milliseconds(0));
  subscription->watch().names = resource_names;
  subscription->registerWatch();
  return subscription;
}

std::unique_ptr<Subscription> GrpcMux::subscription(const std::string& type_url, SubscriptionCallbacks& callbacks,
                                                    std::chrono::milliseconds initial_fetch_timeout) {
  return std::make_unique<AdsSubscription>(*this, type_url, callbacks, initial_fetch_timeout);
}

void GrpcMux::initialFetchDone(Watch& watch) {
  watch.initial_fetch = false;
  if (watch.fetch_timer) watch.fetch_timer->disable();
}

void GrpcMux::setConnected(uint64_t generation, bool connected) {
  if (generation != generation_ || connected == connected_) return;
  connected_ = connected;
  if (options_.on_connection_state) options_.on_connection_state(connected);
}

void GrpcMux::pause(const std::string& type_url) {
  auto [it, inserted] = types_.try_emplace(type_url);
  if (inserted) type_order_.push_back(type_url);
  ++it->second.pause_count;
}

void GrpcMux::resume(const std::string& type_url) {
  auto it = types_.find(type_url);
  if (it == types_.end() || it->second.pause_count == 0) return;
  if (--it->second.pause_count == 0 && it->second.request_pending) sendRequest(type_url);
}

void GrpcMux::addWatch(const std::string& type_url, Watch* watch) {
  auto [it, inserted] = types_.try_emplace(type_url);
  if (inserted) type_order_.push_back(type_url);
  it->second.watches.push_back(watch);
  interestChanged(type_url);
}

void GrpcMux::removeWatch(const std::string& type_url, Watch* watch) {
  auto it = types_.find(type_url);
  if (it == types_.end()) return;
  auto& watches = it->second.watches;
  watches.erase(std::remove(watches.begin(), watches.end(), watch), watches.end());
  interestChanged(type_url);
}

void GrpcMux::interestChanged(const std::string& type_url) { sendRequest(type_url); }

bool GrpcMux::wantsWildcard(const TypeState& state) const {
  for (const Watch* watch : state.watches) {
    if (watch->names.empty()) return true;
  }
  return false;
}

absl::flat_hash_set<std::string> GrpcMux::wantedNames(const TypeState& state) const {
  absl::flat_hash_set<std::string> names;
  for (const Watch* watch : state.watches) names.insert(watch->names.begin(), watch->names.end());
  return names;
}

bool GrpcMux::takeNode() {
  if (!options_.set_node_on_first_message_only) return true;
  if (node_sent_on_stream_) return false;
  node_sent_on_stream_ = true;
  return true;
}

void GrpcMux::sendRequest(const std::string& type_url) {
  auto it = types_.find(type_url);
  if (it == types_.end()) return;
  TypeState& state = it->second;
  if (!streamOpen() || state.pause_count > 0) {
    // Offline, establishStream() asks for every type anyway; paused, resume()
    // sends one request reflecting the state at that time.
    state.request_pending = streamOpen();
    return;
  }
  state.request_pending = false;
  const bool wildcard = wantsWildcard(state);
  const absl::flat_hash_set<std::string> wanted = wantedNames(state);

  if (options_.protocol == AdsProtocol::kStateOfTheWorld) {
    // With no watches left there is nothing to ask for; an empty list would
    // read as wildcard on a stream's first request, and a wildcard cannot be
    // withdrawn in this protocol. A named interest is withdrawn by an empty list.
    if (state.watches.empty() && !state.ack_pending && (!state.requested_on_stream || state.sent_wildcard)) {
      return;
    }
    DiscoveryRequest request;
    request.set_type_url(type_url);
    request.set_version_info(state.version_info);
    request.set_response_nonce(state.nonce);
    if (!wildcard) {
      for (const std::string& name : sorted(wanted)) request.add_resource_names(name);
    }
    if (state.ack_pending && !state.error_message.empty()) {
      request.mutable_error_detail()->set_code(kNackCode);
      request.mutable_error_detail()->set_message(state.error_message);
    }
    if (takeNode()) *request.mutable_node() = node_;
    state.ack_pending = false;
    state.error_message.clear();
    state.requested_on_stream = true;
    state.sent_wildcard = state.watches.empty() ? state.sent_wildcard : wildcard;
    sotw_stream_->send(std::move(request));
    return;
  }

  DeltaDiscoveryRequest request;
  request.set_type_url(type_url);
  if (!state.requested_on_stream) {
    if (state.watches.empty()) return;
    // A bare wildcard is an empty first request (legacy wildcard); with
    // names beside it the wildcard must be spelled "*".
    if (wildcard && !wanted.empty()) request.add_resource_names_subscribe("*");
    state.legacy_wildcard = wildcard && wanted.empty();
    for (const std::string& name : sorted(wanted)) request.add_resource_names_subscribe(name);
    // What we still hold, so the server resends only what changed.
    for (const auto& [name, version] : state.resource_versions) {
      (*request.mutable_initial_resource_versions())[name] = version;
    }
  } else {
    bool new_names = false;
    for (const std::string& name : wanted) new_names |= !state.sent_names.contains(name);
    // A legacy (implicit) wildcard ends at the first named subscription
    // unless "*" is then spelled out, so it is spelled out with it.
    if (wildcard && (!state.sent_wildcard || (state.legacy_wildcard && new_names))) {
      request.add_resource_names_subscribe("*");
      state.legacy_wildcard = false;
    }
    if (!wildcard && state.sent_wildcard) {
      request.add_resource_names_unsubscribe("*");
      state.legacy_wildcard = false;
      // What only the wildcard brought in is no longer ours to claim.
      for (auto version = state.resource_versions.begin(); version != state.resource_versions.end();) {
        auto current = version++;
        if (!wanted.contains(current->first)) state.resource_versions.erase(current);
      }
    }
    for (const std::string& name : sorted(wanted)) {
      if (!state.sent_names.contains(name)) request.add_resource_names_subscribe(name);
    }
    for (const std::string& name : sorted(state.sent_names)) {
      if (!wanted.contains(name)) {
        request.add_resource_names_unsubscribe(name);
        // Forgotten so a later reconnect does not claim to hold it.
        if (!wildcard) state.resource_versions.erase(name);
      }
    }
    if (request.resource_names_subscribe_size() == 0 && request.resource_names_unsubscribe_size() == 0 &&
        !state.ack_pending) {
      return;
    }
  }
  if (state.ack_pending) {
    request.set_response_nonce(state.nonce);
    if (!state.error_message.empty()) {
      request.mutable_error_detail()->set_code(kNackCode);
      request.mutable_error_detail()->set_message(state.error_message);
    }
  }
  if (takeNode()) *request.mutable_node() = node_;
  state.ack_pending = false;
  state.error_message.clear();
  state.requested_on_stream = true;
  state.sent_names = wanted;
  state.sent_wildcard = wildcard;
  delta_stream_->send(std::move(request));
}

void GrpcMux::establishStream() {
  const uint64_t generation = ++generation_;
  node_sent_on_stream_ = false;
  for (auto& [type_url, state] : types_) {
    state.requested_on_stream = false;
    state.request_pending = false;
    state.ack_pending = false;
    state.error_message.clear();
    state.nonce.clear();
    state.sent_names.clear();
    state.sent_wildcard = false;
    state.legacy_wildcard = false;
  }
  const std::weak_ptr<void> alive = alive_;
  if (options_.protocol == AdsProtocol::kStateOfTheWorld) {
    SotwStream::Handlers handlers{
        [this, generation](const DiscoveryResponse& response) { onSotwResponse(generation, response); },
        [this, generation](grpc::Status status) { onStreamClosed(generation, status); },
        [this, generation] { setConnected(generation, true); }};
    sotw_stream_ = std::make_unique<SotwStream>(dispatcher_, alive, std::move(handlers), options_.initial_metadata);
    sotw_stream_->start(
        [this](grpc::ClientContext* context, grpc::ClientBidiReactor<DiscoveryRequest, DiscoveryResponse>* reactor) {
          stub_->async()->StreamAggregatedResources(context, reactor);
        });
  } else {
    DeltaStream::Handlers handlers{
        [this, generation](const DeltaDiscoveryResponse& response) { onDeltaResponse(generation, response); },
        [this, generation](grpc::Status status) { onStreamClosed(generation, status); },
        [this, generation] { setConnected(generation, true); }};
    delta_stream_ = std::make_unique<DeltaStream>(dispatcher_, alive, std::move(handlers), options_.initial_metadata);
    delta_stream_->start([this](grpc::ClientContext* context,
                                grpc::ClientBidiReactor<DeltaDiscoveryRequest, DeltaDiscoveryResponse>* reactor) {
      stub_->async()->DeltaAggregatedResources(context, reactor);
    });
  }
  const std::vector<std::string> order = type_order_;
  for (const std::string& type_url : order) sendRequest(type_url);
}

void GrpcMux::onStreamClosed(uint64_t generation, const grpc::Status& status) {
  if (generation != generation_) return;
  sotw_stream_.reset();
  delta_stream_.reset();
  setConnected(generation, false);
  const absl::Status error =
      absl::UnavailableError(absl::StrCat("ADS stream to ", options_.target_uri, " closed: gRPC status ",
                                          static_cast<int>(status.error_code()), " ", status.error_message()));
  // Callbacks may drop subscriptions (even other ones) while we notify them.
  const std::vector<std::string> order = type_order_;
  for (const std::string& type_url : order) {
    auto it = types_.find(type_url);
    if (it == types_.end()) continue;
    const std::vector<Watch*> watches = it->second.watches;
    for (Watch* watch : watches) {
      const auto& current = it->second.watches;
      if (std::find(current.begin(), current.end(), watch) == current.end()) continue;
      // As Envoy: during the initial fetch the timeout, not the stream, decides.
      if (watch->initial_fetch) continue;
      watch->callbacks->onConfigUpdateFailed(UpdateFailureReason::ConnectionFailure, error);
    }
  }
  retry_timer_->enable(backoff_.next());
}

void GrpcMux::rejectUpdate(TypeState& state, const absl::Status& error, const Watch* refused_by) {
  state.ack_pending = true;
  state.error_message = nackMessage(error);
  const std::vector<Watch*> watches = state.watches;
  for (Watch* watch : watches) {
    if (std::find(state.watches.begin(), state.watches.end(), watch) == state.watches.end()) continue;
    initialFetchDone(*watch);
    if (watch == refused_by) continue;
    watch->callbacks->onConfigUpdateFailed(UpdateFailureReason::UpdateRejected, error);
  }
}

bool GrpcMux::wants(const Watch& watch, const std::string& name) {
  return watch.names.empty() || watch.names.contains(name);
}

// The resource for watches[w]: the decoded message itself when no later
// watch of this delivery wants it (the usual case, one wildcard CDS or LDS
// watch), else a copy. Copying 10k clusters cost as much as parsing them.
// The name and version stay behind: delta bookkeeping reads them after.
DecodedResource GrpcMux::takeOrCopy(DecodedResource& resource, const std::vector<Watch*>& watches, size_t w) {
  for (size_t later = w + 1; later < watches.size(); ++later) {
    if (wants(*watches[later], resource.name)) return cloneResource(resource);
  }
  DecodedResource taken;
  taken.name = resource.name;
  taken.version = resource.version;
  taken.resource = std::move(resource.resource);
  return taken;
}

absl::Status GrpcMux::deliverSotw(TypeState& state, std::vector<DecodedResource>& resources, const std::string& version,
                                  Watch*& refused_by) {
  const std::vector<Watch*> watches = state.watches;
  for (size_t w = 0; w < watches.size(); ++w) {
    Watch* watch = watches[w];
    if (std::find(state.watches.begin(), state.watches.end(), watch) == state.watches.end()) continue;
    std::vector<DecodedResource> mine;
    for (DecodedResource& resource : resources) {
      if (wants(*watch, resource.name)) mine.push_back(takeOrCopy(resource, watches, w));
    }
    // A watch that named its resources learns nothing from a response that
    // carries others (RDS and EDS responses need not repeat every resource,
    // and their absence is not a removal); a response with none at all is
    // delivered to everyone.
    if (!watch->names.empty() && mine.empty() && !resources.empty()) continue;
    initialFetchDone(*watch);
    absl::Status status = watch->callbacks->onConfigUpdate(mine, version);
    if (!status.ok()) {
      refused_by = watch;
      return status;
    }
  }
  return absl::OkStatus();
}

absl::Status GrpcMux::deliverDelta(TypeState& state, std::vector<DecodedResource>& added,
                                   const std::vector<std::string>& removed, const std::string& version,
                                   Watch*& refused_by) {
  const std::vector<Watch*> watches = state.watches;
  for (size_t w = 0; w < watches.size(); ++w) {
    Watch* watch = watches[w];
    if (std::find(state.watches.begin(), state.watches.end(), watch) == state.watches.end()) continue;
    std::vector<DecodedResource> mine_added;
    std::vector<std::string> mine_removed;
    for (DecodedResource& resource : added) {
      if (wants(*watch, resource.name)) mine_added.push_back(takeOrCopy(resource, watches, w));
    }
    for (const std::string& name : removed) {
      if (wants(*watch, name)) mine_removed.push_back(name);
    }
    // Nothing for a watch that named its resources: not its update.
    if (!watch->names.empty() && mine_added.empty() && mine_removed.empty()) continue;
    initialFetchDone(*watch);
    absl::Status status = watch->callbacks->onConfigUpdate(mine_added, mine_removed, version);
    if (!status.ok()) {
      refused_by = watch;
      return status;
    }
  }
  return absl::OkStatus();
}

void GrpcMux::releaseMemoryAfterLargeResponse(size_t bytes) {
  // Decoding a large response (a mesh's CDS: MBs on the wire, ~10x that
  // parsed) leaves freed heap that glibc keeps as resident memory. Give it
  // back once the response itself is gone, on the next loop turn.
  constexpr size_t kLarge = 256 << 10;
  if (bytes < kLarge || trim_posted_) return;
  trim_posted_ = true;
  const std::weak_ptr<void> alive = alive_;
  dispatcher_.post([this, alive] {
    if (alive.expired()) return;
    trim_posted_ = false;
    ::malloc_trim(0);
  });
}

void GrpcMux::onSotwResponse(uint64_t generation, const DiscoveryResponse& response) {
  if (generation != generation_) return;
  releaseMemoryAfterLargeResponse(response.ByteSizeLong());
  // The stream works again: the next failure starts the back-off afresh.
  backoff_.reset();
  setConnected(generation, true);
  const std::string type_url = response.type_url();
  auto it = types_.find(type_url);
  // A type nobody asked for: nothing to apply and nobody to answer for.
  if (it == types_.end()) return;
  TypeState& state = it->second;
  state.nonce = response.nonce();
  // Requests the subscribers cause while applying (interest changes) must
  // not go out before the verdict: they would carry this nonce with the old
  // version, which reads as a NACK. Paused, they merge into the ACK below.
  ++state.pause_count;

  absl::Status status;
  std::vector<DecodedResource> decoded;
  decoded.reserve(response.resources_size());
  for (int i = 0; i < response.resources_size(); ++i) {
    auto resource =
        decodeResource(response.resources(i), type_url, response.version_info(), absl::StrCat("resources[", i, "]"));
    if (!resource.ok()) {
      status = resource.status();
      break;
    }
    decoded.push_back(std::move(*resource));
  }
  Watch* refused_by = nullptr;
  if (status.ok()) status = deliverSotw(state, decoded, response.version_info(), refused_by);
  if (status.ok()) {
    state.version_info = response.version_info();
    state.ack_pending = true;
    state.error_message.clear();
  } else {
    rejectUpdate(state, status, refused_by);
  }
  --state.pause_count;
  sendRequest(type_url);
}

void GrpcMux::onDeltaResponse(uint64_t generation, const DeltaDiscoveryResponse& response) {
  if (generation != generation_) return;
  releaseMemoryAfterLargeResponse(response.ByteSizeLong());
  backoff_.reset();
  setConnected(generation, true);
  const std::string type_url = response.type_url();
  auto it = types_.find(type_url);
  if (it == types_.end()) return;
  TypeState& state = it->second;
  state.nonce = response.nonce();
  // Requests the subscribers cause while applying (interest changes) must
  // not go out before the verdict: they would carry this nonce with the old
  // version, which reads as a NACK. Paused, they merge into the ACK below.
  ++state.pause_count;

  absl::Status status;
  std::vector<DecodedResource> added;
  added.reserve(response.resources_size());
  for (int i = 0; i < response.resources_size(); ++i) {
    const auto& resource = response.resources(i);
    // A resource without a body only refreshes its TTL; nothing to apply.
    if (!resource.has_resource()) continue;
    auto decoded = decodeResource(resource.resource(), type_url, resource.version(),
                                  absl::StrCat("resources[", i, "] '", resource.name(), "'"));
    if (!decoded.ok()) {
      status = decoded.status();
      break;
    }
    if (!resource.name().empty()) decoded->name = resource.name();
    added.push_back(std::move(*decoded));
  }
  std::vector<std::string> removed(response.removed_resources().begin(), response.removed_resources().end());
  for (const auto& name : response.removed_resource_names()) removed.push_back(name.name());

  Watch* refused_by = nullptr;
  if (status.ok()) status = deliverDelta(state, added, removed, response.system_version_info(), refused_by);
  if (status.ok()) {
    for (const DecodedResource& resource : added) state.resource_versions[resource.name] = resource.version;
    for (const std::string& name : removed) state.resource_versions.erase(name);
    state.ack_pending = true;
    state.error_message.clear();
  } else {
    rejectUpdate(state, status, refused_by);
  }
  --state.pause_count;
  sendRequest(type_url);
}

}  // namespace courier::config
