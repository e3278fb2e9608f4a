// Choosing a filter chain per connection: SNI over many chains (exact and
// wildcard names, as an edge proxy with one chain per host has), and source
// prefixes, against the lookup tables built once per listener.
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "source/server/filter_chain_matcher.h"
#include "source/server/listener_config.h"

namespace courier::server {
namespace {

using envoy::config::listener::v3::FilterChainMatch;

struct Setup {
  std::vector<std::unique_ptr<FilterChainMatch>> matches;
  std::vector<std::unique_ptr<FilterChain>> chains;
  FilterChainMatcher matcher;
  explicit Setup(int hosts) {
    std::vector<const FilterChainMatch*> m;
    std::vector<const FilterChain*> c;
    for (int i = 0; i < hosts; ++i) {
      auto match = std::make_unique<FilterChainMatch>();
      match->add_server_names("host" + std::to_string(i) + ".example.com");
      match->add_server_names("*.tenant" + std::to_string(i) + ".example.com");
      auto* range = match->add_source_prefix_ranges();
      range->set_address_prefix("10." + std::to_string(i % 256) + ".0.0");
      range->mutable_prefix_len()->set_value(16);
      m.push_back(match.get());
      matches.push_back(std::move(match));
      chains.push_back(std::make_unique<FilterChain>());
      c.push_back(chains.back().get());
    }
    matcher = std::move(*FilterChainMatcher::create(m, c, "filter_chains"));
  }
};

void BM_MatchSni(benchmark::State& state) {
  const int hosts = static_cast<int>(state.range(0));
  Setup setup(hosts);
  auto local = *network::Address::fromIpPort("127.0.0.1", 443);
  auto remote = *network::Address::fromIpPort("10." + std::to_string((hosts / 2) % 256) + ".1.1", 40000);
  const std::string exact = "host" + std::to_string(hosts / 2) + ".example.com";
  const std::string wildcard = "api.tenant" + std::to_string(hosts / 3) + ".example.com";
  std::vector<std::string> alpn = {"h2", "http/1.1"};
  size_t found = 0;
  bool flip = false;
  for (auto _ : state) {
    ConnectionMatchInfo info;
    info.local = &local;
    info.remote = &remote;
    info.server_name = flip ? exact : wildcard;
    info.transport_protocol = "tls";
    info.application_protocols = &alpn;
    found += setup.matcher.match(info) != nullptr;
    flip = !flip;
  }
  benchmark::DoNotOptimize(found);
}
BENCHMARK(BM_MatchSni)->Arg(1)->Arg(100)->Arg(10000);

// Compiling the tables (main thread, once per listener update).
void BM_Compile(benchmark::State& state) {
  for (auto _ : state) {
    Setup setup(static_cast<int>(state.range(0)));
    benchmark::DoNotOptimize(setup.matcher.needsTlsInspector());
  }
}
BENCHMARK(BM_Compile)->Arg(100)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace courier::server

BENCHMARK_MAIN();
