#include "source/common/stats/tag_producer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace courier::stats {
namespace {

struct Extracted {
  std::string name;
  std::vector<Tag> tags;
};

Extracted extract(const std::string& name) {
  static const TagProducer producer;
  Extracted out;
  out.name = producer.produceTags(name, out.tags);
  return out;
}

TEST(TagProducerTest, ClusterName) {
  const Extracted e = extract("cluster.backend.upstream_cx_total");
  EXPECT_EQ(e.name, "cluster.upstream_cx_total");
  EXPECT_EQ(e.tags, (std::vector<Tag>{{"envoy.cluster_name", "backend"}}));
}

TEST(TagProducerTest, ResponseCodeClassComesBeforePrefixTags) {
  const Extracted e = extract("http.ingress_http.downstream_rq_2xx");
  EXPECT_EQ(e.name, "http.downstream_rq_xx");
  EXPECT_EQ(e.tags, (std::vector<Tag>{{"envoy.response_code_class", "2"},
                                      {"envoy.http_conn_manager_prefix", "ingress_http"}}));
}

TEST(TagProducerTest, ResponseCode) {
  const Extracted e = extract("cluster.backend.upstream_rq_503");
  EXPECT_EQ(e.name, "cluster.upstream_rq");
  EXPECT_EQ(e.tags,
            (std::vector<Tag>{{"envoy.response_code", "503"}, {"envoy.cluster_name", "backend"}}));
}

TEST(TagProducerTest, ListenerIpv4Address) {
  const Extracted e = extract("listener.0.0.0.0_10000.downstream_cx_total");
  EXPECT_EQ(e.name, "listener.downstream_cx_total");
  EXPECT_EQ(e.tags, (std::vector<Tag>{{"envoy.listener_address", "0.0.0.0_10000"}}));
}

TEST(TagProducerTest, ListenerIpv6Address) {
  const Extracted e = extract("listener.[__1]_80.downstream_cx_active");
  EXPECT_EQ(e.name, "listener.downstream_cx_active");
  EXPECT_EQ(e.tags, (std::vector<Tag>{{"envoy.listener_address", "[__1]_80"}}));
}

TEST(TagProducerTest, ListenerStatPrefix) {
  const Extracted e = extract("listener.my_listener.downstream_cx_total");
  EXPECT_EQ(e.tags, (std::vector<Tag>{{"envoy.listener_address", "my_listener"}}));
}

TEST(TagProducerTest, AdminListenerIsNotTagged) {
  const Extracted e = extract("listener.admin.downstream_cx_total");
  EXPECT_EQ(e.name, "listener.admin.downstream_cx_total");
  EXPECT_TRUE(e.tags.empty());
}

TEST(TagProducerTest, ListenerHttpPrefixAndAddress) {
  const Extracted e = extract("listener.0.0.0.0_80.http.ingress.downstream_rq_completed");
  EXPECT_EQ(e.name, "listener.http.downstream_rq_completed");
  EXPECT_EQ(e.tags, (std::vector<Tag>{{"envoy.http_conn_manager_prefix", "ingress"},
                                      {"envoy.listener_address", "0.0.0.0_80"}}));
}

TEST(TagProducerTest, TcpProxyPrefix) {
  const Extracted e = extract("tcp.ingress_tcp.downstream_cx_total");
  EXPECT_EQ(e.name, "tcp.downstream_cx_total");
  EXPECT_EQ(e.tags, (std::vector<Tag>{{"envoy.tcp_prefix", "ingress_tcp"}}));
}

TEST(TagProducerTest, WorkerId) {
  const Extracted e = extract("listener_manager.worker_1.dispatcher.loop_duration_us");
  // As Envoy: only the id goes, the "worker_" stays in the name.
  EXPECT_EQ(e.name, "listener_manager.worker_dispatcher.loop_duration_us");
  EXPECT_EQ(e.tags, (std::vector<Tag>{{"envoy.worker_id", "1"}}));
}

TEST(TagProducerTest, ServerAndManagersAreUntagged) {
  for (const char* name : {"server.live", "server.uptime", "cluster_manager.active_clusters",
                           "listener_manager.total_listeners_active"}) {
    const Extracted e = extract(name);
    EXPECT_EQ(e.name, name);
    EXPECT_TRUE(e.tags.empty()) << name;
  }
}

TEST(TagProducerTest, VirtualHostAndVirtualCluster) {
  const Extracted e = extract("vhost.local.vcluster.other.upstream_rq_retry");
  EXPECT_EQ(e.name, "vhost.vcluster.upstream_rq_retry");
  EXPECT_EQ(e.tags, (std::vector<Tag>{{"envoy.virtual_cluster", "other"},
                                      {"envoy.virtual_host", "local"}}));
}

TEST(TagProducerTest, RdsRouteConfigNameMayHoldDots) {
  const Extracted e = extract("http.ingress.rds.my.routes.update_success");
  EXPECT_EQ(e.name, "http.rds.update_success");
  EXPECT_EQ(e.tags, (std::vector<Tag>{{"envoy.rds_route_config", "my.routes"},
                                      {"envoy.http_conn_manager_prefix", "ingress"}}));
}

TEST(TagProducerTest, SslCipherOnCluster) {
  const Extracted e = extract("cluster.backend.ssl.ciphers.ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(e.name, "cluster.ssl.ciphers");
  EXPECT_EQ(e.tags, (std::vector<Tag>{{"cipher_suite", "ECDHE-RSA-AES128-GCM-SHA256"},
                                      {"envoy.cluster_name", "backend"}}));
}

TEST(TagProducerTest, SingleTokenNameIsUntouched) {
  const Extracted e = extract("cluster");
  EXPECT_EQ(e.name, "cluster");
  EXPECT_TRUE(e.tags.empty());
}

}  // namespace
}  // namespace courier::stats
