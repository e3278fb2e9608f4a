#include "source/server/listener_factory.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/time_util.h"
#include "source/common/common/field_error.h"
#include "source/common/protobuf/deterministic.h"
#include "source/extensions/extensions.h"
#include "spdlog/spdlog.h"

namespace courier::server {
namespace {

using envoy::config::listener::v3::Listener;

std::string typeOf(const google::protobuf::Any& any) {
  const std::string& url = any.type_url();
  auto slash = url.rfind('/');
  return slash == std::string::npos ? url : url.substr(slash + 1);
}

constexpr char kTlsInspectorName[] = "envoy.filters.listener.tls_inspector";
constexpr char kRawBufferName[] = "envoy.transport_sockets.raw_buffer";
constexpr char kRawBufferType[] = "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";

// A filter chain's transport_socket: TLS, or plaintext (no factory).
absl::StatusOr<network::TransportSocketFactoryConstSharedPtr> createTransportSocket(
    const envoy::config::core::v3::TransportSocket& config, const std::string& path, FactoryContext& context,
    const std::string& stat_prefix) {
  const std::string type = config.has_typed_config() ? typeOf(config.typed_config()) : "";
  if (type == kRawBufferType || (type.empty() && config.name() == kRawBufferName)) {
    return network::TransportSocketFactoryConstSharedPtr();
  }
  const auto& registry = extensions::Registry::get();
  TransportSocketConfigFactory* factory = registry.transportSocket(type, config.name());
  if (factory == nullptr) {
    return fieldError(
        config.has_typed_config() ? path + ".typed_config" : path + ".name",
        absl::StrCat("no transport socket for ",
                     type.empty() ? absl::StrCat("name \"", config.name(), "\"") : absl::StrCat("type \"", type, "\""),
                     " (available: ", kRawBufferName, ", ", absl::StrJoin(registry.transportSocketNames(), ", "), ")"));
  }
  if (!config.has_typed_config()) return fieldError(path + ".typed_config", "is required");
  return factory->createDownstreamFactory(config.typed_config(), context, stat_prefix, path + ".typed_config");
}

absl::StatusOr<std::shared_ptr<const FilterChain>> createFilterChain(
    const envoy::config::listener::v3::FilterChain& config, const std::string& path, FactoryContext& context,
    const std::string& stat_prefix) {
  auto chain = std::make_shared<FilterChain>();
  chain->name = config.name();
  // Deterministic bytes, so the same chain config always gives the same key.
  chain->config_key = protobuf::deterministicBytes(config);
  if (config.has_transport_socket()) {
    auto factory = createTransportSocket(config.transport_socket(), path + ".transport_socket", context, stat_prefix);
    if (!factory.ok()) return factory.status();
    chain->transport_socket_factory = std::move(*factory);
  }
  if (config.filters_size() == 0) return fieldError(path + ".filters", "a filter chain needs at least one filter");
  const auto& registry = extensions::Registry::get();
  for (int i = 0; i < config.filters_size(); ++i) {
    const auto& filter = config.filters(i);
    const std::string fpath = absl::StrCat(path, ".filters[", i, "]");
    const std::string type = filter.has_typed_config() ? typeOf(filter.typed_config()) : "";
    NetworkFilterConfigFactory* factory = registry.networkFilter(type, filter.name());
    if (factory == nullptr) {
      return fieldError(filter.has_typed_config() ? fpath + ".typed_config" : fpath + ".name",
                        absl::StrCat("no network filter for ",
                                     type.empty() ? absl::StrCat("name \"", filter.name(), "\"")
                                                  : absl::StrCat("type \"", type, "\""),
                                     " (available: ", absl::StrJoin(registry.networkFilterNames(), ", "), ")"));
    }
    auto cb = factory->createFilterFactory(filter.typed_config(), context, fpath + ".typed_config");
    if (!cb.ok()) return cb.status();
    chain->filter_factories.push_back(std::move(*cb));
  }
  return std::shared_ptr<const FilterChain>(std::move(chain));
}

absl::StatusOr<ListenerFilterPredicate> createPredicate(
    const envoy::config::listener::v3::ListenerFilterChainMatchPredicate& config, const std::string& path) {
  using Proto = envoy::config::listener::v3::ListenerFilterChainMatchPredicate;
  ListenerFilterPredicate p;
  auto children = [&](const Proto::MatchSet& set, const std::string& spath) -> absl::Status {
    if (set.rules_size() < 2) return fieldError(spath + ".rules", "needs at least 2 rules");
    for (int i = 0; i < set.rules_size(); ++i) {
      auto child = createPredicate(set.rules(i), absl::StrCat(spath, ".rules[", i, "]"));
      if (!child.ok()) return child.status();
      p.rules.push_back(std::move(*child));
    }
    return absl::OkStatus();
  };
  switch (config.rule_case()) {
    case Proto::kOrMatch:
      p.kind = ListenerFilterPredicate::Kind::Or;
      if (auto s = children(config.or_match(), path + ".or_match"); !s.ok()) return s;
      break;
    case Proto::kAndMatch:
      p.kind = ListenerFilterPredicate::Kind::And;
      if (auto s = children(config.and_match(), path + ".and_match"); !s.ok()) return s;
      break;
    case Proto::kNotMatch: {
      p.kind = ListenerFilterPredicate::Kind::Not;
      auto child = createPredicate(config.not_match(), path + ".not_match");
      if (!child.ok()) return child.status();
      p.rules.push_back(std::move(*child));
      break;
    }
    case Proto::kAnyMatch:
      if (!config.any_match()) return fieldError(path + ".any_match", "must be true");
      p.kind = ListenerFilterPredicate::Kind::Any;
      break;
    case Proto::kDestinationPortRange:
      p.kind = ListenerFilterPredicate::Kind::DestinationPortRange;
      p.start = config.destination_port_range().start();
      p.end = config.destination_port_range().end();
      if (p.start > p.end) return fieldError(path + ".destination_port_range", "start must not be after end");
      break;
    default:
      return fieldError(path,
                        "one of or_match, and_match, not_match, any_match or destination_port_range is "
                        "required");
  }
  return p;
}

}  // namespace

absl::StatusOr<ListenerConfigConstSharedPtr> createListener(const Listener& config, const std::string& path,
                                                            FactoryContext& context) {
  auto listener = std::make_shared<ListenerConfig>();
  listener->name = config.name();
  if (!config.has_address() || !config.address().has_socket_address()) {
    return fieldError(path + ".address", "a listener needs a socket_address");
  }
  const auto& sa = config.address().socket_address();
  auto address = network::Address::fromIpPort(sa.address(), sa.port_value());
  if (!address.ok()) return fieldError(path + ".address.socket_address", std::string(address.status().message()));
  listener->address = *address;
  if (listener->name.empty()) listener->name = address->asString();
  const auto& registry = extensions::Registry::get();
  bool has_tls_inspector = false;
  for (int i = 0; i < config.listener_filters_size(); ++i) {
    const auto& filter = config.listener_filters(i);
    const std::string fpath = absl::StrCat(path, ".listener_filters[", i, "]");
    if (filter.has_config_discovery()) {
      return fieldError(fpath + ".config_discovery", "listener filter discovery (ECDS) is not supported");
    }
    std::shared_ptr<const ListenerFilterPredicate> disabled;
    if (filter.has_filter_disabled()) {
      auto predicate = createPredicate(filter.filter_disabled(), fpath + ".filter_disabled");
      if (!predicate.ok()) return predicate.status();
      disabled = std::make_shared<const ListenerFilterPredicate>(std::move(*predicate));
    }
    const std::string type = filter.has_typed_config() ? typeOf(filter.typed_config()) : "";
    ListenerFilterConfigFactory* factory = registry.listenerFilter(type, filter.name());
    if (factory == nullptr) {
      return fieldError(filter.has_typed_config() ? fpath + ".typed_config" : fpath + ".name",
                        absl::StrCat("no listener filter for ",
                                     type.empty() ? absl::StrCat("name \"", filter.name(), "\"")
                                                  : absl::StrCat("type \"", type, "\""),
                                     " (available: ", absl::StrJoin(registry.listenerFilterNames(), ", "), ")"));
    }
    if (factory->name() == kTlsInspectorName) has_tls_inspector = true;
    auto created = factory->createFilter(filter.typed_config(), context, fpath + ".typed_config");
    if (!created.ok()) return created.status();
    listener->listener_filters.push_back({std::move(*created), std::move(disabled)});
  }
  if (config.has_listener_filters_timeout()) {
    const int64_t ms = google::protobuf::util::TimeUtil::DurationToMilliseconds(config.listener_filters_timeout());
    if (ms < 0) return fieldError(path + ".listener_filters_timeout", "must not be negative");
    listener->listener_filters_timeout = std::chrono::milliseconds(ms);
  }
  listener->continue_on_listener_filters_timeout = config.continue_on_listener_filters_timeout();
  if (config.has_enable_reuse_port()) listener->reuse_port = config.enable_reuse_port().value();
  if (config.has_per_connection_buffer_limit_bytes()) {
    listener->per_connection_buffer_limit_bytes = config.per_connection_buffer_limit_bytes().value();
  }
  const std::string stat_prefix = listenerStatPrefix(listener->address, config.stat_prefix());
  std::vector<const envoy::config::listener::v3::FilterChainMatch*> matches;
  std::vector<const FilterChain*> chains;
  for (int i = 0; i < config.filter_chains_size(); ++i) {
    const std::string cpath = absl::StrCat(path, ".filter_chains[", i, "]");
    auto chain = createFilterChain(config.filter_chains(i), cpath, context, stat_prefix + ".");
    if (!chain.ok()) return chain.status();
    matches.push_back(config.filter_chains(i).has_filter_chain_match() ? &config.filter_chains(i).filter_chain_match()
                                                                       : nullptr);
    chains.push_back(chain->get());
    listener->chains_by_key.emplace(absl::string_view((*chain)->config_key), chain->get());
    listener->filter_chains.push_back(std::move(*chain));
  }
  auto matcher = FilterChainMatcher::create(matches, chains, path + ".filter_chains");
  if (!matcher.ok()) return matcher.status();
  listener->matcher = std::move(*matcher);
  if (listener->matcher.needsTlsInspector() && !has_tls_inspector) {
    // As Envoy: chains that match on SNI, ALPN or "tls" get a tls_inspector
    // even when the listener does not list one.
    spdlog::warn(
        "{}: filter_chain_match uses server_names, application_protocols or transport_protocol \"tls\" "
        "without a tls_inspector listener filter; adding one",
        path);
    ListenerFilterConfigFactory* factory = registry.listenerFilter("", kTlsInspectorName);
    if (factory != nullptr) {
      auto created = factory->createFilter(google::protobuf::Any(), context, path + ".listener_filters");
      if (!created.ok()) return created.status();
      listener->listener_filters.insert(listener->listener_filters.begin(), {std::move(*created), nullptr});
    }
  }
  if (config.has_default_filter_chain()) {
    auto chain =
        createFilterChain(config.default_filter_chain(), path + ".default_filter_chain", context, stat_prefix + ".");
    if (!chain.ok()) return chain.status();
    listener->default_filter_chain = std::move(*chain);
  }
  if (listener->filter_chains.empty() && listener->default_filter_chain == nullptr) {
    return fieldError(path + ".filter_chains", "a listener needs a filter chain or a default_filter_chain");
  }
  listener->stats = std::make_shared<ListenerStats>(context.stats, stat_prefix);
  return ListenerConfigConstSharedPtr(std::move(listener));
}

}  // namespace courier::server
