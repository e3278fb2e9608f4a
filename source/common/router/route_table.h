// The immutable, pre-compiled form of an Envoy RouteConfiguration: virtual
// host selection by :authority and first-match route selection, done by
// workers per request without allocating. Route actions are stored here and
// carried out by the router filter.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "envoy/config/route/v3/route.pb.h"
#include "re2/re2.h"
#include "source/common/http/header_map.h"

namespace courier::router {

// Tells whether a cluster name is known (Envoy's validate_clusters). Either a
// function (e.g. asking the cluster manager) or a fixed set of names.
class ClusterNameChecker {
 public:
  explicit ClusterNameChecker(std::function<bool(std::string_view)> fn) : fn_(std::move(fn)) {}
  explicit ClusterNameChecker(absl::flat_hash_set<std::string> names) : names_(std::move(names)) {}
  bool exists(std::string_view name) const;

 private:
  std::function<bool(std::string_view)> fn_;
  absl::flat_hash_set<std::string> names_;
};

// A compiled type.matcher.v3.StringMatcher (or a deprecated header form).
struct StringMatcher {
  enum class Kind { Exact, Prefix, Suffix, Contains, Regex };
  Kind kind = Kind::Exact;
  std::string value;  // lowercased when ignore_case
  bool ignore_case = false;
  std::shared_ptr<const re2::RE2> regex;
  bool match(std::string_view input) const;
};

// Compiles a type.matcher.v3.StringMatcher; errors name fields under `path`.
absl::StatusOr<StringMatcher> compileStringMatcher(const envoy::type::matcher::v3::StringMatcher& m,
                                                   const std::string& path);

// A compiled route.v3.HeaderMatcher.
struct HeaderMatcher {
  enum class Kind { String, Present, Range, LegacyExact };
  std::string name;  // lowercased
  Kind kind = Kind::Present;
  StringMatcher string;    // String and LegacyExact (empty legacy exact matches anything, as Envoy)
  bool present = true;     // Present
  int64_t range_start = 0;  // Range: [start, end)
  int64_t range_end = 0;
  bool invert = false;
  bool treat_missing_as_empty = false;
  bool matches(const http::HeaderMap& headers) const;
};

// A compiled route.v3.QueryParameterMatcher.
struct QueryParameterMatcher {
  std::string name;
  std::optional<bool> present_match;
  std::optional<StringMatcher> string;
};

enum class AppendAction { AppendIfExistsOrAdd, AddIfAbsent, OverwriteIfExistsOrAdd, OverwriteIfExists };

struct HeaderToAdd {
  std::string key;  // lowercased
  std::string value;
  AppendAction action = AppendAction::AppendIfExistsOrAdd;
  bool keep_empty_value = false;
};

// Header additions/removals in the order the router filter applies them.
struct HeaderMutations {
  std::vector<HeaderToAdd> request_headers_to_add;
  std::vector<std::string> request_headers_to_remove;
  std::vector<HeaderToAdd> response_headers_to_add;
  std::vector<std::string> response_headers_to_remove;
};

// Envoy's retry-on conditions as bits (values as Envoy's RetryPolicy).
namespace retry_on {
inline constexpr uint32_t k5xx = 0x1;
inline constexpr uint32_t kGatewayError = 0x2;
inline constexpr uint32_t kConnectFailure = 0x4;
inline constexpr uint32_t kRetriable4xx = 0x8;
inline constexpr uint32_t kRefusedStream = 0x10;
inline constexpr uint32_t kRetriableStatusCodes = 0x20;
inline constexpr uint32_t kReset = 0x40;
inline constexpr uint32_t kRetriableHeaders = 0x80;
inline constexpr uint32_t kEnvoyRateLimited = 0x100;
inline constexpr uint32_t kHttp3PostConnectFailure = 0x200;
inline constexpr uint32_t kResetBeforeRequest = 0x400;
inline constexpr uint32_t kGrpcCancelled = 0x1000;
inline constexpr uint32_t kGrpcDeadlineExceeded = 0x2000;
inline constexpr uint32_t kGrpcResourceExhausted = 0x4000;
inline constexpr uint32_t kGrpcUnavailable = 0x8000;
inline constexpr uint32_t kGrpcInternal = 0x10000;
}  // namespace retry_on

struct RetryPolicy {
  uint32_t retry_on = 0;
  std::vector<uint32_t> retriable_status_codes;
  uint32_t num_retries = 1;
  std::optional<std::chrono::milliseconds> per_try_timeout;
  std::optional<std::chrono::milliseconds> per_try_idle_timeout;
  std::chrono::milliseconds base_interval{25};
  std::chrono::milliseconds max_interval{250};
};

struct HashPolicy {
  enum class Kind { Header, Cookie, SourceIp, QueryParameter, FilterState };
  Kind kind = Kind::Header;
  std::string name;  // header name (lowercased), cookie name, query parameter or filter state key
  bool terminal = false;
  // Header: optional rewrite of the value before hashing.
  std::shared_ptr<const re2::RE2> regex;
  std::string substitution;
  // Cookie.
  std::optional<std::chrono::milliseconds> cookie_ttl;
  std::string cookie_path;
};

struct FractionalPercent {
  uint32_t numerator = 100;
  uint32_t denominator = 100;  // 100, 10000 or 1000000
  bool enabled(uint64_t random) const { return random % denominator < numerator; }
};

struct MirrorPolicy {
  std::string cluster;
  std::string cluster_header;
  FractionalPercent fraction;
  std::optional<bool> trace_sampled;
  bool disable_shadow_host_suffix_append = false;
};

struct WeightedCluster {
  std::string name;
  std::string cluster_header;
  uint32_t weight = 0;
  std::string host_rewrite_literal;
  HeaderMutations headers;  // applied before the route's own mutations, as Envoy
};

struct RedirectAction {
  std::string scheme;  // "" keeps the request's
  std::string host;
  uint32_t port = 0;  // 0 keeps
  std::string path;
  std::string prefix_rewrite;
  std::shared_ptr<const re2::RE2> regex;
  std::string regex_substitution;
  uint32_t response_code = 301;
  bool strip_query = false;
};

struct DirectResponseAction {
  uint32_t status = 200;
  std::string body;
};

class VirtualHost;

// One compiled route: its match criteria and its stored action.
struct RouteEntry {
  enum class PathKind { Prefix, Path, Regex, PathSeparatedPrefix };
  enum class ActionKind { Route, Redirect, DirectResponse };

  std::string name;
  const VirtualHost* virtual_host = nullptr;

  // Match.
  PathKind path_kind = PathKind::Prefix;
  std::string path_value;  // lowercased when !case_sensitive
  std::shared_ptr<const re2::RE2> path_regex;
  bool case_sensitive = true;
  std::optional<FractionalPercent> runtime_fraction;
  std::vector<HeaderMatcher> headers;
  std::vector<QueryParameterMatcher> query_parameters;

  // Action.
  ActionKind action = ActionKind::Route;
  std::string cluster;
  std::string cluster_header;
  std::vector<WeightedCluster> weighted_clusters;
  uint64_t total_cluster_weight = 0;
  std::string prefix_rewrite;
  std::shared_ptr<const re2::RE2> regex_rewrite;
  std::string regex_rewrite_substitution;
  std::string host_rewrite_literal;
  bool auto_host_rewrite = false;
  std::string host_rewrite_header;
  std::chrono::milliseconds timeout{15000};  // 0: no timeout
  std::optional<std::chrono::milliseconds> idle_timeout;
  // max_stream_duration.grpc_timeout_header_max, else the deprecated
  // max_grpc_timeout: when set, a gRPC request's grpc-timeout (capped by it,
  // 0 meaning no cap) replaces the route timeout.
  std::optional<std::chrono::milliseconds> max_grpc_timeout;
  std::optional<RetryPolicy> retry_policy;  // route's, else the virtual host's
  // RouteAction.priority is HIGH: the cluster's HIGH circuit breakers apply.
  bool high_priority = false;
  std::vector<HashPolicy> hash_policy;
  std::vector<MirrorPolicy> request_mirror_policies;  // route's, else vhost's, else route config's
  RedirectAction redirect;
  DirectResponseAction direct_response;
  // Route, virtual host and route-configuration mutations merged in the order
  // Envoy applies them: route -> vhost -> global, or global -> vhost -> route
  // with most_specific_header_mutations_wins.
  HeaderMutations header_mutations;

  bool matches(const http::HeaderMap& headers, std::string_view path_only, std::string_view query,
               uint64_t random) const;
  // The cluster for this request among weighted_clusters (random % total weight).
  const WeightedCluster* pickWeightedCluster(uint64_t random) const;
};

class VirtualHost {
 public:
  const std::string& name() const { return name_; }
  const std::vector<std::string>& domains() const { return domains_; }
  const std::vector<std::unique_ptr<RouteEntry>>& routes() const { return routes_; }
  const RouteEntry* route(const http::HeaderMap& headers, uint64_t random) const;

 private:
  friend class RouteTable;
  std::string name_;
  std::vector<std::string> domains_;
  std::vector<std::unique_ptr<RouteEntry>> routes_;
};

class RouteTable {
 public:
  static absl::StatusOr<std::shared_ptr<const RouteTable>> create(
      const envoy::config::route::v3::RouteConfiguration& config, const std::string& path,
      const ClusterNameChecker* validate_clusters);

  // The first matching route of the selected virtual host, or nullptr (404 NR).
  const RouteEntry* route(const http::HeaderMap& request_headers, uint64_t random) const;
  // The virtual host the request's :authority selects, or nullptr.
  const VirtualHost* virtualHost(const http::HeaderMap& request_headers) const;

  const std::string& name() const { return name_; }
  const std::vector<std::unique_ptr<VirtualHost>>& virtualHosts() const { return virtual_hosts_; }

 private:
  using DomainMap = absl::flat_hash_map<std::string, const VirtualHost*>;
  // Keyed by wildcard part length, longest first.
  using WildcardMaps = std::vector<std::pair<size_t, DomainMap>>;
  const VirtualHost* findWildcard(const WildcardMaps& maps, std::string_view host, bool suffix) const;

  std::string name_;
  std::vector<std::unique_ptr<VirtualHost>> virtual_hosts_;
  DomainMap exact_;
  WildcardMaps suffix_wildcards_;
  WildcardMaps prefix_wildcards_;
  const VirtualHost* default_ = nullptr;
  bool strip_port_ = true;
};

// The request path after the entry's prefix_rewrite or regex_rewrite (the
// query string is kept). Returns the path unchanged when neither is set.
std::string rewritePath(const RouteEntry& entry, std::string_view path);

}  // namespace courier::router
