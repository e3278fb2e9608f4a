// File-based xDS (Envoy's path_config_source): one resource type read from a
// file holding a DiscoveryResponse, delivered as state of the world at start
// and again whenever the file (or its watched_directory) changes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "google/protobuf/any.pb.h"
#include "source/common/config/file_watcher.h"
#include "source/common/config/resource_decoder.h"
#include "source/common/config/subscription.h"
#include "source/common/event/dispatcher.h"

namespace courier::config {

// Envoy's per-subscription counters (control_plane stats would be
// <prefix>.update_attempt etc.), kept here until the stats store wires them.
struct SubscriptionStats {
  // Every load: start, a file event, not redeliveries for new names.
  uint64_t update_attempt = 0;
  // Delivered and accepted by the callbacks, or skipped as unchanged.
  uint64_t update_success = 0;
  // The file could not be read.
  uint64_t update_failure = 0;
  // The file did not decode, or the callbacks refused it.
  uint64_t update_rejected = 0;
};

// Lives on the thread of `dispatcher` (the main thread); callbacks run there.
//
// A file that cannot be read or decoded, or holds a resource of another type
// or two resources with one name, is rejected whole: onConfigUpdateFailed is
// called (ConnectionFailure when unreadable, UpdateRejected otherwise), a
// warning names the file and the reason, and the subscriber keeps what it has.
// A file whose bytes equal the last delivered ones is not delivered again, so
// the several events of one ConfigMap swap cost one update. The callbacks'
// own refusal is logged, not reported back through onConfigUpdateFailed.
//
// Two departures from Envoy, on purpose: a file rewritten in place is
// reloaded when its writer closes it (Envoy waits for a rename), and a file
// missing at start is a failed fetch that a later file recovers from (Envoy
// refuses the config). Resources may come wrapped in
// envoy.service.discovery.v3.Resource, whose name and version then win.
//
// With the ConfigSource's initial_fetch_timeout set, a file missing at start
// is waited for instead, as a control plane's first answer is: the
// subscriber warms until the file appears or the timeout passes, then gets
// onConfigUpdateFailed(FetchTimedOut) and goes on without it (a later file
// still applies). Zero waits without limit, as Envoy's zero disables the
// timeout. A file present but unreadable or bad ends the wait at once.
class PathSubscription : public Subscription {
 public:
  // `path`: the DiscoveryResponse file. `watched_directory`: when non-empty,
  // reload on any rename into that directory instead of on changes to `path`
  // itself, as Envoy does. Fails when a directory to watch does not exist.
  // `initial_fetch_timeout`: unset, a file missing at start fails the fetch at once.
  static absl::StatusOr<std::unique_ptr<PathSubscription>> create(
      event::Dispatcher& dispatcher, std::string path, std::string watched_directory, std::string type_url,
      SubscriptionCallbacks& callbacks, std::optional<std::chrono::milliseconds> initial_fetch_timeout = std::nullopt);

  ~PathSubscription() override { *alive_ = false; }

  void start(const absl::flat_hash_set<std::string>& resource_names) override;
  // Redelivers the last accepted file, filtered by the new names.
  void updateResourceInterest(const absl::flat_hash_set<std::string>& resource_names) override;

  const std::string& path() const { return path_; }
  const SubscriptionStats& stats() const { return stats_; }
  const std::string& watchedDirectory() const { return watched_directory_; }

 private:
  PathSubscription(std::string path, std::string watched_directory, std::string type_url,
                   SubscriptionCallbacks& callbacks);
  void reload();
  // The first fetch ended (delivered, rejected, or timed out): stop waiting.
  void endInitialFetch();
  // One resource of an accepted file, unwrapped from any
  // envoy.service.discovery.v3.Resource.
  struct Entry {
    std::string name;
    std::string version;
    google::protobuf::Any any;
  };

  // Decodes and checks the whole file; nothing is delivered from a file that fails.
  absl::Status decode(const std::string& bytes, std::string& version_info, std::vector<Entry>& entries) const;
  // `count`: a load (stats), not a redelivery for new names.
  void deliver(bool count);

  const std::string path_;
  const std::string watched_directory_;
  const std::string type_url_;
  SubscriptionCallbacks& callbacks_;
  std::unique_ptr<FileWatcher> watcher_;
  bool started_ = false;
  std::optional<std::chrono::milliseconds> initial_fetch_timeout_;
  // Between start() and the first fetch's end, when a missing file is waited for.
  bool awaiting_first_ = false;
  std::unique_ptr<event::Timer> initial_fetch_timer_;
  SubscriptionStats stats_;
  absl::flat_hash_set<std::string> names_;
  // The last file that decoded, its resources in file order: what
  // updateResourceInterest redelivers.
  std::optional<std::string> last_bytes_;
  std::string last_version_;
  std::vector<Entry> last_entries_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The subscription a ConfigSource asks for, for one type. Only
// path_config_source and the deprecated `path` are served here; other
// specifiers are an error naming `field_path` (e.g. "dynamic_resources.lds_config").
absl::StatusOr<std::unique_ptr<Subscription>> subscriptionFromConfigSource(
    const envoy::config::core::v3::ConfigSource& source, const std::string& field_path, event::Dispatcher& dispatcher,
    std::string type_url, SubscriptionCallbacks& callbacks);

}  // namespace courier::config
