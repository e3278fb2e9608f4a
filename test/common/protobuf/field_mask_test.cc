#include "source/common/protobuf/field_mask.h"

#include "envoy/admin/v3/config_dump.pb.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "gtest/gtest.h"

namespace courier::protobuf {
namespace {

using envoy::admin::v3::ClustersConfigDump;
using envoy::config::cluster::v3::Cluster;

ClustersConfigDump dump() {
  ClustersConfigDump d;
  d.set_version_info("v7");
  for (const char* name : {"a", "b"}) {
    Cluster c;
    c.set_name(name);
    c.mutable_connect_timeout()->set_seconds(3);
    auto* s = d.add_static_clusters();
    s->mutable_cluster()->PackFrom(c);
    s->mutable_last_updated()->set_seconds(100);
  }
  return d;
}

TEST(FieldMaskTest, ParsesCommaSeparatedDottedPaths) {
  FieldMask m = parseFieldMask("static_clusters.cluster.name,,version_info");
  ASSERT_EQ(m.paths.size(), 2u);
  EXPECT_EQ(m.paths[0], (std::vector<std::string>{"static_clusters", "cluster", "name"}));
  EXPECT_EQ(m.paths[1], (std::vector<std::string>{"version_info"}));
  EXPECT_TRUE(parseFieldMask("").empty());
}

TEST(FieldMaskTest, KeepsOnlyNamedFields) {
  ClustersConfigDump d = dump();
  trimMessage(parseFieldMask("version_info"), d);
  EXPECT_EQ(d.version_info(), "v7");
  EXPECT_EQ(d.static_clusters_size(), 0);
}

TEST(FieldMaskTest, APathContinuesIntoAnAnyInEveryRepeatedElement) {
  ClustersConfigDump d = dump();
  trimMessage(parseFieldMask("static_clusters.cluster.name"), d);
  EXPECT_TRUE(d.version_info().empty());
  ASSERT_EQ(d.static_clusters_size(), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_FALSE(d.static_clusters(i).has_last_updated());
    Cluster c;
    ASSERT_TRUE(d.static_clusters(i).cluster().UnpackTo(&c));
    EXPECT_EQ(c.name(), i == 0 ? "a" : "b");
    EXPECT_FALSE(c.has_connect_timeout());
  }
}

TEST(FieldMaskTest, AWholeFieldIsKeptAndAnEmptyMaskChangesNothing) {
  ClustersConfigDump d = dump();
  trimMessage(parseFieldMask("static_clusters"), d);
  ASSERT_EQ(d.static_clusters_size(), 2);
  EXPECT_TRUE(d.static_clusters(0).has_last_updated());
  ClustersConfigDump untouched = dump();
  trimMessage(parseFieldMask(""), untouched);
  EXPECT_EQ(untouched.DebugString(), dump().DebugString());
}

}  // namespace
}  // namespace courier::protobuf
