// Tests of the cluster's SharedLog on Redis Streams
// (server/cluster/redis_shared_log.h) against a real redis-server started by
// the test (tests/testing/redis_server.h): every method, two clusters on one
// Redis, a kill -9 and restart of Redis under one log, concurrent callers,
// and a replica quorum that no replica can meet.
#include "server/cluster/redis_shared_log.h"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
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

class RedisSharedLogTest : public ::lepton::testing::RedisTest {
 protected:
  ClusterAddress Address(const std::string& name = "c1") const {
    return {.host = "127.0.0.1", .port = redis_->port(), .name = name};
  }

  static RedisSharedLog::Options Options() {
    RedisSharedLog::Options o;
    o.connect_timeout = absl::Seconds(1);
    o.command_timeout = absl::Seconds(1);
    return o;
  }

  std::unique_ptr<RedisSharedLog> Connect(
      const std::string& name = "c1",
      const RedisSharedLog::Options& options = Options()) {
    absl::StatusOr<std::unique_ptr<RedisSharedLog>> log =
        RedisSharedLog::Connect(Address(name), options);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *std::move(log) : nullptr;
  }
};

// The ids of a batch that must all have been appended.
std::vector<std::string> Ids(
    const std::vector<absl::StatusOr<std::string>>& results) {
  std::vector<std::string> ids;
  for (const absl::StatusOr<std::string>& id : results) {
    EXPECT_TRUE(id.ok()) << id.status();
    ids.push_back(id.ok() ? *id : "");
  }
  return ids;
}

std::vector<std::string> Payloads(const StreamRecords& stream) {
  std::vector<std::string> payloads;
  for (const LogRecord& r : stream.records) payloads.push_back(r.payload);
  return payloads;
}

// "MS-SEQ" as a pair, to compare ids.
std::pair<uint64_t, uint64_t> IdParts(const std::string& id) {
  const size_t dash = id.find('-');
  return {std::stoull(id.substr(0, dash)), std::stoull(id.substr(dash + 1))};
}

TEST_F(RedisSharedLogTest, AppendGivesIncreasingIdsAndReadReturnsInOrder) {
  std::unique_ptr<RedisSharedLog> log = Connect();
  ASSERT_NE(log, nullptr);
  const std::string binary("a\0b\r\n\xff\0", 7);
  const std::vector<std::string> ids = Ids(log->Append(
      {{"log", binary}, {"log", "second"}, {"log", std::string(1, '\0')}}));
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_LT(IdParts(ids[0]), IdParts(ids[1]));
  EXPECT_LT(IdParts(ids[1]), IdParts(ids[2]));
  // The next batch's ids follow.
  const std::vector<std::string> more = Ids(log->Append({{"log", "fourth"}}));
  EXPECT_LT(IdParts(ids[2]), IdParts(more[0]));
  EXPECT_TRUE(log->Append({}).empty());

  absl::StatusOr<std::vector<StreamRecords>> all =
      log->Read({{"log", "0-0"}}, 100, absl::ZeroDuration());
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].stream, "log");  // without the cluster's prefix
  EXPECT_EQ(Payloads((*all)[0]),
            (std::vector<std::string>{binary, "second", std::string(1, '\0'),
                                      "fourth"}));
  EXPECT_EQ((*all)[0].records[0].id, ids[0]);
  EXPECT_EQ((*all)[0].records[3].id, more[0]);
}

TEST_F(RedisSharedLogTest, ReadsSeveralStreamsEachAfterItsOwnId) {
  std::unique_ptr<RedisSharedLog> log = Connect();
  ASSERT_NE(log, nullptr);
  const std::vector<std::string> ids = Ids(log->Append({{"a", "a1"},
                                                        {"b", "b1"},
                                                        {"a", "a2"},
                                                        {"b", "b2"},
                                                        {"a", "a3"},
                                                        {"c", "c1"}}));
  ASSERT_EQ(ids.size(), 6u);

  // a after a1, b from the start, c after its only record (nothing new),
  // and a stream that does not exist: both omitted.
  absl::StatusOr<std::vector<StreamRecords>> read = log->Read(
      {{"a", ids[0]}, {"b", "0-0"}, {"c", ids[5]}, {"missing", "0-0"}}, 100,
      absl::ZeroDuration());
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].stream, "a");
  EXPECT_EQ(Payloads((*read)[0]), (std::vector<std::string>{"a2", "a3"}));
  EXPECT_EQ((*read)[1].stream, "b");
  EXPECT_EQ(Payloads((*read)[1]), (std::vector<std::string>{"b1", "b2"}));

  // At most max_per_stream of each.
  absl::StatusOr<std::vector<StreamRecords>> one =
      log->Read({{"a", "0-0"}, {"b", "0-0"}}, 1, absl::ZeroDuration());
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->size(), 2u);
  EXPECT_EQ(Payloads((*one)[0]), (std::vector<std::string>{"a1"}));
  EXPECT_EQ(Payloads((*one)[1]), (std::vector<std::string>{"b1"}));

  EXPECT_TRUE(absl::IsInvalidArgument(
      log->Read({{"a", "0-0"}}, 0, absl::ZeroDuration()).status()));
}

TEST_F(RedisSharedLogTest, ReadWaitsUpToWaitThenReturnsNothing) {
  std::unique_ptr<RedisSharedLog> log = Connect();
  ASSERT_NE(log, nullptr);
  const std::vector<std::string> ids = Ids(log->Append({{"log", "1"}}));

  absl::Time start = absl::Now();
  absl::StatusOr<std::vector<StreamRecords>> none = log->Read(
      {{"log", ids[0]}, {"other", "0-0"}}, 10, absl::Milliseconds(300));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));

  // Without a wait, at once.
  start = absl::Now();
  none = log->Read({{"log", ids[0]}}, 10, absl::ZeroDuration());
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(200));

  // Nothing to read at all: still waits (a reader loop does not spin).
  start = absl::Now();
  none = log->Read({}, 10, absl::Milliseconds(100));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(90));
}

TEST_F(RedisSharedLogTest, HeadOfAMissingAndOfAPresentStream) {
  std::unique_ptr<RedisSharedLog> log = Connect();
  ASSERT_NE(log, nullptr);
  absl::StatusOr<StreamHead> missing = log->Head("log");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(missing->last_id, "0-0");
  EXPECT_EQ(missing->entries_added, 0u);

  const std::vector<std::string> ids =
      Ids(log->Append({{"log", "1"}, {"log", "2"}, {"log", "3"}}));
  absl::StatusOr<StreamHead> head = log->Head("log");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->last_id, ids[2]);
  EXPECT_EQ(head->entries_added, 3u);

  // Trimmed records still count; the last id stays when all are trimmed.
  ASSERT_TRUE(log->TrimBefore("log", "99999999999999-0").ok());
  head = log->Head("log");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->last_id, ids[2]);
  EXPECT_EQ(head->entries_added, 3u);

  // A value is not a stream: Redis's WRONGTYPE.
  ASSERT_TRUE(log->Put("value", "x", absl::InfiniteDuration()).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(log->Head("value").status()));
}

TEST_F(RedisSharedLogTest, ClustersOnOneRedisDoNotSeeEachOthersKeys) {
  std::unique_ptr<RedisSharedLog> one = Connect("one");
  std::unique_ptr<RedisSharedLog> two = Connect("two");
  ASSERT_NE(one, nullptr);
  ASSERT_NE(two, nullptr);
  Ids(one->Append({{"log", "from one"}}));
  ASSERT_TRUE(one->Put("key", "one's", absl::InfiniteDuration()).ok());

  absl::StatusOr<std::vector<StreamRecords>> read =
      two->Read({{"log", "0-0"}}, 10, absl::ZeroDuration());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->empty());
  absl::StatusOr<StreamHead> head = two->Head("log");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->entries_added, 0u);
  absl::StatusOr<std::optional<std::string>> value = two->Get("key");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, std::nullopt);
  absl::StatusOr<std::string> put =
      two->PutIfAbsent("key", "two's", absl::InfiniteDuration());
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(*put, "two's");
  ASSERT_TRUE(two->Remove("log").ok());

  // One's keys are as they were, under its prefix.
  value = one->Get("key");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, "one's");
  read = one->Read({{"log", "0-0"}}, 10, absl::ZeroDuration());
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(Payloads((*read)[0]), (std::vector<std::string>{"from one"}));
}

TEST_F(RedisSharedLogTest, PutIfAbsentKeepsTheFirstValue) {
  std::unique_ptr<RedisSharedLog> log = Connect();
  ASSERT_NE(log, nullptr);
  const std::string binary("v\0\xff", 3);
  absl::StatusOr<std::string> first =
      log->PutIfAbsent("digest:1", binary, absl::InfiniteDuration());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, binary);
  absl::StatusOr<std::string> second =
      log->PutIfAbsent("digest:1", "other", absl::InfiniteDuration());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, binary);
  absl::StatusOr<std::optional<std::string>> value = log->Get("digest:1");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, binary);
}

TEST_F(RedisSharedLogTest, PutAllStoresEveryValueAndTakeGivesOneOnce) {
  std::unique_ptr<RedisSharedLog> log = Connect();
  ASSERT_NE(log, nullptr);
  const std::string binary("p\0\xff", 3);
  ASSERT_TRUE(
      log->PutAll({{"p:1", binary}, {"p:2", "two"}}, absl::Seconds(60)).ok());
  absl::StatusOr<std::optional<std::string>> two = log->Get("p:2");
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(*two, "two");
  absl::StatusOr<std::optional<std::string>> taken = log->Take("p:1");
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(*taken, binary);
  taken = log->Take("p:1");
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(*taken, std::nullopt);
  // With a ttl, they expire.
  ASSERT_TRUE(log->PutAll({{"p:3", "3"}}, absl::Milliseconds(100)).ok());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(*log->Take("p:3"), std::nullopt);
}

TEST_F(RedisSharedLogTest, PutReplacesGetAndRemoveAndATtlExpires) {
  std::unique_ptr<RedisSharedLog> log = Connect();
  ASSERT_NE(log, nullptr);
  absl::StatusOr<std::optional<std::string>> value = log->Get("k");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, std::nullopt);

  ASSERT_TRUE(log->Put("k", "1", absl::InfiniteDuration()).ok());
  ASSERT_TRUE(log->Put("k", "2", absl::InfiniteDuration()).ok());
  value = log->Get("k");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, "2");
  ASSERT_TRUE(log->Remove("k").ok());
  value = log->Get("k");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, std::nullopt);
  EXPECT_TRUE(log->Remove("k").ok());  // nothing there: fine

  ASSERT_TRUE(log->Put("short", "x", absl::Milliseconds(200)).ok());
  value = log->Get("short");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, "x");
  absl::SleepFor(absl::Milliseconds(400));
  value = log->Get("short");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, std::nullopt);

  EXPECT_TRUE(
      absl::IsInvalidArgument(log->Put("k", "x", absl::ZeroDuration())));

  // Remove takes a stream too.
  Ids(log->Append({{"log", "1"}}));
  ASSERT_TRUE(log->Remove("log").ok());
  absl::StatusOr<StreamHead> head = log->Head("log");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->last_id, "0-0");
}

TEST_F(RedisSharedLogTest, ALeaseIsRenewedByItsOwnerAndTakenOnlyAfterExpiry) {
  std::unique_ptr<RedisSharedLog> log = Connect();
  ASSERT_NE(log, nullptr);
  const absl::Duration ttl = absl::Milliseconds(500);
  absl::StatusOr<bool> a = log->Lease("leader", "node-a", ttl);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(*a);
  absl::StatusOr<bool> b = log->Lease("leader", "node-b", ttl);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE(*b);

  // node-a renews it past its first expiry; node-b still cannot take it.
  for (int i = 0; i < 4; ++i) {
    absl::SleepFor(absl::Milliseconds(200));
    a = log->Lease("leader", "node-a", ttl);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_TRUE(*a);
    b = log->Lease("leader", "node-b", ttl);
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_FALSE(*b);
  }
  // node-a stops renewing: once it expired, node-b takes it.
  absl::SleepFor(ttl + absl::Milliseconds(200));
  b = log->Lease("leader", "node-b", ttl);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(*b);
  a = log->Lease("leader", "node-a", ttl);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_FALSE(*a);

  EXPECT_TRUE(absl::IsInvalidArgument(
      log->Lease("leader", "node-a", absl::InfiniteDuration()).status()));
}

TEST_F(RedisSharedLogTest, TrimBeforeRemovesTheOlderRecords) {
  std::unique_ptr<RedisSharedLog> log = Connect();
  ASSERT_NE(log, nullptr);
  const std::vector<std::string> ids = Ids(
      log->Append({{"log", "1"}, {"log", "2"}, {"log", "3"}, {"log", "4"}}));
  ASSERT_TRUE(log->TrimBefore("log", ids[2]).ok());
  absl::StatusOr<std::vector<StreamRecords>> read =
      log->Read({{"log", "0-0"}}, 100, absl::ZeroDuration());
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(Payloads((*read)[0]), (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ((*read)[0].records[0].id, ids[2]);

  EXPECT_TRUE(log->TrimBefore("missing", ids[2]).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(log->TrimBefore("log", "not an id")));
}

TEST_F(RedisSharedLogTest, ARedisErrorFailsItsRecordOnly) {
  std::unique_ptr<RedisSharedLog> log = Connect();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Put("plain", "x", absl::InfiniteDuration()).ok());
  std::vector<absl::StatusOr<std::string>> ids =
      log->Append({{"log", "1"}, {"plain", "2"}, {"log", "3"}});
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_TRUE(ids[0].ok()) << ids[0].status();
  EXPECT_TRUE(absl::IsFailedPrecondition(ids[1].status())) << ids[1].status();
  EXPECT_TRUE(absl::StrContains(ids[1].status().message(), "WRONGTYPE"))
      << ids[1].status();
  EXPECT_TRUE(ids[2].ok()) << ids[2].status();
  absl::StatusOr<std::vector<StreamRecords>> read =
      log->Read({{"log", "0-0"}}, 100, absl::ZeroDuration());
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(Payloads((*read)[0]), (std::vector<std::string>{"1", "3"}));
}

TEST_F(RedisSharedLogTest, ConnectWithoutRedisIsUnavailable) {
  absl::StatusOr<int> port = ::lepton::testing::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  ClusterAddress address = Address();
  address.port = *port;
  absl::StatusOr<std::unique_ptr<RedisSharedLog>> log =
      RedisSharedLog::Connect(address, Options());
  EXPECT_TRUE(absl::IsUnavailable(log.status())) << log.status();
}

// Every method, with the status it returned; `n` keeps keys apart.
std::vector<std::pair<std::string, absl::Status>> CallEveryMethod(
    RedisSharedLog& log, int n) {
  const std::string key = absl::StrCat("key", n);
  std::vector<absl::StatusOr<std::string>> appended =
      log.Append({{"log", absl::StrCat("record", n)}});
  return {
      {"Append", appended.at(0).status()},
      {"Read", log.Read({{"log", "0-0"}}, 10, absl::Milliseconds(50)).status()},
      {"Head", log.Head("log").status()},
      {"PutIfAbsent",
       log.PutIfAbsent(key, "v", absl::InfiniteDuration()).status()},
      {"Put", log.Put(key, "w", absl::Seconds(60))},
      {"Get", log.Get(key).status()},
      {"PutAll", log.PutAll({{key, "x"}}, absl::Seconds(60))},
      {"Take", log.Take(key).status()},
      {"Lease",
       log.Lease(absl::StrCat("lease", n), "me", absl::Seconds(60)).status()},
      {"TrimBefore", log.TrimBefore("log", "0-1")},
      {"Remove", log.Remove(key)},
  };
}

TEST_F(RedisSharedLogTest, EveryMethodIsUnavailableWhileRedisIsDown) {
  std::unique_ptr<RedisSharedLog> log = Connect();
  ASSERT_NE(log, nullptr);
  for (const auto& [method, status] : CallEveryMethod(*log, 0)) {
    EXPECT_TRUE(status.ok()) << method << ": " << status;
  }

  redis_->Kill();
  const absl::Time start = absl::Now();
  for (const auto& [method, status] : CallEveryMethod(*log, 1)) {
    EXPECT_TRUE(absl::IsUnavailable(status)) << method << ": " << status;
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));

  // The same log connects again by itself.
  ASSERT_TRUE(redis_->Restart().ok());
  for (const auto& [method, status] : CallEveryMethod(*log, 2)) {
    EXPECT_TRUE(status.ok()) << method << ": " << status;
  }
  absl::StatusOr<std::vector<StreamRecords>> read =
      log->Read({{"log", "0-0"}}, 10, absl::ZeroDuration());
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(Payloads((*read)[0]),
            (std::vector<std::string>{"record0", "record2"}));
}

TEST_F(RedisSharedLogTest, IdleConnectionsOutliveARestartOfRedis) {
  // Redis restarts while the log is idle: its first calls afterwards, on
  // connections Redis closed, succeed (none of them fails for it, not even
  // an Append, whose failure would leave it unknown whether it happened).
  std::unique_ptr<RedisSharedLog> log = Connect();
  ASSERT_NE(log, nullptr);
  for (const auto& [method, status] : CallEveryMethod(*log, 0)) {
    EXPECT_TRUE(status.ok()) << method << ": " << status;
  }
  redis_->Kill();
  ASSERT_TRUE(redis_->Restart().ok());
  for (const auto& [method, status] : CallEveryMethod(*log, 1)) {
    EXPECT_TRUE(status.ok()) << method << ": " << status;
  }
}

TEST_F(RedisSharedLogTest, ABlockingReadHoldsUpNeitherAppendsNorTheRest) {
  std::unique_ptr<RedisSharedLog> log = Connect();
  ASSERT_NE(log, nullptr);
  constexpr int kRecords = 200;
  std::vector<std::string> received;
  std::atomic<bool> reading = false;
  std::thread reader([&] {
    std::string after = "0-0";
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (received.size() < kRecords && absl::Now() < give_up) {
      reading = true;
      absl::StatusOr<std::vector<StreamRecords>> read =
          log->Read({{"log", after}, {"idle", "0-0"}}, 16, absl::Seconds(10));
      ASSERT_TRUE(read.ok()) << read.status();
      for (const StreamRecords& stream : *read) {
        ASSERT_EQ(stream.stream, "log");
        for (const LogRecord& r : stream.records) {
          received.push_back(r.payload);
          after = r.id;
        }
      }
    }
  });
  while (!reading) absl::SleepFor(absl::Milliseconds(1));
  absl::SleepFor(absl::Milliseconds(100));  // the reader is blocked in XREAD

  // Neither waits for the blocked read.
  absl::Time start = absl::Now();
  absl::StatusOr<StreamHead> head = log->Head("log");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  std::vector<std::string> sent;
  for (int i = 0; i < kRecords; i += 4) {
    std::vector<LogAppend> batch;
    for (int j = i; j < i + 4; ++j) {
      sent.push_back(absl::StrCat("record", j));
      batch.push_back({"log", sent.back()});
    }
    start = absl::Now();
    Ids(log->Append(batch));
    EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  }
  reader.join();
  EXPECT_EQ(received, sent);
}

TEST_F(RedisSharedLogTest, AReplicaQuorumThatNoReplicaMeetsIsUnavailable) {
  RedisSharedLog::Options options = Options();
  options.min_replicas = 1;
  options.replica_timeout = absl::Milliseconds(300);
  std::unique_ptr<RedisSharedLog> log = Connect("c1", options);
  ASSERT_NE(log, nullptr);
  const absl::Time start = absl::Now();
  std::vector<absl::StatusOr<std::string>> ids =
      log->Append({{"log", "1"}, {"log", "2"}});
  const absl::Duration took = absl::Now() - start;
  ASSERT_EQ(ids.size(), 2u);
  for (const absl::StatusOr<std::string>& id : ids) {
    EXPECT_TRUE(absl::IsUnavailable(id.status())) << id.status();
    EXPECT_TRUE(absl::StrContains(id.status().message(),
                                  "acknowledged by 0 of 1 replicas"))
        << id.status();
  }
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(1));
  // The records may be in the log: here they are, as the primary took them.
  absl::StatusOr<StreamHead> head = log->Head("log");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->entries_added, 2u);
}

}  // namespace
}  // namespace lepton::server
