// Envoy's default tag extraction: turns "cluster.backend.upstream_rq_2xx" into
// the tag-extracted name "cluster.upstream_rq_xx" plus tags
// {envoy.response_code_class=2, envoy.cluster_name=backend}, with the same
// patterns, order and rules as Envoy's well_known_names.cc and TagProducerImpl.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "source/common/stats/stats.h"

namespace re2 {
class RE2;
}

namespace courier::stats {

class TagProducer {
 public:
  // Builds Envoy's default extractors (use_all_default_tags: true).
  TagProducer();
  ~TagProducer();

  // Appends the tags found in `name` and returns the name with them removed.
  std::string produceTags(std::string_view name, std::vector<Tag>& tags) const;

 private:
  struct Extractor;
  void addRe2(const std::string& tag, const std::string& regex, const std::string& substr = "",
              const std::string& negative_match = "");
  void addTokenized(const std::string& tag, const std::string& pattern);
  void add(std::unique_ptr<Extractor> extractor);

  // As Envoy: extractors whose pattern starts with a literal first token run
  // only for names with that first token; the rest run for every name.
  std::vector<std::unique_ptr<Extractor>> without_prefix_;
  std::map<std::string, std::vector<std::unique_ptr<Extractor>>, std::less<>> by_prefix_;
  std::map<std::string, int> name_count_;
};

// Envoy's default extractors, built once and shared (read-only).
const TagProducer& defaultTagProducer();

}  // namespace courier::stats
