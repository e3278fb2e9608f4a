#include "source/common/stats/tag_producer.h"

#include <re2/re2.h>

#include <algorithm>
#include <set>
#include <utility>

namespace courier::stats {

namespace {

std::string replaceAll(std::string s, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

// The shorthand Envoy's well_known_names.cc uses in its patterns.
std::string expandRegex(std::string regex) {
  static const std::pair<const char*, const char*> kSubstitutions[] = {
      {"<ADDRESS>", R"((?:(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[[a-fA-F_\d]+\])_\d+))"},
      {"<CIPHER>", R"([\w-]+)"},
      {"<TLS_VERSION>", R"(TLSv\d\.\d)"},
      {"<TAG_VALUE>", R"([^\.]+)"},
      {"<ROUTE_CONFIG_NAME>", R"([\w-\.]+)"},
      {"<LISTENER_OR_CLUSTER_WITH_NAME>", R"((?:listener|cluster)\..*?)"},
  };
  for (const auto& [from, to] : kSubstitutions) regex = replaceAll(std::move(regex), from, to);
  return regex;
}

std::vector<std::string> splitDots(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    out.emplace_back(
        s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

bool isWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Envoy's TagExtractorImplBase::extractRegexPrefix: "^cluster\\." -> "cluster".
std::string regexPrefix(std::string_view regex) {
  if (regex.empty() || regex[0] != '^') return "";
  for (size_t i = 1; i < regex.size(); ++i) {
    if (isWordChar(regex[i])) continue;
    if (i > 1) {
      const bool last_char = i == regex.size() - 1;
      const std::string_view rest = regex.substr(i);
      const bool starts_with_dot = rest.substr(0, 2) == "\\." || rest.substr(0, 6) == "(?=\\.)";
      if ((!last_char && starts_with_dot) || (last_char && regex[i] == '$')) {
        return std::string(regex.substr(1, i - 1));
      }
    }
    break;
  }
  return "";
}

}  // namespace

struct TagProducer::Extractor {
  std::string name;
  std::string prefix;
  bool shares_name = false;

  // Regex form.
  std::unique_ptr<re2::RE2> regex;
  std::string substr;
  std::string negative_match;

  // Tokenized form ("cluster.$.**").
  std::vector<std::string> tokens;
  size_t match_index = 0;

  bool extract(std::string_view stat_name, const std::vector<std::string_view>& input_tokens,
               std::vector<Tag>& tags, std::vector<std::pair<size_t, size_t>>& remove) const {
    if (regex) return extractRegex(stat_name, tags, remove);
    return extractTokens(input_tokens, tags, remove);
  }

  bool extractRegex(std::string_view stat_name, std::vector<Tag>& tags,
                    std::vector<std::pair<size_t, size_t>>& remove) const {
    if (!substr.empty() && stat_name.find(substr) == std::string_view::npos) return false;
    re2::StringPiece input(stat_name.data(), stat_name.size());
    re2::StringPiece remove_part, value_part;
    if (!re2::RE2::PartialMatch(input, *regex, &remove_part, &value_part) || remove_part.empty()) {
      return false;
    }
    // The first group is cut from the name; the second (if any) is the value.
    if (value_part.empty()) value_part = remove_part;
    if (!negative_match.empty() &&
        negative_match == std::string_view(value_part.data(), value_part.size())) {
      return false;
    }
    tags.push_back({name, std::string(value_part.data(), value_part.size())});
    const size_t start = remove_part.data() - stat_name.data();
    remove.emplace_back(start, start + remove_part.size());
    return true;
  }

  // Envoy's TagExtractorTokensImpl: '*' one token, '**' any tokens (at least
  // one at the end), '$' the token that becomes the tag value.
  bool searchTags(const std::vector<std::string_view>& input, size_t input_index,
                  size_t pattern_index, size_t char_index, size_t& start,
                  size_t& match_input_index) const {
    for (; input_index < input.size() && pattern_index < tokens.size();
         ++input_index, ++pattern_index) {
      if (pattern_index == match_index) {
        start = char_index;
        match_input_index = input_index;
        char_index += input[input_index].size() + 1;
        continue;
      }
      const std::string& expected = tokens[pattern_index];
      if (expected == "**") {
        if (pattern_index == tokens.size() - 1) {
          pattern_index = tokens.size();
          input_index = input.size();
          break;
        }
        ++pattern_index;
        for (; input_index < input.size(); ++input_index) {
          if (searchTags(input, input_index, pattern_index, char_index, start, match_input_index)) {
            return true;
          }
          char_index += input[input_index].size() + 1;
        }
        return false;
      }
      if (expected != "*" && expected != input[input_index]) return false;
      char_index += input[input_index].size() + 1;
    }
    return pattern_index == tokens.size() && input_index == input.size();
  }

  bool extractTokens(const std::vector<std::string_view>& input, std::vector<Tag>& tags,
                     std::vector<std::pair<size_t, size_t>>& remove) const {
    size_t start = 0, match_input_index = input.size();
    if (!searchTags(input, 0, 0, 0, start, match_input_index)) return false;
    const std::string_view value = input[match_input_index];
    size_t end = start + value.size();
    // Remove the value with the dot after it, or before it if it is last.
    if (match_input_index < input.size() - 1) {
      ++end;
    } else if (start > 0) {
      --start;
    }
    tags.push_back({name, std::string(value)});
    remove.emplace_back(start, end);
    return true;
  }
};

TagProducer::TagProducer() {
  // Order and patterns as Envoy's TagNameValues (regexes first, then the
  // tokenized patterns); comments use Envoy's notation: () is captured.

  // *_rq(_<response_code>)
  addRe2("envoy.response_code", R"(_rq(_(\d{3}))$)", "_rq_");
  // *_rq_(<response_code_class>)xx
  addRe2("envoy.response_code_class", R"(_rq_((\d))xx$)", "_rq_");
  // http.[<stat_prefix>.]dynamodb.table.[<table_name>.]capacity.[<operation_name>.](__partition_id=<id>)
  addRe2(
      "envoy.dynamo_partition_id",
      R"(^http\.<TAG_VALUE>\.dynamodb\.table\.<TAG_VALUE>\.capacity\.<TAG_VALUE>(\.__partition_id=(\w{7}))$)",
      ".dynamodb.table.");
  // http.[<stat_prefix>.]dynamodb.operation.(<operation_name>.)*
  addRe2(
      "envoy.dynamo_operation",
      R"(^http\.<TAG_VALUE>\.dynamodb.(?:operation|table\.<TAG_VALUE>\.capacity)(\.(<TAG_VALUE>))(?:\.|$))",
      ".dynamodb.");
  // http.[<stat_prefix>.]dynamodb.table.(<table_name>.)* or ...dynamodb.error.(<table_name>.)*
  addRe2("envoy.dynamo_table", R"(^http\.<TAG_VALUE>\.dynamodb.(?:table|error)\.((<TAG_VALUE>)\.))",
         ".dynamodb.");
  // listener.[<address>.]ssl.ciphers.(<cipher>)
  addRe2("envoy.ssl_cipher", R"(^listener\..*?\.ssl\.ciphers(\.(<CIPHER>))$)", ".ssl.ciphers.");
  // (listener|cluster).[<name>.]ssl.curves.(<curve>)
  addRe2("envoy.ssl_curve", R"(^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.curves(\.(<CIPHER>))$)",
         ".ssl.curves.");
  // (listener|cluster).[<name>.]ssl.sigalgs.(<algorithm>)
  addRe2("envoy.ssl_sigalg", R"(^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.sigalgs(\.(<CIPHER>))$)",
         ".ssl.sigalgs.");
  // (listener|cluster).[<name>.]ssl.versions.(<version>)
  addRe2("envoy.ssl_version",
         R"(^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.versions(\.(<TLS_VERSION>))$)",
         ".ssl.versions.");
  // cluster.[<cluster_name>.]ssl.ciphers.(<cipher>)
  addRe2("cipher_suite", R"(^cluster\.<TAG_VALUE>\.ssl\.ciphers(\.(<CIPHER>))$)", ".ssl.ciphers.");
  // listener.[<address>.]http.(<stat_prefix>.)*
  addRe2("envoy.http_conn_manager_prefix", R"(^listener\..*?\.http\.((<TAG_VALUE>)\.))", ".http.");
  // listener.<address|stat_prefix>.(worker_<id>.)*, listener_manager.(worker_<id>.)*,
  // server.(worker_<id>.)*
  addRe2(
      "envoy.worker_id",
      R"(^(?:listener\.(?:<ADDRESS>|<TAG_VALUE>)\.|server\.|listener_manager\.)worker_((\d+)\.))");
  // listener.(<address|stat_prefix>.)*, but not the admin listener
  addRe2("envoy.listener_address", R"(^listener\.((<ADDRESS>|<TAG_VALUE>)\.))", "", "admin");
  // http.[<stat_prefix>.]rds.(<route_config_name>.)<base_stat>
  addRe2("envoy.rds_route_config", R"(^http\.<TAG_VALUE>\.rds\.((<ROUTE_CONFIG_NAME>)\.)\w+?$)",
         ".rds.");

  addTokenized("envoy.mongo_callsite", "mongo.*.collection.*.callsite.$.query.**");
  addTokenized("envoy.mongo_collection", "mongo.*.collection.$.**.query.*");
  addTokenized("envoy.mongo_cmd", "mongo.*.cmd.$.**");
  addTokenized("envoy.grpc_bridge_method", "cluster.*.grpc.*.$.**");
  addTokenized("envoy.http_user_agent", "http.*.user_agent.$.**");
  addTokenized("envoy.virtual_cluster", "vhost.*.vcluster.$.**");
  addTokenized("envoy.fault_downstream_cluster", "http.*.fault.$.**");
  addTokenized("envoy.grpc_bridge_service", "cluster.*.grpc.$.**");
  addTokenized("envoy.tcp_prefix", "tcp.$.**");
  addTokenized("envoy.udp_prefix", "udp.$.**");
  addTokenized("envoy.clientssl_prefix", "auth.clientssl.$.**");
  addTokenized("envoy.ratelimit_prefix", "ratelimit.$.**");
  addTokenized("envoy.cluster_name", "cluster.$.**");
  addTokenized("envoy.ext_authz_prefix", "cluster.*.ext_authz.$.**");
  addTokenized("envoy.ext_authz_prefix", "http.*.ext_authz.$.**");
  addTokenized("envoy.http_conn_manager_prefix", "http.$.**");
  addTokenized("envoy.virtual_host", "vhost.$.**");
  addTokenized("envoy.mongo_prefix", "mongo.$.**");
  addTokenized("envoy.route", "vhost.*.route.$.**");
  addTokenized("envoy.thrift_prefix", "thrift.$.**");
  addTokenized("envoy.redis_prefix", "redis.$.**");
  addTokenized("envoy.local_http_ratelimit_prefix", "$.http_local_rate_limit.**");
  addTokenized("envoy.local_network_ratelimit_prefix", "local_rate_limit.$.**");
  addTokenized("envoy.local_listener_ratelimit_prefix", "listener_local_ratelimit.$.**");
  addTokenized("envoy.dns_filter_prefix", "dns_filter.$.**");

  // Names served by more than one extractor take only the first match.
  auto mark = [this](std::unique_ptr<Extractor>& e) { e->shares_name = name_count_[e->name] > 1; };
  for (auto& e : without_prefix_) mark(e);
  for (auto& [prefix, list] : by_prefix_) {
    for (auto& e : list) mark(e);
  }
}

TagProducer::~TagProducer() = default;

void TagProducer::addRe2(const std::string& tag, const std::string& regex,
                         const std::string& substr, const std::string& negative_match) {
  auto e = std::make_unique<Extractor>();
  e->name = tag;
  const std::string expanded = expandRegex(regex);
  e->prefix = regexPrefix(expanded);
  e->regex = std::make_unique<re2::RE2>(expanded);
  e->substr = substr;
  e->negative_match = negative_match;
  add(std::move(e));
}

void TagProducer::addTokenized(const std::string& tag, const std::string& pattern) {
  auto e = std::make_unique<Extractor>();
  e->name = tag;
  e->tokens = splitDots(pattern);
  for (size_t i = 0; i < e->tokens.size(); ++i) {
    if (e->tokens[i] == "$") e->match_index = i;
  }
  const std::string& first = e->tokens[0];
  if (first != "$" && first != "*" && first != "**") e->prefix = first;
  add(std::move(e));
}

void TagProducer::add(std::unique_ptr<Extractor> extractor) {
  ++name_count_[extractor->name];
  if (extractor->prefix.empty()) {
    without_prefix_.push_back(std::move(extractor));
  } else {
    by_prefix_[extractor->prefix].push_back(std::move(extractor));
  }
}

std::string TagProducer::produceTags(std::string_view name, std::vector<Tag>& tags) const {
  std::vector<std::string_view> tokens;
  {
    size_t start = 0;
    while (true) {
      const size_t dot = name.find('.', start);
      tokens.push_back(
          name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }

  std::vector<std::pair<size_t, size_t>> remove;
  std::set<std::string_view> matched_shared_names;
  auto run = [&](const Extractor& e) {
    if (e.shares_name && matched_shared_names.count(e.name) != 0) return;
    if (e.extract(name, tokens, tags, remove) && e.shares_name) {
      matched_shared_names.insert(e.name);
    }
  };
  for (const auto& e : without_prefix_) run(*e);
  const size_t dot = name.find('.');
  if (dot != std::string_view::npos) {
    auto it = by_prefix_.find(name.substr(0, dot));
    if (it != by_prefix_.end()) {
      for (const auto& e : it->second) run(*e);
    }
  }

  if (remove.empty()) return std::string(name);
  // Every extractor matched against the original name; cut the union of ranges.
  std::vector<bool> cut(name.size(), false);
  for (const auto& [start, end] : remove) {
    for (size_t i = start; i < end && i < name.size(); ++i) cut[i] = true;
  }
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size(); ++i) {
    if (!cut[i]) out += name[i];
  }
  return out;
}

const TagProducer& defaultTagProducer() {
  static const TagProducer* producer = new TagProducer();
  return *producer;
}

}  // namespace courier::stats
