// RedisTest: a GoogleTest fixture that gives each test a redis-server of its
// own (redis_server.h) on a free loopback port, with its data in the test's
// scratch directory (scratch_dir_fixture.h), and stops it after the test.
//
//   class ClusterTest : public testing::RedisTest {};
//   TEST_F(ClusterTest, Works) { ... redis_->port() ... redis_->Kill(); ... }
//
// Thread safety: used by the test's own thread, as a fixture is.
#ifndef LEPTON_TESTS_TESTING_REDIS_TEST_H_
#define LEPTON_TESTS_TESTING_REDIS_TEST_H_

#include <gtest/gtest.h>

#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/scratch_dir_fixture.h"

namespace lepton::testing {

class RedisTest : public ScratchDirTest {
 protected:
  void SetUp() override {
    ScratchDirTest::SetUp();
    if (HasFatalFailure()) return;
    absl::StatusOr<std::unique_ptr<RedisServer>> redis =
        RedisServer::Start(Path("redis"));
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
  }
  void TearDown() override {
    redis_.reset();  // killed before its directory goes
    ScratchDirTest::TearDown();
  }

  std::unique_ptr<RedisServer> redis_;
};

}  // namespace lepton::testing

#endif  // LEPTON_TESTS_TESTING_REDIS_TEST_H_
