// Tests of the cluster's Redis client (server/cluster/redis_client.h) against
// a real redis-server started by the test (tests/testing/redis_server.h).
#include "server/cluster/redis_client.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/redis_test.h"
#include "tests/testing/scratch_dir.h"

namespace lepton::server {
namespace {

using ::lepton::testing::RedisServer;
using ::lepton::testing::ScratchDir;

class RedisClientTest : public ::lepton::testing::RedisTest {
 protected:
  RedisClient::Options Options() const {
    RedisClient::Options o;
    o.port = redis_->port();
    o.connect_timeout = absl::Seconds(1);
    o.command_timeout = absl::Seconds(1);
    return o;
  }

  std::unique_ptr<RedisClient> Connect() {
    absl::StatusOr<std::unique_ptr<RedisClient>> c =
        RedisClient::Connect(Options());
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }
};

std::vector<std::string> Values(const std::vector<StreamEntry>& entries) {
  std::vector<std::string> values;
  for (const StreamEntry& e : entries) {
    for (const auto& [field, value] : e.fields) values.push_back(value);
  }
  return values;
}

TEST_F(RedisClientTest, StreamEntriesRoundTripBinarySafeAndInOrder) {
  std::unique_ptr<RedisClient> redis = Connect();
  ASSERT_NE(redis, nullptr);
  const std::string binary("a\0b\r\n\xff", 6);
  std::vector<std::string> ids;
  for (const std::string& value :
       {binary, std::string("second"), std::string("third")}) {
    absl::StatusOr<std::string> id = redis->XAdd("c:log", {{"record", value}});
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  }
  absl::StatusOr<std::vector<StreamEntry>> all =
      redis->XRange("c:log", "0", 100);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ(Values(*all),
            (std::vector<std::string>{binary, "second", "third"}));
  EXPECT_EQ((*all)[0].id, ids[0]);
  EXPECT_EQ((*all)[0].fields[0].first, "record");

  absl::StatusOr<std::vector<StreamEntry>> after =
      redis->XRange("c:log", ids[0], 1);  // exclusive, at most one
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(Values(*after), (std::vector<std::string>{"second"}));
  absl::StatusOr<std::vector<StreamEntry>> none =
      redis->XRange("c:log", ids[2], 100);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

TEST_F(RedisClientTest, XReadWaitsForTheNextEntryOrItsBlockTime) {
  std::unique_ptr<RedisClient> reader = Connect();
  std::unique_ptr<RedisClient> writer = Connect();
  ASSERT_NE(reader, nullptr);
  ASSERT_NE(writer, nullptr);
  absl::StatusOr<std::string> first = writer->XAdd("c:log", {{"r", "1"}});
  ASSERT_TRUE(first.ok()) << first.status();

  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<StreamEntry>> empty =
      reader->XRead("c:log", *first, 10, absl::Milliseconds(200));
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));

  std::thread add([&] {
    absl::SleepFor(absl::Milliseconds(100));
    EXPECT_TRUE(writer->XAdd("c:log", {{"r", "2"}}).ok());
  });
  absl::StatusOr<std::vector<StreamEntry>> next =
      reader->XRead("c:log", *first, 10, absl::Seconds(10));
  add.join();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(Values(*next), (std::vector<std::string>{"2"}));
}

TEST_F(RedisClientTest, RedisErrorsAreFailedPreconditionNamingRedis) {
  std::unique_ptr<RedisClient> redis = Connect();
  ASSERT_NE(redis, nullptr);
  ASSERT_TRUE(redis->Command({"SET", "c:plain", "x"}).ok());
  absl::StatusOr<std::string> id = redis->XAdd("c:plain", {{"r", "1"}});
  EXPECT_TRUE(absl::IsFailedPrecondition(id.status())) << id.status();
  EXPECT_TRUE(absl::StartsWith(id.status().message(), "redis: WRONGTYPE"))
      << id.status();
  // The connection stays usable.
  absl::StatusOr<RedisReply> pong = redis->Command({"PING"});
  ASSERT_TRUE(pong.ok()) << pong.status();
  EXPECT_EQ(pong->str, "PONG");
}

TEST_F(RedisClientTest, NoServerIsUnavailable) {
  absl::StatusOr<int> port = ::lepton::testing::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  RedisClient::Options o = Options();
  o.port = *port;
  absl::StatusOr<std::unique_ptr<RedisClient>> c = RedisClient::Connect(o);
  EXPECT_TRUE(absl::IsUnavailable(c.status())) << c.status();
}

TEST_F(RedisClientTest, SurvivesAKillNineOfRedisWithEveryAcknowledgedEntry) {
  std::unique_ptr<RedisClient> redis = Connect();
  ASSERT_NE(redis, nullptr);
  std::vector<std::string> acknowledged;
  for (int i = 0; i < 50; ++i) {
    absl::StatusOr<std::string> id =
        redis->XAdd("c:log", {{"r", absl::StrCat(i)}});
    ASSERT_TRUE(id.ok()) << id.status();
    acknowledged.push_back(absl::StrCat(i));
  }
  redis_->Kill();
  // While Redis is down: UNAVAILABLE, within the timeouts.
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> down = redis->XAdd("c:log", {{"r", "lost"}});
  EXPECT_TRUE(absl::IsUnavailable(down.status())) << down.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));

  ASSERT_TRUE(redis_->Restart().ok());
  // The same client reconnects by itself; the AOF kept every entry it
  // acknowledged.
  absl::StatusOr<std::vector<StreamEntry>> all =
      redis->XRange("c:log", "0", 1000);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(Values(*all), acknowledged);
}

}  // namespace
}  // namespace lepton::server
