// The ADS client (Envoy's GrpcMux): one gRPC stream to the management server
// carries every resource type, state-of-the-world or delta. It turns
// subscriptions into requests, responses into decoded resources for the
// subscribers, and their verdicts into ACKs and NACKs. Main thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "envoy/config/core/v3/base.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "source/common/config/ads_stream.h"
#include "source/common/config/backoff.h"
#include "source/common/config/subscription.h"
#include "source/common/event/dispatcher.h"

namespace courier::config {

enum class AdsProtocol { kStateOfTheWorld, kDelta };

struct GrpcMuxOptions {
  // A gRPC target: "127.0.0.1:18000", "dns:///xds.example:18000".
  std::string target_uri;
  AdsProtocol protocol = AdsProtocol::kStateOfTheWorld;
  // user_agent_name and user_agent_build_version are filled in when empty.
  envoy::config::core::v3::Node node;
  // ApiConfigSource.set_node_on_first_message_only.
  bool set_node_on_first_message_only = false;
  // Headers sent on every stream (GrpcService.initial_metadata); lowercase keys.
  std::vector<std::pair<std::string, std::string>> initial_metadata;
  // Called with true once a stream answers (headers or a first response) and
  // with false when it ends: control_plane.connected_state.
  std::function<void(bool connected)> on_connection_state;
  // Largest DiscoveryResponse accepted, in bytes; -1 is no limit. A full
  // state-of-the-world CDS of a large mesh is tens of MB, far over gRPC's
  // 4 MiB default, so the default here is no limit.
  int max_receive_message_length = -1;
  std::chrono::milliseconds backoff_base{500};
  std::chrono::milliseconds backoff_max{30000};
};

// Every method, and every SubscriptionCallbacks call it makes, runs on the
// dispatcher's thread. Callbacks may subscribe, change interest or drop
// subscriptions, but must not destroy the mux itself.
class GrpcMux {
 public:
  GrpcMux(event::Dispatcher& dispatcher, GrpcMuxOptions options);
  // Cancels the stream and waits for gRPC to let go of it; never blocks on
  // the network. Subscriptions may outlive the mux (they go inert).
  ~GrpcMux();
  GrpcMux(const GrpcMux&) = delete;
  GrpcMux& operator=(const GrpcMux&) = delete;

  // Opens the stream. Subscriptions made earlier are requested on it; until
  // then they only accumulate, so startup can register every watch first.
  void start();

  // Interest in `resource_names` of `type_url` (empty: every resource of the
  // type), effective immediately. Several subscriptions may share a type;
  // each receives only the resources it named.
  std::unique_ptr<Subscription> subscribe(const std::string& type_url,
                                          const absl::flat_hash_set<std::string>& resource_names,
                                          SubscriptionCallbacks& callbacks);

  // A subscription that asks for nothing until its start(), so the server can
  // create LDS's next to CDS's and still request listeners only once the
  // clusters warmed, as Envoy orders them. `initial_fetch_timeout` (Envoy's
  // ConfigSource field; zero disables) runs from start(): when it passes
  // before the first update or rejection, the callbacks get
  // onConfigUpdateFailed(FetchTimedOut) and warming goes on without it. Until
  // the first update a dropped stream is not reported (Envoy leaves it to the
  // timeout), so a control plane that is down at boot holds the server back
  // for the timeout, not forever and not for nothing.
  std::unique_ptr<Subscription> subscription(const std::string& type_url, SubscriptionCallbacks& callbacks,
                                             std::chrono::milliseconds initial_fetch_timeout);

  // Holds requests (including ACKs) of a type until the matching resume(), so
  // that e.g. EDS is not asked for before CDS applied. Nested pauses count.
  void pause(const std::string& type_url);
  void resume(const std::string& type_url);

 private:
  class AdsSubscription;
  struct Watch {
    SubscriptionCallbacks* callbacks;
    absl::flat_hash_set<std::string> names;  // empty == wildcard
    // Armed from start() until the first update or rejection.
    std::unique_ptr<event::Timer> fetch_timer;
    // No update or rejection yet: stream failures are not reported.
    bool initial_fetch = false;
  };
  static bool wants(const Watch& watch, const std::string& name);
  static DecodedResource takeOrCopy(DecodedResource& resource, const std::vector<Watch*>& watches, size_t w);
  struct TypeState {
    std::vector<Watch*> watches;
    uint32_t pause_count = 0;
    bool request_pending = false;
    // Whether this stream has carried a request of the type yet.
    bool requested_on_stream = false;
    // An ACK or NACK owed to the server for the last response.
    bool ack_pending = false;
    std::string error_message;  // non-empty: the owed answer is a NACK
    std::string nonce;          // last response's nonce on this stream
    // State of the world: version_info of the last accepted response.
    std::string version_info;
    // Delta: the versions of the resources we hold, and what this stream's
    // server was told we want.
    absl::node_hash_map<std::string, std::string> resource_versions;
    absl::flat_hash_set<std::string> sent_names;
    bool sent_wildcard = false;
    // The wildcard was implied by an empty first request, not named "*".
    bool legacy_wildcard = false;
  };
  using SotwStream =
      AdsStream<envoy::service::discovery::v3::DiscoveryRequest, envoy::service::discovery::v3::DiscoveryResponse>;
  using DeltaStream = AdsStream<envoy::service::discovery::v3::DeltaDiscoveryRequest,
                                envoy::service::discovery::v3::DeltaDiscoveryResponse>;

  void addWatch(const std::string& type_url, Watch* watch);
  void removeWatch(const std::string& type_url, Watch* watch);
  void interestChanged(const std::string& type_url);

  void establishStream();
  void onStreamClosed(uint64_t generation, const grpc::Status& status);
  void onSotwResponse(uint64_t generation, const envoy::service::discovery::v3::DiscoveryResponse& response);
  void releaseMemoryAfterLargeResponse(size_t bytes);
  void onDeltaResponse(uint64_t generation, const envoy::service::discovery::v3::DeltaDiscoveryResponse& response);
  // Applies the decoded update to every watch; returns the first refusal
  // and sets `refused_by` to the watch that gave it.
  absl::Status deliverSotw(TypeState& state, std::vector<DecodedResource>& resources, const std::string& version,
                           Watch*& refused_by);
  absl::Status deliverDelta(TypeState& state, std::vector<DecodedResource>& added,
                            const std::vector<std::string>& removed, const std::string& version, Watch*& refused_by);
  // NACKs the update and tells every watch but `refused_by`: a subscriber
  // that refused knows, and counted it (the managers' update_rejected), as
  // with file subscriptions.
  void rejectUpdate(TypeState& state, const absl::Status& error, const Watch* refused_by);

  // Sends the type's request now, or marks it owed while paused or offline.
  void sendRequest(const std::string& type_url);
  bool streamOpen() const { return sotw_stream_ != nullptr || delta_stream_ != nullptr; }
  bool wantsWildcard(const TypeState& state) const;
  absl::flat_hash_set<std::string> wantedNames(const TypeState& state) const;
  bool takeNode();
  // The watch got its first verdict: the initial fetch is over.
  static void initialFetchDone(Watch& watch);
  void setConnected(uint64_t generation, bool connected);

  event::Dispatcher& dispatcher_;
  const GrpcMuxOptions options_;
  envoy::config::core::v3::Node node_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<envoy::service::discovery::v3::AggregatedDiscoveryService::Stub> stub_;
  // Closures posted by gRPC threads hold a weak reference to this and do
  // nothing once the mux is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool trim_posted_ = false;

  // Node-based: callbacks may subscribe to new types while a TypeState& is held.
  absl::node_hash_map<std::string, TypeState> types_;
  // First-subscription order, so requests after (re)connecting go out in a
  // stable order (CDS before EDS when subscribed so).
  std::vector<std::string> type_order_;

  bool started_ = false;
  uint64_t generation_ = 0;
  bool node_sent_on_stream_ = false;
  bool connected_ = false;
  std::unique_ptr<SotwStream> sotw_stream_;
  std::unique_ptr<DeltaStream> delta_stream_;
  JitteredBackOff backoff_;
  std::unique_ptr<event::Timer> retry_timer_;
};

}  // namespace courier::config
