#include "source/common/config/path_subscription.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/protobuf/yaml_loader.h"
#include "spdlog/spdlog.h"

namespace courier::config {
namespace {

using envoy::service::discovery::v3::DiscoveryResponse;
using google::protobuf::Message;

constexpr char kResourceWrapperType[] = "type.googleapis.com/envoy.service.discovery.v3.Resource";

absl::StatusOr<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return absl::UnavailableError(absl::StrCat(path, ": read error"));
  return contents.str();
}

// The message type named by a type URL, from the protos linked into the binary.
std::unique_ptr<Message> newMessage(const std::string& type_url) {
  const size_t slash = type_url.rfind('/');
  const std::string name = slash == std::string::npos ? type_url : type_url.substr(slash + 1);
  const google::protobuf::Descriptor* d =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(name);
  if (d == nullptr) return nullptr;
  const Message* prototype = google::protobuf::MessageFactory::generated_factory()->GetPrototype(d);
  return prototype == nullptr ? nullptr : std::unique_ptr<Message>(prototype->New());
}

// Same format choice as Envoy's MessageUtil::loadFromFile: binary and text
// protos by extension, everything else (.yaml, .yml, .json) through the YAML
// loader, which reads JSON too and names lines in its errors.
absl::Status parseResponse(const std::string& path, const std::string& bytes, DiscoveryResponse& out,
                           std::map<std::string, int>& lines) {
  if (absl::EndsWithIgnoreCase(path, ".pb")) {
    if (!out.ParseFromString(bytes)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": not a binary ", out.GetTypeName()));
    }
    return absl::OkStatus();
  }
  if (absl::EndsWithIgnoreCase(path, ".pb_text")) {
    if (!google::protobuf::TextFormat::ParseFromString(bytes, &out)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": not a text-format ", out.GetTypeName()));
    }
    return absl::OkStatus();
  }
  protobuf::LoadOptions opts;
  opts.source_name = path;
  opts.field_lines = &lines;
  opts.on_deprecated = [&path](const std::string& field_path, const std::string& message) {
    spdlog::warn("{}: {}: {}", path, field_path, message);
  };
  return protobuf::loadFromYamlString(bytes, out, opts);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PathSubscription>> PathSubscription::create(
    event::Dispatcher& dispatcher, std::string path, std::string watched_directory, std::string type_url,
    SubscriptionCallbacks& callbacks, std::optional<std::chrono::milliseconds> initial_fetch_timeout) {
  if (newMessage(type_url) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown resource type '", type_url, "'"));
  }
  std::unique_ptr<PathSubscription> sub(
      new PathSubscription(std::move(path), std::move(watched_directory), std::move(type_url), callbacks));
  absl::StatusOr<std::unique_ptr<FileWatcher>> watcher = FileWatcher::create(dispatcher);
  if (!watcher.ok()) return watcher.status();
  sub->watcher_ = std::move(*watcher);
  PathSubscription* raw = sub.get();
  sub->initial_fetch_timeout_ = initial_fetch_timeout;
  if (initial_fetch_timeout.has_value() && initial_fetch_timeout->count() > 0) {
    sub->initial_fetch_timer_ = dispatcher.createTimer([raw] {
      if (!raw->awaiting_first_) return;
      raw->endInitialFetch();
      const absl::Status timed_out = absl::DeadlineExceededError(
          absl::StrCat(raw->path_, ": initial fetch timed out after ", raw->initial_fetch_timeout_->count(),
                       "ms (initial_fetch_timeout)"));
      spdlog::warn("xds file {}", std::string(timed_out.message()));
      raw->callbacks_.onConfigUpdateFailed(UpdateFailureReason::FetchTimedOut, timed_out);
    });
  }
  // Envoy's rule: with a watched_directory the directory alone decides when
  // to reload (the file may be a symlink through `..data` that never changes).
  const absl::Status watched = sub->watched_directory_.empty()
                                   ? sub->watcher_->watchFile(sub->path_, [raw] { raw->reload(); })
                                   : sub->watcher_->watchDirectory(sub->watched_directory_, [raw] { raw->reload(); });
  if (!watched.ok()) return watched;
  return sub;
}

PathSubscription::PathSubscription(std::string path, std::string watched_directory, std::string type_url,
                                   SubscriptionCallbacks& callbacks)
    : path_(std::move(path)),
      watched_directory_(std::move(watched_directory)),
      type_url_(std::move(type_url)),
      callbacks_(callbacks) {}

void PathSubscription::start(const absl::flat_hash_set<std::string>& resource_names) {
  names_ = resource_names;
  started_ = true;
  if (initial_fetch_timeout_.has_value()) {
    awaiting_first_ = true;
    if (initial_fetch_timer_ != nullptr) initial_fetch_timer_->enable(*initial_fetch_timeout_);
  }
  reload();
}

void PathSubscription::endInitialFetch() {
  awaiting_first_ = false;
  if (initial_fetch_timer_ != nullptr) initial_fetch_timer_->disable();
}

void PathSubscription::updateResourceInterest(const absl::flat_hash_set<std::string>& resource_names) {
  names_ = resource_names;
  if (started_ && last_bytes_.has_value()) deliver(/*count=*/false);
}

void PathSubscription::reload() {
  // Changes before start() are picked up by start()'s own load.
  if (!started_) return;
  ++stats_.update_attempt;
  absl::StatusOr<std::string> bytes = readFile(path_);
  if (!bytes.ok() && awaiting_first_ && bytes.status().code() == absl::StatusCode::kNotFound) {
    // Not there yet: the subscriber warms until it appears or the timeout passes.
    spdlog::info("xds file {} not there yet; waiting for it (initial_fetch_timeout)", path_);
    ++stats_.update_failure;
    return;
  }
  endInitialFetch();
  if (!bytes.ok()) {
    // The status names the file already.
    spdlog::warn("xds file unreadable, keeping the previous config: {}", std::string(bytes.status().message()));
    ++stats_.update_failure;
    callbacks_.onConfigUpdateFailed(UpdateFailureReason::ConnectionFailure, bytes.status());
    return;
  }
  if (last_bytes_.has_value() && *last_bytes_ == *bytes) {
    ++stats_.update_success;
    return;
  }
  std::string version;
  std::vector<Entry> entries;
  const absl::Status decoded = decode(*bytes, version, entries);
  if (!decoded.ok()) {
    spdlog::warn("xds file rejected, keeping the previous config: {}", std::string(decoded.message()));
    ++stats_.update_rejected;
    callbacks_.onConfigUpdateFailed(UpdateFailureReason::UpdateRejected, decoded);
    return;
  }
  last_bytes_ = std::move(*bytes);
  last_version_ = std::move(version);
  last_entries_ = std::move(entries);
  deliver(/*count=*/true);
}

absl::Status PathSubscription::decode(const std::string& bytes, std::string& version_info,
                                      std::vector<Entry>& entries) const {
  DiscoveryResponse response;
  std::map<std::string, int> lines;
  const absl::Status parsed = parseResponse(path_, bytes, response, lines);
  if (!parsed.ok()) return parsed;
  version_info = response.version_info();
  absl::flat_hash_map<std::string, int> index_by_name;
  for (int i = 0; i < response.resources_size(); ++i) {
    const std::string field = absl::StrCat("resources[", i, "]");
    const std::string where = protobuf::locate(path_, lines, field) + field;
    Entry entry;
    entry.version = response.version_info();
    // Envoy accepts resources wrapped in Resource (name and version beside
    // the payload) in state-of-the-world responses too.
    envoy::service::discovery::v3::Resource wrapper;
    if (response.resources(i).type_url() == kResourceWrapperType) {
      if (!response.resources(i).UnpackTo(&wrapper)) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": cannot decode the Resource wrapper"));
      }
      if (!wrapper.has_resource()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": Resource wrapper without a resource"));
      }
      entry.name = wrapper.name();
      if (!wrapper.version().empty()) entry.version = wrapper.version();
      entry.any = wrapper.resource();
    } else {
      entry.any = response.resources(i);
    }
    if (entry.any.type_url() != type_url_) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": resource of type ", entry.any.type_url(),
                                                     " where this subscription wants ", type_url_));
    }
    std::unique_ptr<Message> resource = newMessage(type_url_);
    if (!resource->ParseFromString(entry.any.value())) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": cannot decode as ", type_url_));
    }
    if (entry.name.empty()) entry.name = resourceName(*resource);
    if (entry.name.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": resource has no name"));
    const auto [it, inserted] = index_by_name.emplace(entry.name, i);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": duplicate resource name '", entry.name, "' (also resources[", it->second, "])"));
    }
    entries.push_back(std::move(entry));
  }
  return absl::OkStatus();
}

void PathSubscription::deliver(bool count) {
  // Decoded afresh each time: DecodedResource owns its message, and a
  // redelivery for new names must not take the previous delivery's objects.
  std::vector<DecodedResource> resources;
  for (const Entry& entry : last_entries_) {
    if (!names_.empty() && !names_.contains(entry.name)) continue;
    DecodedResource r;
    r.name = entry.name;
    r.version = entry.version;
    r.resource = newMessage(type_url_);
    r.resource->ParseFromString(entry.any.value());
    resources.push_back(std::move(r));
  }
  // Copies, and a liveness check: a subscriber may destroy this subscription
  // from inside its callback.
  const std::string version = last_version_;
  const std::string path = path_;
  const std::shared_ptr<bool> alive = alive_;
  const absl::Status applied = callbacks_.onConfigUpdate(resources, version);
  if (!applied.ok()) {
    spdlog::warn("xds file {}: version '{}' not applied, keeping the previous config: {}", path, version,
                 std::string(applied.message()));
  }
  if (*alive && count) ++(applied.ok() ? stats_.update_success : stats_.update_rejected);
}

absl::StatusOr<std::unique_ptr<Subscription>> subscriptionFromConfigSource(
    const envoy::config::core::v3::ConfigSource& source, const std::string& field_path, event::Dispatcher& dispatcher,
    std::string type_url, SubscriptionCallbacks& callbacks) {
  using envoy::config::core::v3::ConfigSource;
  std::string path;
  std::string watched_directory;
  switch (source.config_source_specifier_case()) {
    case ConfigSource::kPathConfigSource: {
      const auto& pcs = source.path_config_source();
      if (pcs.path().empty()) {
        return absl::InvalidArgumentError(absl::StrCat(field_path, ".path_config_source.path: must not be empty"));
      }
      if (pcs.has_watched_directory() && pcs.watched_directory().path().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field_path, ".path_config_source.watched_directory.path: must not be empty"));
      }
      path = pcs.path();
      watched_directory = pcs.watched_directory().path();
      break;
    }
    case ConfigSource::kPath:
// Reading the deprecated field is how we honour it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      path = source.path();
#pragma GCC diagnostic pop
      // No deprecation warning here: the loader that read this ConfigSource
      // reports deprecated fields once, where it knows the line.
      if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(field_path, ".path: must not be empty"));
      break;
    case ConfigSource::kApiConfigSource:
      return absl::UnimplementedError(
          absl::StrCat(field_path, ".api_config_source: only path_config_source is supported here"));
    case ConfigSource::kAds:
      return absl::UnimplementedError(absl::StrCat(field_path, ".ads: only path_config_source is supported here"));
    case ConfigSource::kSelf:
      return absl::UnimplementedError(absl::StrCat(field_path, ".self: only path_config_source is supported here"));
    case ConfigSource::CONFIG_SOURCE_SPECIFIER_NOT_SET:
      return absl::InvalidArgumentError(
          absl::StrCat(field_path, ": no config source set (expected path_config_source, api_config_source or ads)"));
  }
  std::optional<std::chrono::milliseconds> initial_fetch_timeout;
  if (source.has_initial_fetch_timeout()) {
    const int64_t ms = google::protobuf::util::TimeUtil::DurationToMilliseconds(source.initial_fetch_timeout());
    if (ms < 0) {
      return absl::InvalidArgumentError(absl::StrCat(field_path, ".initial_fetch_timeout: must not be negative"));
    }
    initial_fetch_timeout = std::chrono::milliseconds(ms);
  }
  absl::StatusOr<std::unique_ptr<PathSubscription>> sub =
      PathSubscription::create(dispatcher, std::move(path), std::move(watched_directory), std::move(type_url),
                               callbacks, initial_fetch_timeout);
  if (!sub.ok()) return absl::Status(sub.status().code(), absl::StrCat(field_path, ": ", sub.status().message()));
  return std::unique_ptr<Subscription>(std::move(*sub));
}

}  // namespace courier::config
