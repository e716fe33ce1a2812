// Tests of --cluster's address (server/cluster/cluster_address.h).
#include "server/cluster/cluster_address.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace lepton::server {
namespace {

TEST(ClusterAddressTest, ParsesHostPortAndName) {
  absl::StatusOr<ClusterAddress> a =
      ParseClusterAddress("redis://10.0.0.7:6380/ctr-prod");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "10.0.0.7");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->name, "ctr-prod");
  EXPECT_EQ(a->Key("log:m"), "ctr-prod:log:m");
}

TEST(ClusterAddressTest, DefaultPortAndBracketedIpv6) {
  absl::StatusOr<ClusterAddress> a = ParseClusterAddress("redis://cache/c1");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "cache");
  EXPECT_EQ(a->port, 6379);
  absl::StatusOr<ClusterAddress> b =
      ParseClusterAddress("redis://[::1]:7000/c_2.x");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 7000);
  EXPECT_EQ(b->name, "c_2.x");
}

TEST(ClusterAddressTest, RejectsWhatIsNotAnAddressNamingTheFault) {
  const struct {
    const char* url;
    const char* fault;
  } cases[] = {
      {"http://h:1/c", "the scheme must be redis://"},
      {"redis://h:1", "no cluster name"},
      {"redis://h:1/", "the cluster name must have 1 to 64 characters"},
      {"redis://:1/c", "no host"},
      {"redis://h:0/c", "a bad port \"0\""},
      {"redis://h:65536/c", "a bad port \"65536\""},
      {"redis://h:x/c", "a bad port \"x\""},
      {"redis://[::1/c", "an unclosed ["},
      {"redis://h:1/a:b", "may hold only A-Z a-z 0-9 _ . -"},
      {"redis://h:1/a/b", "may hold only A-Z a-z 0-9 _ . -"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<ClusterAddress> a = ParseClusterAddress(c.url);
    ASSERT_FALSE(a.ok()) << c.url;
    EXPECT_TRUE(absl::IsInvalidArgument(a.status())) << a.status();
    EXPECT_TRUE(absl::StartsWith(a.status().message(), "cluster: "))
        << a.status();
    EXPECT_TRUE(absl::StrContains(a.status().message(), c.fault))
        << c.url << ": " << a.status();
  }
  EXPECT_FALSE(
      ParseClusterAddress(absl::StrCat("redis://h/", std::string(65, 'n')))
          .ok());
}

}  // namespace
}  // namespace lepton::server
