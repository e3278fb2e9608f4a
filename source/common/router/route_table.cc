#include "source/common/router/route_table.h"
#include "source/common/common/field_error.h"

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"

// The deprecated HeaderMatcher forms and HeaderValueOption.append are part of
// the accepted configuration, so reading them is intended.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace courier::router {
namespace {

namespace v3 = envoy::config::route::v3;
using ProtoStringMatcher = envoy::type::matcher::v3::StringMatcher;
using google::protobuf::util::TimeUtil;

absl::string_view av(std::string_view s) { return absl::string_view(s.data(), s.size()); }
re2::StringPiece sp(std::string_view s) { return re2::StringPiece(s.data(), s.size()); }

std::string lower(std::string_view s) { return absl::AsciiStrToLower(av(s)); }

std::chrono::milliseconds toMs(const google::protobuf::Duration& d) {
  return std::chrono::milliseconds(TimeUtil::DurationToMilliseconds(d));
}

absl::StatusOr<std::shared_ptr<const re2::RE2>> compileRegex(const std::string& regex, const std::string& path) {
  auto re = std::make_shared<re2::RE2>(regex, re2::RE2::Quiet);
  if (!re->ok()) return fieldError(path, absl::StrCat("invalid RE2 \"", regex, "\": ", re->error()));
  return std::shared_ptr<const re2::RE2>(std::move(re));
}

}  // namespace

absl::StatusOr<StringMatcher> compileStringMatcher(const ProtoStringMatcher& m, const std::string& path) {
  StringMatcher out;
  out.ignore_case = m.ignore_case();
  switch (m.match_pattern_case()) {
    case ProtoStringMatcher::kExact:
      out.kind = StringMatcher::Kind::Exact;
      out.value = m.exact();
      break;
    case ProtoStringMatcher::kPrefix:
      out.kind = StringMatcher::Kind::Prefix;
      out.value = m.prefix();
      break;
    case ProtoStringMatcher::kSuffix:
      out.kind = StringMatcher::Kind::Suffix;
      out.value = m.suffix();
      break;
    case ProtoStringMatcher::kContains:
      out.kind = StringMatcher::Kind::Contains;
      out.value = m.contains();
      break;
    case ProtoStringMatcher::kSafeRegex: {
      if (m.ignore_case()) return fieldError(path + ".ignore_case", "ignore_case has no effect for safe_regex");
      out.kind = StringMatcher::Kind::Regex;
      auto re = compileRegex(m.safe_regex().regex(), path + ".safe_regex.regex");
      if (!re.ok()) return re.status();
      out.regex = *re;
      break;
    }
    case ProtoStringMatcher::kCustom:
      return fieldError(path + ".custom", "custom string matchers are not supported");
    default:
      return fieldError(path, "a string matcher needs one of exact, prefix, suffix, contains or safe_regex");
  }
  if (out.ignore_case) out.value = lower(out.value);
  return out;
}

namespace {

// Envoy's Http::HeaderUtility::getPortStart.
size_t portStart(std::string_view host) {
  const size_t colon = host.rfind(':');
  if (colon == std::string_view::npos) return colon;
  const size_t v6_end = host.rfind(']');
  if (v6_end != std::string_view::npos && v6_end > colon) return std::string_view::npos;
  uint32_t port = 0;
  if (!absl::SimpleAtoi(av(host.substr(colon + 1)), &port)) return std::string_view::npos;
  return colon;
}

bool equalsMaybeIgnoreCase(std::string_view a, std::string_view b, bool ignore_case) {
  return ignore_case ? http::equalsIgnoreCase(a, b) : a == b;
}

bool startsWith(std::string_view s, std::string_view prefix, bool case_sensitive) {
  return s.size() >= prefix.size() && equalsMaybeIgnoreCase(s.substr(0, prefix.size()), prefix, !case_sensitive);
}

uint32_t denominatorValue(envoy::type::v3::FractionalPercent::DenominatorType d) {
  switch (d) {
    case envoy::type::v3::FractionalPercent::TEN_THOUSAND:
      return 10000;
    case envoy::type::v3::FractionalPercent::MILLION:
      return 1000000;
    default:
      return 100;
  }
}

FractionalPercent fraction(const envoy::config::core::v3::RuntimeFractionalPercent& p) {
  FractionalPercent f;
  f.denominator = denominatorValue(p.default_value().denominator());
  f.numerator = std::min(p.default_value().numerator(), f.denominator);
  return f;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The first value of query parameter name (percent-decoded), if present.
std::optional<std::string> queryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (percentDecode(key) == name) return percentDecode(value);
  }
  return std::nullopt;
}

absl::StatusOr<HeaderMatcher> compileHeaderMatcher(const v3::HeaderMatcher& m, const std::string& path) {
  HeaderMatcher out;
  out.name = lower(m.name());
  if (out.name.empty()) return fieldError(path + ".name", "a header matcher needs a name");
  out.invert = m.invert_match();
  out.treat_missing_as_empty = m.treat_missing_header_as_empty();
  auto legacy = [&](StringMatcher::Kind kind, const std::string& value) {
    out.kind = HeaderMatcher::Kind::String;
    out.string.kind = kind;
    out.string.value = value;
  };
  switch (m.header_match_specifier_case()) {
    case v3::HeaderMatcher::kExactMatch:
      out.kind = HeaderMatcher::Kind::LegacyExact;
      out.string.kind = StringMatcher::Kind::Exact;
      out.string.value = m.exact_match();
      break;
    case v3::HeaderMatcher::kPrefixMatch:
      legacy(StringMatcher::Kind::Prefix, m.prefix_match());
      break;
    case v3::HeaderMatcher::kSuffixMatch:
      legacy(StringMatcher::Kind::Suffix, m.suffix_match());
      break;
    case v3::HeaderMatcher::kContainsMatch:
      legacy(StringMatcher::Kind::Contains, m.contains_match());
      break;
    case v3::HeaderMatcher::kSafeRegexMatch: {
      out.kind = HeaderMatcher::Kind::String;
      out.string.kind = StringMatcher::Kind::Regex;
      auto re = compileRegex(m.safe_regex_match().regex(), path + ".safe_regex_match.regex");
      if (!re.ok()) return re.status();
      out.string.regex = *re;
      break;
    }
    case v3::HeaderMatcher::kRangeMatch:
      out.kind = HeaderMatcher::Kind::Range;
      out.range_start = m.range_match().start();
      out.range_end = m.range_match().end();
      if (out.range_start >= out.range_end) {
        return fieldError(path + ".range_match", "start must be less than end");
      }
      break;
    case v3::HeaderMatcher::kPresentMatch:
      out.kind = HeaderMatcher::Kind::Present;
      out.present = m.present_match();
      break;
    case v3::HeaderMatcher::kStringMatch: {
      auto sm = compileStringMatcher(m.string_match(), path + ".string_match");
      if (!sm.ok()) return sm.status();
      out.kind = HeaderMatcher::Kind::String;
      out.string = std::move(*sm);
      break;
    }
    default:
      // Envoy: a matcher with only a name matches when the header is present.
      out.kind = HeaderMatcher::Kind::Present;
      out.present = true;
      break;
  }
  return out;
}

absl::StatusOr<std::vector<HeaderToAdd>> compileHeadersToAdd(
    const google::protobuf::RepeatedPtrField<envoy::config::core::v3::HeaderValueOption>& list,
    const std::string& path) {
  std::vector<HeaderToAdd> out;
  for (int i = 0; i < list.size(); ++i) {
    const auto& o = list[i];
    const std::string p = absl::StrCat(path, "[", i, "]");
    HeaderToAdd h;
    h.key = lower(o.header().key());
    if (h.key.empty()) return fieldError(p + ".header.key", "a header to add needs a key");
    if (h.key[0] == ':' || h.key == "host") {
      return fieldError(p + ".header.key", absl::StrCat("\"", h.key, "\" may not be modified"));
    }
    h.value = o.header().raw_value().empty() ? o.header().value() : o.header().raw_value();
    h.keep_empty_value = o.keep_empty_value();
    if (o.has_append()) {
      if (o.append_action() != envoy::config::core::v3::HeaderValueOption::APPEND_IF_EXISTS_OR_ADD) {
        return fieldError(p, "append and append_action may not both be set");
      }
      h.action = o.append().value() ? AppendAction::AppendIfExistsOrAdd : AppendAction::OverwriteIfExistsOrAdd;
    } else {
      switch (o.append_action()) {
        case envoy::config::core::v3::HeaderValueOption::ADD_IF_ABSENT:
          h.action = AppendAction::AddIfAbsent;
          break;
        case envoy::config::core::v3::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD:
          h.action = AppendAction::OverwriteIfExistsOrAdd;
          break;
        case envoy::config::core::v3::HeaderValueOption::OVERWRITE_IF_EXISTS:
          h.action = AppendAction::OverwriteIfExists;
          break;
        default:
          h.action = AppendAction::AppendIfExistsOrAdd;
          break;
      }
    }
    out.push_back(std::move(h));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> compileHeadersToRemove(const google::protobuf::RepeatedPtrField<std::string>& list,
                                                                const std::string& path) {
  std::vector<std::string> out;
  for (int i = 0; i < list.size(); ++i) {
    std::string key = lower(list[i]);
    if (key.empty() || key[0] == ':' || key == "host") {
      return fieldError(absl::StrCat(path, "[", i, "]"), absl::StrCat("\"", key, "\" may not be removed"));
    }
    out.push_back(std::move(key));
  }
  return out;
}

template <class Proto>
absl::StatusOr<HeaderMutations> compileMutations(const Proto& p, const std::string& path) {
  HeaderMutations m;
  auto req_add = compileHeadersToAdd(p.request_headers_to_add(), path + ".request_headers_to_add");
  if (!req_add.ok()) return req_add.status();
  auto resp_add = compileHeadersToAdd(p.response_headers_to_add(), path + ".response_headers_to_add");
  if (!resp_add.ok()) return resp_add.status();
  auto req_rm = compileHeadersToRemove(p.request_headers_to_remove(), path + ".request_headers_to_remove");
  if (!req_rm.ok()) return req_rm.status();
  auto resp_rm = compileHeadersToRemove(p.response_headers_to_remove(), path + ".response_headers_to_remove");
  if (!resp_rm.ok()) return resp_rm.status();
  m.request_headers_to_add = std::move(*req_add);
  m.response_headers_to_add = std::move(*resp_add);
  m.request_headers_to_remove = std::move(*req_rm);
  m.response_headers_to_remove = std::move(*resp_rm);
  return m;
}

void appendMutations(HeaderMutations& into, const HeaderMutations& from) {
  auto cat = [](auto& a, const auto& b) { a.insert(a.end(), b.begin(), b.end()); };
  cat(into.request_headers_to_add, from.request_headers_to_add);
  cat(into.request_headers_to_remove, from.request_headers_to_remove);
  cat(into.response_headers_to_add, from.response_headers_to_add);
  cat(into.response_headers_to_remove, from.response_headers_to_remove);
}

// Envoy's RetryStateImpl::parseRetryOn / parseRetryGrpcOn; unknown names are
// ignored, as Envoy does for route configuration.
uint32_t parseRetryOn(const std::string& spec) {
  static const std::map<std::string, uint32_t, std::less<>> kNames = {
      {"5xx", retry_on::k5xx},
      {"gateway-error", retry_on::kGatewayError},
      {"connect-failure", retry_on::kConnectFailure},
      {"retriable-4xx", retry_on::kRetriable4xx},
      {"refused-stream", retry_on::kRefusedStream},
      {"retriable-status-codes", retry_on::kRetriableStatusCodes},
      {"reset", retry_on::kReset},
      {"retriable-headers", retry_on::kRetriableHeaders},
      {"envoy-ratelimited", retry_on::kEnvoyRateLimited},
      {"http3-post-connect-failure", retry_on::kHttp3PostConnectFailure},
      {"reset-before-request", retry_on::kResetBeforeRequest},
      {"cancelled", retry_on::kGrpcCancelled},
      {"deadline-exceeded", retry_on::kGrpcDeadlineExceeded},
      {"resource-exhausted", retry_on::kGrpcResourceExhausted},
      {"unavailable", retry_on::kGrpcUnavailable},
      {"internal", retry_on::kGrpcInternal},
  };
  uint32_t bits = 0;
  for (absl::string_view token : absl::StrSplit(spec, ',')) {
    auto it = kNames.find(absl::StripAsciiWhitespace(token));
    if (it != kNames.end()) bits |= it->second;
  }
  return bits;
}

absl::StatusOr<RetryPolicy> compileRetryPolicy(const v3::RetryPolicy& p, const std::string& path) {
  RetryPolicy r;
  r.retry_on = parseRetryOn(p.retry_on());
  r.retriable_status_codes.assign(p.retriable_status_codes().begin(), p.retriable_status_codes().end());
  if (p.has_num_retries()) r.num_retries = p.num_retries().value();
  if (p.has_per_try_timeout()) r.per_try_timeout = toMs(p.per_try_timeout());
  if (p.has_per_try_idle_timeout()) r.per_try_idle_timeout = toMs(p.per_try_idle_timeout());
  if (p.has_retry_back_off()) {
    const auto& b = p.retry_back_off();
    if (!b.has_base_interval()) return fieldError(path + ".retry_back_off.base_interval", "base_interval is required");
    r.base_interval = toMs(b.base_interval());
    if (r.base_interval.count() <= 0) {
      return fieldError(path + ".retry_back_off.base_interval", "must be greater than 0s");
    }
    r.max_interval = b.has_max_interval() ? toMs(b.max_interval()) : r.base_interval * 10;
    if (r.max_interval < r.base_interval) {
      return fieldError(path + ".retry_back_off.max_interval", "must be greater than or equal to base_interval");
    }
  }
  return r;
}

absl::StatusOr<std::vector<MirrorPolicy>> compileMirrors(
    const google::protobuf::RepeatedPtrField<v3::RouteAction::RequestMirrorPolicy>& list, const std::string& path) {
  std::vector<MirrorPolicy> out;
  for (int i = 0; i < list.size(); ++i) {
    const auto& m = list[i];
    MirrorPolicy p;
    p.cluster = m.cluster();
    p.cluster_header = lower(m.cluster_header());
    if (p.cluster.empty() == p.cluster_header.empty()) {
      return fieldError(absl::StrCat(path, "[", i, "]"), "exactly one of cluster and cluster_header is required");
    }
    if (m.has_runtime_fraction()) p.fraction = fraction(m.runtime_fraction());
    if (m.has_trace_sampled()) p.trace_sampled = m.trace_sampled().value();
    p.disable_shadow_host_suffix_append = m.disable_shadow_host_suffix_append();
    out.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<std::vector<HashPolicy>> compileHashPolicies(
    const google::protobuf::RepeatedPtrField<v3::RouteAction::HashPolicy>& list, const std::string& path) {
  std::vector<HashPolicy> out;
  for (int i = 0; i < list.size(); ++i) {
    const auto& h = list[i];
    const std::string p = absl::StrCat(path, "[", i, "]");
    HashPolicy hp;
    hp.terminal = h.terminal();
    switch (h.policy_specifier_case()) {
      case v3::RouteAction::HashPolicy::kHeader:
        hp.kind = HashPolicy::Kind::Header;
        hp.name = lower(h.header().header_name());
        if (h.header().has_regex_rewrite()) {
          auto re = compileRegex(h.header().regex_rewrite().pattern().regex(), p + ".header.regex_rewrite.pattern.regex");
          if (!re.ok()) return re.status();
          hp.regex = *re;
          hp.substitution = h.header().regex_rewrite().substitution();
        }
        break;
      case v3::RouteAction::HashPolicy::kCookie:
        hp.kind = HashPolicy::Kind::Cookie;
        hp.name = h.cookie().name();
        if (h.cookie().has_ttl()) hp.cookie_ttl = toMs(h.cookie().ttl());
        hp.cookie_path = h.cookie().path();
        break;
      case v3::RouteAction::HashPolicy::kConnectionProperties:
        hp.kind = HashPolicy::Kind::SourceIp;
        break;
      case v3::RouteAction::HashPolicy::kQueryParameter:
        hp.kind = HashPolicy::Kind::QueryParameter;
        hp.name = h.query_parameter().name();
        break;
      case v3::RouteAction::HashPolicy::kFilterState:
        hp.kind = HashPolicy::Kind::FilterState;
        hp.name = h.filter_state().key();
        break;
      default:
        return fieldError(p, "a hash policy needs one of header, cookie, connection_properties, query_parameter or filter_state");
    }
    out.push_back(std::move(hp));
  }
  return out;
}

// Everything a route inherits from its virtual host and route configuration.
struct Inherited {
  const HeaderMutations* vhost_mutations;
  const HeaderMutations* global_mutations;
  bool most_specific_wins;
  const std::optional<RetryPolicy>* vhost_retry;
  const std::vector<MirrorPolicy>* vhost_mirrors;
  const std::vector<MirrorPolicy>* global_mirrors;
  uint32_t max_direct_response_body;
  const ClusterNameChecker* clusters;
};

absl::Status checkCluster(const Inherited& in, const RouteEntry& route, const std::string& cluster,
                          const std::string& path) {
  if (in.clusters == nullptr || in.clusters->exists(cluster)) return absl::OkStatus();
  return fieldError(path, absl::StrCat("route \"", route.name, "\" references unknown cluster \"", cluster, "\""));
}

absl::Status compileMatch(const v3::RouteMatch& m, const std::string& path, RouteEntry& r) {
  r.case_sensitive = !m.has_case_sensitive() || m.case_sensitive().value();
  switch (m.path_specifier_case()) {
    case v3::RouteMatch::kPrefix:
      r.path_kind = RouteEntry::PathKind::Prefix;
      r.path_value = m.prefix();
      break;
    case v3::RouteMatch::kPath:
      r.path_kind = RouteEntry::PathKind::Path;
      r.path_value = m.path();
      break;
    case v3::RouteMatch::kSafeRegex: {
      r.path_kind = RouteEntry::PathKind::Regex;
      auto re = compileRegex(m.safe_regex().regex(), path + ".safe_regex.regex");
      if (!re.ok()) return re.status();
      r.path_regex = *re;
      break;
    }
    case v3::RouteMatch::kPathSeparatedPrefix: {
      const std::string& p = m.path_separated_prefix();
      if (p.empty() || p[0] != '/' || p.find_first_of("?#") != std::string::npos || (p.size() > 1 && p.back() == '/')) {
        return fieldError(path + ".path_separated_prefix",
                          absl::StrCat("\"", p, "\" must start with '/', not end with '/' and contain no '?' or '#'"));
      }
      r.path_kind = RouteEntry::PathKind::PathSeparatedPrefix;
      r.path_value = p;
      break;
    }
    case v3::RouteMatch::kConnectMatcher:
      return fieldError(path + ".connect_matcher", "connect_matcher is not supported");
    case v3::RouteMatch::kPathMatchPolicy:
      return fieldError(path + ".path_match_policy", "path_match_policy is not supported");
    default:
      return fieldError(path, "a route match needs one of prefix, path, safe_regex or path_separated_prefix");
  }
  if (!r.case_sensitive) r.path_value = lower(r.path_value);
  if (m.has_runtime_fraction()) r.runtime_fraction = fraction(m.runtime_fraction());
  for (int i = 0; i < m.headers_size(); ++i) {
    auto h = compileHeaderMatcher(m.headers(i), absl::StrCat(path, ".headers[", i, "]"));
    if (!h.ok()) return h.status();
    r.headers.push_back(std::move(*h));
  }
  for (int i = 0; i < m.query_parameters_size(); ++i) {
    const auto& q = m.query_parameters(i);
    const std::string qp = absl::StrCat(path, ".query_parameters[", i, "]");
    QueryParameterMatcher out;
    out.name = q.name();
    if (out.name.empty()) return fieldError(qp + ".name", "a query parameter matcher needs a name");
    if (q.has_string_match()) {
      auto sm = compileStringMatcher(q.string_match(), qp + ".string_match");
      if (!sm.ok()) return sm.status();
      out.string = std::move(*sm);
    } else if (q.query_parameter_match_specifier_case() == v3::QueryParameterMatcher::kPresentMatch) {
      out.present_match = q.present_match();
    }
    r.query_parameters.push_back(std::move(out));
  }
  if (m.has_grpc()) return fieldError(path + ".grpc", "grpc matching is not supported");
  if (m.has_tls_context()) return fieldError(path + ".tls_context", "tls_context matching is not supported");
  if (m.dynamic_metadata_size() > 0) return fieldError(path + ".dynamic_metadata", "dynamic_metadata matching is not supported");
  return absl::OkStatus();
}

absl::Status compileRouteAction(const v3::RouteAction& a, const std::string& path, const Inherited& in, RouteEntry& r) {
  switch (a.cluster_specifier_case()) {
    case v3::RouteAction::kCluster:
      r.cluster = a.cluster();
      if (r.cluster.empty()) return fieldError(path + ".cluster", "cluster name must not be empty");
      if (auto s = checkCluster(in, r, r.cluster, path + ".cluster"); !s.ok()) return s;
      break;
    case v3::RouteAction::kClusterHeader:
      r.cluster_header = lower(a.cluster_header());
      if (r.cluster_header.empty()) return fieldError(path + ".cluster_header", "cluster_header must not be empty");
      break;
    case v3::RouteAction::kWeightedClusters: {
      const auto& wc = a.weighted_clusters();
      if (wc.has_header_name()) return fieldError(path + ".weighted_clusters.header_name", "header_name is not supported");
      for (int i = 0; i < wc.clusters_size(); ++i) {
        const auto& c = wc.clusters(i);
        const std::string cp = absl::StrCat(path, ".weighted_clusters.clusters[", i, "]");
        WeightedCluster w;
        w.name = c.name();
        w.cluster_header = lower(c.cluster_header());
        if (w.name.empty() == w.cluster_header.empty()) {
          return fieldError(cp, "exactly one of name and cluster_header is required");
        }
        if (!w.name.empty()) {
          if (auto s = checkCluster(in, r, w.name, cp + ".name"); !s.ok()) return s;
        }
        w.weight = c.has_weight() ? c.weight().value() : 0;
        w.host_rewrite_literal = c.host_rewrite_literal();
        auto m = compileMutations(c, cp);
        if (!m.ok()) return m.status();
        w.headers = std::move(*m);
        r.total_cluster_weight += w.weight;
        r.weighted_clusters.push_back(std::move(w));
      }
      if (r.total_cluster_weight == 0) {
        return fieldError(path + ".weighted_clusters", "the sum of the cluster weights must be greater than 0");
      }
      break;
    }
    case v3::RouteAction::kClusterSpecifierPlugin:
    case v3::RouteAction::kInlineClusterSpecifierPlugin:
      return fieldError(path, "cluster specifier plugins are not supported");
    default:
      return fieldError(path, "a route action needs one of cluster, cluster_header or weighted_clusters");
  }
  if (!a.prefix_rewrite().empty() && a.has_regex_rewrite()) {
    return fieldError(path, "specify only one of prefix_rewrite and regex_rewrite");
  }
  if (a.has_path_rewrite_policy()) return fieldError(path + ".path_rewrite_policy", "path_rewrite_policy is not supported");
  r.prefix_rewrite = a.prefix_rewrite();
  if (a.has_regex_rewrite()) {
    auto re = compileRegex(a.regex_rewrite().pattern().regex(), path + ".regex_rewrite.pattern.regex");
    if (!re.ok()) return re.status();
    r.regex_rewrite = *re;
    r.regex_rewrite_substitution = a.regex_rewrite().substitution();
  }
  switch (a.host_rewrite_specifier_case()) {
    case v3::RouteAction::kHostRewriteLiteral:
      r.host_rewrite_literal = a.host_rewrite_literal();
      break;
    case v3::RouteAction::kAutoHostRewrite:
      r.auto_host_rewrite = a.auto_host_rewrite().value();
      break;
    case v3::RouteAction::kHostRewriteHeader:
      r.host_rewrite_header = lower(a.host_rewrite_header());
      break;
    case v3::RouteAction::kHostRewritePathRegex:
      return fieldError(path + ".host_rewrite_path_regex", "host_rewrite_path_regex is not supported");
    default:
      break;
  }
  if (a.has_timeout()) r.timeout = toMs(a.timeout());
  r.high_priority = a.priority() == envoy::config::core::v3::HIGH;
  if (a.has_idle_timeout()) r.idle_timeout = toMs(a.idle_timeout());
  if (a.has_max_stream_duration() && a.max_stream_duration().has_grpc_timeout_header_max()) {
    r.max_grpc_timeout = toMs(a.max_stream_duration().grpc_timeout_header_max());
  } else if (a.has_max_grpc_timeout()) {
    // Still honoured, as Envoy does, for configs written before max_stream_duration.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    r.max_grpc_timeout = toMs(a.max_grpc_timeout());
#pragma GCC diagnostic pop
  }
  if (a.has_retry_policy()) {
    auto rp = compileRetryPolicy(a.retry_policy(), path + ".retry_policy");
    if (!rp.ok()) return rp.status();
    r.retry_policy = std::move(*rp);
  }
  auto hp = compileHashPolicies(a.hash_policy(), path + ".hash_policy");
  if (!hp.ok()) return hp.status();
  r.hash_policy = std::move(*hp);
  if (a.request_mirror_policies_size() > 0) {
    auto mp = compileMirrors(a.request_mirror_policies(), path + ".request_mirror_policies");
    if (!mp.ok()) return mp.status();
    r.request_mirror_policies = std::move(*mp);
    for (size_t i = 0; i < r.request_mirror_policies.size(); ++i) {
      const auto& c = r.request_mirror_policies[i].cluster;
      if (c.empty()) continue;
      if (auto s = checkCluster(in, r, c, absl::StrCat(path, ".request_mirror_policies[", i, "].cluster")); !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status compileRedirect(const v3::RedirectAction& a, const std::string& path, RouteEntry& r) {
  RedirectAction& d = r.redirect;
  if (a.scheme_rewrite_specifier_case() == v3::RedirectAction::kHttpsRedirect) {
    if (a.https_redirect()) d.scheme = "https";
  } else if (a.scheme_rewrite_specifier_case() == v3::RedirectAction::kSchemeRedirect) {
    d.scheme = lower(a.scheme_redirect());
  }
  d.host = a.host_redirect();
  d.port = a.port_redirect();
  if (d.port > 65535) return fieldError(path + ".port_redirect", "must be at most 65535");
  d.path = a.path_redirect();
  d.prefix_rewrite = a.prefix_rewrite();
  if (a.has_regex_rewrite()) {
    auto re = compileRegex(a.regex_rewrite().pattern().regex(), path + ".regex_rewrite.pattern.regex");
    if (!re.ok()) return re.status();
    d.regex = *re;
    d.regex_substitution = a.regex_rewrite().substitution();
  }
  switch (a.response_code()) {
    case v3::RedirectAction::FOUND:
      d.response_code = 302;
      break;
    case v3::RedirectAction::SEE_OTHER:
      d.response_code = 303;
      break;
    case v3::RedirectAction::TEMPORARY_REDIRECT:
      d.response_code = 307;
      break;
    case v3::RedirectAction::PERMANENT_REDIRECT:
      d.response_code = 308;
      break;
    default:
      d.response_code = 301;
      break;
  }
  d.strip_query = a.strip_query();
  return absl::OkStatus();
}

absl::Status compileDirectResponse(const v3::DirectResponseAction& a, const std::string& path, uint32_t max_body,
                                   RouteEntry& r) {
  if (a.status() < 100 || a.status() > 599) {
    return fieldError(path + ".status", absl::StrCat("status ", a.status(), " is not in [100, 599]"));
  }
  r.direct_response.status = a.status();
  if (a.has_body()) {
    const auto& b = a.body();
    switch (b.specifier_case()) {
      case envoy::config::core::v3::DataSource::kInlineString:
        r.direct_response.body = b.inline_string();
        break;
      case envoy::config::core::v3::DataSource::kInlineBytes:
        r.direct_response.body = b.inline_bytes();
        break;
      default:
        return fieldError(path + ".body", "only inline_string and inline_bytes bodies are supported");
    }
    if (r.direct_response.body.size() > max_body) {
      return fieldError(path + ".body", absl::StrCat("response body size is ", r.direct_response.body.size(),
                                                     " bytes; maximum is ", max_body));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RouteEntry>> compileRoute(const v3::Route& route, const std::string& path,
                                                         const VirtualHost* vhost, const Inherited& in) {
  auto r = std::make_unique<RouteEntry>();
  r->name = route.name();
  r->virtual_host = vhost;
  if (!route.has_match()) return fieldError(path + ".match", "a route needs a match");
  if (auto s = compileMatch(route.match(), path + ".match", *r); !s.ok()) return s;
  switch (route.action_case()) {
    case v3::Route::kRoute:
      r->action = RouteEntry::ActionKind::Route;
      if (auto s = compileRouteAction(route.route(), path + ".route", in, *r); !s.ok()) return s;
      break;
    case v3::Route::kRedirect:
      r->action = RouteEntry::ActionKind::Redirect;
      if (auto s = compileRedirect(route.redirect(), path + ".redirect", *r); !s.ok()) return s;
      break;
    case v3::Route::kDirectResponse:
      r->action = RouteEntry::ActionKind::DirectResponse;
      if (auto s = compileDirectResponse(route.direct_response(), path + ".direct_response",
                                         in.max_direct_response_body, *r);
          !s.ok()) {
        return s;
      }
      break;
    default:
      return fieldError(path, "a route needs one of route, redirect or direct_response");
  }
  if (!r->retry_policy.has_value() && r->action == RouteEntry::ActionKind::Route) r->retry_policy = *in.vhost_retry;
  if (r->request_mirror_policies.empty() && r->action == RouteEntry::ActionKind::Route) {
    r->request_mirror_policies = in.vhost_mirrors->empty() ? *in.global_mirrors : *in.vhost_mirrors;
  }
  auto own = compileMutations(route, path);
  if (!own.ok()) return own.status();
  if (in.most_specific_wins) {
    appendMutations(r->header_mutations, *in.global_mutations);
    appendMutations(r->header_mutations, *in.vhost_mutations);
    appendMutations(r->header_mutations, *own);
  } else {
    appendMutations(r->header_mutations, *own);
    appendMutations(r->header_mutations, *in.vhost_mutations);
    appendMutations(r->header_mutations, *in.global_mutations);
  }
  return r;
}

}  // namespace

bool ClusterNameChecker::exists(std::string_view name) const {
  if (fn_) return fn_(name);
  return names_.contains(av(name));
}

bool StringMatcher::match(std::string_view input) const {
  if (kind == Kind::Regex) return re2::RE2::FullMatch(sp(input), *regex);
  std::string_view v = value;
  switch (kind) {
    case Kind::Exact:
      return equalsMaybeIgnoreCase(input, v, ignore_case);
    case Kind::Prefix:
      return input.size() >= v.size() && equalsMaybeIgnoreCase(input.substr(0, v.size()), v, ignore_case);
    case Kind::Suffix:
      return input.size() >= v.size() && equalsMaybeIgnoreCase(input.substr(input.size() - v.size()), v, ignore_case);
    case Kind::Contains:
      if (!ignore_case) return input.find(v) != std::string_view::npos;
      for (size_t i = 0; i + v.size() <= input.size(); ++i) {
        if (http::equalsIgnoreCase(input.substr(i, v.size()), v)) return true;
      }
      return false;
    default:
      return false;
  }
}

// Envoy's HeaderUtility::matchHeaders.
bool HeaderMatcher::matches(const http::HeaderMap& headers) const {
  const auto values = headers.getAll(name);
  if (values.empty() && !treat_missing_as_empty) {
    if (invert) return kind != Kind::Present;
    return kind == Kind::Present && !present;
  }
  std::string joined;
  std::string_view value;
  if (values.size() == 1) {
    value = values[0];
  } else if (values.size() > 1) {
    joined = headers.getJoined(name);
    value = joined;
  }
  bool match = false;
  switch (kind) {
    case Kind::LegacyExact:
      match = string.value.empty() || value == string.value;
      break;
    case Kind::String:
      match = string.match(value);
      break;
    case Kind::Range: {
      int64_t n = 0;
      match = absl::SimpleAtoi(av(value), &n) && n >= range_start && n < range_end;
      break;
    }
    case Kind::Present:
      match = present;
      break;
  }
  return match != invert;
}

bool RouteEntry::matches(const http::HeaderMap& request_headers, std::string_view path_only, std::string_view query,
                         uint64_t random) const {
  if (runtime_fraction.has_value() && !runtime_fraction->enabled(random)) return false;
  switch (path_kind) {
    case PathKind::Prefix:
      if (!startsWith(path_only, path_value, case_sensitive)) return false;
      break;
    case PathKind::Path:
      if (!equalsMaybeIgnoreCase(path_only, path_value, !case_sensitive)) return false;
      break;
    case PathKind::Regex:
      if (!re2::RE2::FullMatch(sp(path_only), *path_regex)) return false;
      break;
    case PathKind::PathSeparatedPrefix:
      if (!startsWith(path_only, path_value, case_sensitive)) return false;
      if (path_only.size() > path_value.size() && path_only[path_value.size()] != '/') return false;
      break;
  }
  for (const auto& h : headers) {
    if (!h.matches(request_headers)) return false;
  }
  for (const auto& q : query_parameters) {
    auto v = queryParam(query, q.name);
    if (!v.has_value()) return false;
    if (q.present_match.has_value()) {
      if (!*q.present_match) return false;
      continue;
    }
    if (q.string.has_value() && !q.string->match(*v)) return false;
  }
  return true;
}

const WeightedCluster* RouteEntry::pickWeightedCluster(uint64_t random) const {
  if (weighted_clusters.empty() || total_cluster_weight == 0) return nullptr;
  const uint64_t selected = random % total_cluster_weight;
  uint64_t end = 0;
  for (const auto& c : weighted_clusters) {
    end += c.weight;
    if (selected < end) return &c;
  }
  return &weighted_clusters.back();
}

const RouteEntry* VirtualHost::route(const http::HeaderMap& headers, uint64_t random) const {
  if (!headers.has(http::headers::kPath)) return nullptr;
  const std::string_view full = headers.path();
  const size_t q = full.find_first_of("?#");
  const std::string_view path_only = full.substr(0, q);
  std::string_view query;
  if (q != std::string_view::npos && full[q] == '?') {
    query = full.substr(q + 1);
    query = query.substr(0, query.find('#'));
  }
  for (const auto& r : routes_) {
    if (r->matches(headers, path_only, query, random)) return r.get();
  }
  return nullptr;
}

absl::StatusOr<std::shared_ptr<const RouteTable>> RouteTable::create(
    const envoy::config::route::v3::RouteConfiguration& config, const std::string& path,
    const ClusterNameChecker* validate_clusters) {
  auto table = std::shared_ptr<RouteTable>(new RouteTable());
  table->name_ = config.name();
  if (config.has_vhds()) return fieldError(path + ".vhds", "vhds is not supported");
  if (config.cluster_specifier_plugins_size() > 0) {
    return fieldError(path + ".cluster_specifier_plugins", "cluster specifier plugins are not supported");
  }
  auto global = compileMutations(config, path);
  if (!global.ok()) return global.status();
  auto global_mirrors = compileMirrors(config.request_mirror_policies(), path + ".request_mirror_policies");
  if (!global_mirrors.ok()) return global_mirrors.status();

  const bool validate = !config.has_validate_clusters() || config.validate_clusters().value();
  const uint32_t max_body = config.has_max_direct_response_body_size_bytes()
                                ? config.max_direct_response_body_size_bytes().value()
                                : 4096;

  // Domain -> (vhost index) for duplicate detection; wildcard maps by length.
  absl::flat_hash_map<std::string, int> seen;
  std::map<size_t, DomainMap, std::greater<size_t>> suffixes, prefixes;
  bool any_port = false;

  for (int i = 0; i < config.virtual_hosts_size(); ++i) {
    const auto& vh = config.virtual_hosts(i);
    const std::string vpath = absl::StrCat(path, ".virtual_hosts[", i, "]");
    auto vhost = std::make_unique<VirtualHost>();
    vhost->name_ = vh.name();
    if (vh.domains_size() == 0) return fieldError(vpath + ".domains", "a virtual host needs at least one domain");
    if (vh.require_tls() != v3::VirtualHost::NONE) return fieldError(vpath + ".require_tls", "require_tls is not supported");

    auto vmut = compileMutations(vh, vpath);
    if (!vmut.ok()) return vmut.status();
    std::optional<RetryPolicy> vretry;
    if (vh.has_retry_policy()) {
      auto rp = compileRetryPolicy(vh.retry_policy(), vpath + ".retry_policy");
      if (!rp.ok()) return rp.status();
      vretry = std::move(*rp);
    }
    auto vmirrors = compileMirrors(vh.request_mirror_policies(), vpath + ".request_mirror_policies");
    if (!vmirrors.ok()) return vmirrors.status();

    const Inherited in{&*vmut,  &*global, config.most_specific_header_mutations_wins(), &vretry, &*vmirrors,
                       &*global_mirrors, max_body, validate ? validate_clusters : nullptr};
    for (int j = 0; j < vh.routes_size(); ++j) {
      auto r = compileRoute(vh.routes(j), absl::StrCat(vpath, ".routes[", j, "]"), vhost.get(), in);
      if (!r.ok()) return r.status();
      vhost->routes_.push_back(std::move(*r));
    }

    for (int d = 0; d < vh.domains_size(); ++d) {
      std::string domain = lower(vh.domains(d));
      const std::string dpath = absl::StrCat(vpath, ".domains[", d, "]");
      if (domain.empty()) return fieldError(dpath, "a domain must not be empty");
      auto [it, inserted] = seen.emplace(domain, i);
      if (!inserted) {
        return fieldError(dpath, absl::StrCat("domain \"", domain, "\" of virtual host \"", vh.name(),
                                              "\" is already used by virtual host \"",
                                              config.virtual_hosts(it->second).name(), "\" (virtual_hosts[",
                                              it->second, "])"));
      }
      vhost->domains_.push_back(domain);
      if (portStart(domain) != std::string::npos) any_port = true;
      if (domain == "*") {
        table->default_ = vhost.get();
      } else if (domain.size() > 1 && domain.front() == '*') {
        suffixes[domain.size() - 1].emplace(domain.substr(1), vhost.get());
      } else if (domain.size() > 1 && domain.back() == '*') {
        prefixes[domain.size() - 1].emplace(domain.substr(0, domain.size() - 1), vhost.get());
      } else {
        table->exact_.emplace(domain, vhost.get());
      }
    }
    table->virtual_hosts_.push_back(std::move(vhost));
  }
  for (auto& [len, m] : suffixes) table->suffix_wildcards_.emplace_back(len, std::move(m));
  for (auto& [len, m] : prefixes) table->prefix_wildcards_.emplace_back(len, std::move(m));
  table->strip_port_ = config.ignore_port_in_host_matching() || !any_port;
  return std::shared_ptr<const RouteTable>(std::move(table));
}

const VirtualHost* RouteTable::findWildcard(const WildcardMaps& maps, std::string_view host, bool suffix) const {
  for (const auto& [len, m] : maps) {
    if (len >= host.size()) continue;  // a wildcard matches at least one character
    auto key = suffix ? host.substr(host.size() - len) : host.substr(0, len);
    auto it = m.find(av(key));
    if (it != m.end()) return it->second;
  }
  return nullptr;
}

const VirtualHost* RouteTable::virtualHost(const http::HeaderMap& request_headers) const {
  if (exact_.empty() && suffix_wildcards_.empty() && prefix_wildcards_.empty()) return default_;
  if (!request_headers.has(http::headers::kAuthority)) return nullptr;
  std::string_view host_value = request_headers.host();
  if (strip_port_) {
    const size_t port = portStart(host_value);
    if (port != std::string_view::npos) host_value = host_value.substr(0, port);
  }
  // Hosts are short: lowercase into a stack buffer to avoid allocating.
  char buf[256];
  std::string heap;
  std::string_view host;
  if (host_value.size() <= sizeof(buf)) {
    for (size_t i = 0; i < host_value.size(); ++i) buf[i] = absl::ascii_tolower(host_value[i]);
    host = std::string_view(buf, host_value.size());
  } else {
    heap = lower(host_value);
    host = heap;
  }
  if (auto it = exact_.find(av(host)); it != exact_.end()) return it->second;
  if (const VirtualHost* v = findWildcard(suffix_wildcards_, host, true)) return v;
  if (const VirtualHost* v = findWildcard(prefix_wildcards_, host, false)) return v;
  return default_;
}

const RouteEntry* RouteTable::route(const http::HeaderMap& request_headers, uint64_t random) const {
  const VirtualHost* vhost = virtualHost(request_headers);
  return vhost == nullptr ? nullptr : vhost->route(request_headers, random);
}

std::string rewritePath(const RouteEntry& entry, std::string_view path) {
  const size_t q = path.find_first_of("?#");
  const std::string_view path_only = path.substr(0, q);
  const std::string_view rest = q == std::string_view::npos ? std::string_view() : path.substr(q);
  if (!entry.prefix_rewrite.empty()) {
    size_t matched = entry.path_kind == RouteEntry::PathKind::Regex ? path_only.size() : entry.path_value.size();
    matched = std::min(matched, path.size());
    return absl::StrCat(entry.prefix_rewrite, av(path.substr(matched)));
  }
  if (entry.regex_rewrite != nullptr) {
    std::string out(path_only);
    re2::RE2::GlobalReplace(&out, *entry.regex_rewrite, entry.regex_rewrite_substitution);
    out.append(rest.data(), rest.size());
    return out;
  }
  return std::string(path);
}

}  // namespace courier::router
