#include "source/common/stats/stats_render.h"

#include <re2/re2.h>

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace courier::stats {
namespace {

RenderParams withFilter(const std::string& regex) {
  RenderParams p;
  p.filter = std::make_shared<re2::RE2>(regex);
  return p;
}

TEST(RenderTextTest, CountersAndGaugesSortedTogetherThenHistograms) {
  Store store;
  store.counter("cluster.b.upstream_cx_total").add(3);
  store.gauge("cluster.a.membership_total").set(2);
  store.counter("server.c").inc();
  store.histogram("cluster.a.upstream_rq_time").recordValue(1);
  store.mergeHistograms();
  EXPECT_EQ(renderText(store, {}),
            "cluster.a.membership_total: 2\n"
            "cluster.b.upstream_cx_total: 3\n"
            "server.c: 1\n"
            "cluster.a.upstream_rq_time: P0(1,1) P25(1.025,1.025) P50(1.05,1.05) "
            "P75(1.075,1.075) P90(1.09,1.09) P95(1.095,1.095) P99(1.099,1.099) "
            "P99.5(1.0995,1.0995) P99.9(1.0999,1.0999) P100(1.1,1.1)\n");
}

TEST(RenderTextTest, HistogramWithoutSamplesSaysNoRecordedValues) {
  Store store;
  store.histogram("server.h");
  EXPECT_EQ(renderText(store, {}), "server.h: No recorded values\n");
}

TEST(RenderTextTest, FilterIsAnRe2Search) {
  Store store;
  store.counter("cluster.a.upstream_cx_total");
  store.counter("cluster.b.upstream_cx_total");
  store.counter("server.live");
  EXPECT_EQ(renderText(store, withFilter("upstream_cx")),
            "cluster.a.upstream_cx_total: 0\ncluster.b.upstream_cx_total: 0\n");
  EXPECT_EQ(renderText(store, withFilter("^server")), "server.live: 0\n");
}

TEST(RenderTextTest, UsedOnlySkipsNeverWrittenStats) {
  Store store;
  store.counter("a.unused");
  store.counter("a.used").add(0);
  store.gauge("a.gauge_unused");
  store.histogram("a.hist_unused");
  store.histogram("a.hist_recorded_not_merged").recordValue(3);
  RenderParams p;
  p.used_only = true;
  EXPECT_EQ(renderText(store, p), "a.used: 0\n");
}

TEST(RenderTextTest, TypeSelectsOneKind) {
  Store store;
  store.counter("c").inc();
  store.gauge("g").set(1);
  store.histogram("h");
  RenderParams p;
  p.type = StatsType::Gauges;
  EXPECT_EQ(renderText(store, p), "g: 1\n");
  p.type = StatsType::Counters;
  EXPECT_EQ(renderText(store, p), "c: 1\n");
  p.type = StatsType::Histograms;
  EXPECT_EQ(renderText(store, p), "h: No recorded values\n");
  p.type = StatsType::TextReadouts;
  EXPECT_EQ(renderText(store, p), "");
}

TEST(RenderTextTest, CumulativeBuckets) {
  Store store;
  store.histogram("h").recordValue(3);
  store.mergeHistograms();
  RenderParams p;
  p.histogram_buckets = HistogramBuckets::Cumulative;
  EXPECT_EQ(renderText(store, p).substr(0, 30), "h: B0.5(0,0) B1(0,0) B5(1,1) B");
}

TEST(RenderJsonTest, CountersGaugesThenHistograms) {
  Store store;
  store.counter("b.c").add(7);
  store.gauge("a.g").set(1);
  store.histogram("h").recordValue(1);
  store.mergeHistograms();
  const std::string v1 = "{\"cumulative\":1,\"interval\":1},";
  EXPECT_EQ(renderJson(store, {}),
            "{\"stats\":[{\"name\":\"a.g\",\"value\":1},{\"name\":\"b.c\",\"value\":7},"
            "{\"histograms\":{\"supported_quantiles\":[0,25,50,75,90,95,99,99.5,99.9,100],"
            "\"computed_quantiles\":[{\"name\":\"h\",\"values\":[" +
                v1 +
                "{\"cumulative\":1.025,\"interval\":1.025},"
                "{\"cumulative\":1.05,\"interval\":1.05},"
                "{\"cumulative\":1.075,\"interval\":1.075},"
                "{\"cumulative\":1.09,\"interval\":1.09},"
                "{\"cumulative\":1.095,\"interval\":1.095},"
                "{\"cumulative\":1.099,\"interval\":1.099},"
                "{\"cumulative\":1.0995,\"interval\":1.0995},"
                "{\"cumulative\":1.0999,\"interval\":1.0999},"
                "{\"cumulative\":1.1,\"interval\":1.1}]}]}}]}");
}

TEST(RenderJsonTest, EmptyIntervalIsNull) {
  Store store;
  store.histogram("h").recordValue(1);
  store.mergeHistograms();
  store.mergeHistograms();
  const std::string json = renderJson(store, {});
  EXPECT_NE(json.find("{\"cumulative\":1,\"interval\":null}"), std::string::npos) << json;
}

TEST(RenderJsonTest, NoHistogramsNoHistogramsEntry) {
  Store store;
  store.counter("c");
  EXPECT_EQ(renderJson(store, {}), "{\"stats\":[{\"name\":\"c\",\"value\":0}]}");
  EXPECT_EQ(renderJson(Store(), {}), "{\"stats\":[]}");
}

TEST(RenderJsonTest, NamesAreEscaped) {
  Store store;
  store.counter("a\"b\\c");
  EXPECT_EQ(renderJson(store, {}), "{\"stats\":[{\"name\":\"a\\\"b\\\\c\",\"value\":0}]}");
}

TEST(RenderJsonTest, CumulativeBucketsMode) {
  Store store;
  store.histogram("h").recordValue(3);
  store.mergeHistograms();
  RenderParams p;
  p.histogram_buckets = HistogramBuckets::Cumulative;
  const std::string json = renderJson(store, p);
  EXPECT_EQ(
      json.rfind("{\"stats\":[{\"histograms\":[{\"name\":\"h\",\"buckets\":[{\"upper_bound\":0.5,"
                 "\"interval\":0,\"cumulative\":0},{\"upper_bound\":1,",
                 0),
      0u)
      << json;
  EXPECT_NE(json.find("{\"upper_bound\":5,\"interval\":1,\"cumulative\":1}"), std::string::npos);
}

TEST(RenderPrometheusTest, CountersAreGroupedByTagExtractedName) {
  Store store;
  store.counter("cluster.b.upstream_cx_total").add(2);
  store.counter("cluster.a.upstream_cx_total").add(1);
  store.counter("server.uptime").add(9);
  EXPECT_EQ(renderPrometheus(store, {}),
            "# TYPE envoy_cluster_upstream_cx_total counter\n"
            "envoy_cluster_upstream_cx_total{envoy_cluster_name=\"a\"} 1\n"
            "envoy_cluster_upstream_cx_total{envoy_cluster_name=\"b\"} 2\n"
            "\n"
            "# TYPE envoy_server_uptime counter\n"
            "envoy_server_uptime{} 9\n"
            "\n");
}

TEST(RenderPrometheusTest, ResponseCodeClassAndPrefixTags) {
  Store store;
  store.counter("http.ingress_http.downstream_rq_2xx").add(5);
  store.gauge("listener.0.0.0.0_10000.downstream_cx_active").set(3);
  EXPECT_EQ(renderPrometheus(store, {}),
            "# TYPE envoy_http_downstream_rq_xx counter\n"
            "envoy_http_downstream_rq_xx{envoy_response_code_class=\"2\","
            "envoy_http_conn_manager_prefix=\"ingress_http\"} 5\n"
            "\n"
            "# TYPE envoy_listener_downstream_cx_active gauge\n"
            "envoy_listener_downstream_cx_active{envoy_listener_address=\"0.0.0.0_10000\"} 3\n"
            "\n");
}

TEST(RenderPrometheusTest, HistogramBucketsSumAndCount) {
  Store store;
  store.histogram("cluster.a.upstream_rq_time").recordValue(1);
  store.mergeHistograms();
  const std::string t = "{envoy_cluster_name=\"a\",";
  const std::string n = "envoy_cluster_upstream_rq_time";
  std::string expected = "# TYPE " + n + " histogram\n";
  const char* bounds[] = {"0.5",   "1",      "5",      "10",      "25",     "50",    "100",
                          "250",   "500",    "1000",   "2500",    "5000",   "10000", "30000",
                          "60000", "300000", "600000", "1800000", "3600000"};
  for (const char* b : bounds) {
    const bool below = std::string(b) != "0.5" && std::string(b) != "1";
    expected += n + "_bucket" + t + "le=\"" + b + "\"} " + (below ? "1" : "0") + "\n";
  }
  expected += n + "_bucket" + t + "le=\"+Inf\"} 1\n";
  expected += n + "_sum{envoy_cluster_name=\"a\"} 1.0500000000000000444089209850063\n";
  expected += n + "_count{envoy_cluster_name=\"a\"} 1\n\n";
  EXPECT_EQ(renderPrometheus(store, {}), expected);
}

TEST(RenderPrometheusTest, UntaggedHistogramHasOnlyLeLabel) {
  Store store;
  store.histogram("server.initialization_time_ms");
  const std::string out = renderPrometheus(store, {});
  EXPECT_NE(out.find("envoy_server_initialization_time_ms_bucket{le=\"0.5\"} 0\n"),
            std::string::npos);
  EXPECT_NE(out.find("envoy_server_initialization_time_ms_sum{} 0\n"), std::string::npos);
}

TEST(RenderPrometheusTest, FilterAndUsedOnly) {
  Store store;
  store.counter("cluster.a.upstream_cx_total").inc();
  store.counter("cluster.a.upstream_cx_none");
  store.counter("server.live").inc();
  RenderParams p = withFilter("cluster");
  p.used_only = true;
  EXPECT_EQ(renderPrometheus(store, p),
            "# TYPE envoy_cluster_upstream_cx_total counter\n"
            "envoy_cluster_upstream_cx_total{envoy_cluster_name=\"a\"} 1\n\n");
}

TEST(RenderPrometheusTest, GroupsOrderTokenByToken) {
  Store store;
  store.counter("a-b.x");
  store.counter("a.x");
  const std::string out = renderPrometheus(store, {});
  EXPECT_LT(out.find("envoy_a_x"), out.find("envoy_a_b_x")) << out;
}

TEST(PrometheusSanitizeTest, NonAlnumBecomesUnderscore) {
  EXPECT_EQ(prometheusSanitize("envoy.cluster_name"), "envoy_cluster_name");
  EXPECT_EQ(prometheusSanitize("a-b:c.d"), "a_b_c_d");
}

}  // namespace
}  // namespace courier::stats
