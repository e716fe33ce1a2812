// kill -9 rounds of the real lepton_server (tests/integration/crash_harness.h):
// at least 20 rounds of "updates from one thread, SIGKILL at a seeded random
// moment, restart, compare bit for bit with the reference", on one data
// directory, so that later rounds recover from the logs and checkpoints
// earlier recoveries left. Every 4th round runs long enough for the server's
// checkpointer (it looks once a second) to write checkpoints mid-run.
//
// Environment: LEPTON_CRASH_SEED fixes the base seed (random otherwise; it
// is printed), LEPTON_CRASH_ROUNDS raises the round count. Round r uses seed
// base + r; a round depends on the rounds before it, so reproduce with the
// same base seed and at least r + 1 rounds.
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "lepton/v1/lepton.grpc.pb.h"
#include "tests/integration/crash_harness.h"
#include "tests/testing/scratch_dir_fixture.h"
#include "tests/testing/server_process.h"

namespace lepton::testing {
namespace {

TEST(CrashRecoveryTest, KillNineRounds) {
  const uint64_t base = BaseSeed();
  const int rounds = static_cast<int>(
      std::max<uint64_t>(20, EnvU64("LEPTON_CRASH_ROUNDS", 20)));
  TestScratchDir dir("lepton-crash-test");
  ASSERT_FALSE(dir.path().empty());
  Harness h(dir.path(), {"--fsync=always", "--checkpoint_every_updates=7",
                         "--keep_checkpoints=3"});
  ASSERT_NO_FATAL_FAILURE(h.Start());

  v1::ModelSpec logistic;  // SGD with a decaying rate, pure online
  logistic.mutable_optimizer()->set_kind(v1::SGD);
  logistic.mutable_optimizer()->set_learning_rate(0.1f);
  logistic.mutable_optimizer()->set_power_t(0.5f);
  logistic.set_l2(0.001f);
  logistic.set_minibatch_size(1);
  ASSERT_NO_FATAL_FAILURE(
      h.Create({"lr", v1::LOGISTIC_REGRESSION, 20, 0}, logistic));
  v1::ModelSpec softmax;  // AdaGrad, minibatches of 3
  softmax.mutable_optimizer()->set_kind(v1::ADAGRAD);
  softmax.mutable_optimizer()->set_initial_accumulator(0.1f);
  softmax.set_l2(0.01f);
  softmax.set_minibatch_size(3);
  ASSERT_NO_FATAL_FAILURE(
      h.Create({"sm", v1::SOFTMAX_REGRESSION, 20, 4}, softmax));

  size_t total_acked = 0;
  int applied_unacked = 0;
  uint64_t newest_checkpoint = 1;
  const absl::Time start = absl::Now();
  for (int round = 0; round < rounds; ++round) {
    const uint64_t seed = base + static_cast<uint64_t>(round);
    SCOPED_TRACE(absl::StrCat("round ", round, " seed ", seed,
                              " (LEPTON_CRASH_SEED=", base, ")"));
    Rng rng(seed);
    // Mostly a few to ~100 ms; every 4th round past the checkpointer's
    // one-second tick, so checkpoints are written mid-run.
    const absl::Duration delay = round % 4 == 3
                                     ? absl::Milliseconds(1100 + rng.Below(500))
                                     : absl::Milliseconds(3 + rng.Below(98));
    Workload workload(rng.Next(), h.shapes(), absl::StrCat("r", round));
    RoundStats stats;
    RoundHooks hooks;
    hooks.wait_for_kill = [&] { absl::SleepFor(delay); };
    h.KillRound(workload, hooks, &stats);
    total_acked += stats.acked;
    applied_unacked += stats.in_flight_applied ? 1 : 0;
    std::string checkpoints;
    for (const Shape& s : h.shapes()) {
      absl::StatusOr<v1::ModelInfo> info = h.conn().Get(s.name);
      if (!info.ok()) continue;
      absl::StrAppend(&checkpoints, " ", s.name, "@v", info->version(),
                      " ckpts[",
                      absl::StrJoin(info->checkpointed_versions(), ","), "] (",
                      DescribeFiles(ModelDir(h.data_dir(), s.name)), ")");
      if (!info->checkpointed_versions().empty()) {
        newest_checkpoint = std::max<uint64_t>(
            newest_checkpoint, *info->checkpointed_versions().rbegin());
      }
    }
    std::fprintf(
        stderr,
        "crash test: round %d seed %llu: kill after %lld ms, "
        "%zu acked, in flight: %s, restart %lld ms;%s\n",
        round, static_cast<unsigned long long>(seed),
        static_cast<long long>(absl::ToInt64Milliseconds(delay)), stats.acked,
        !stats.in_flight          ? "none"
        : stats.in_flight_applied ? "applied"
                                  : "not applied",
        static_cast<long long>(absl::ToInt64Milliseconds(stats.restart)),
        checkpoints.c_str());
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "stopped at round " << round << "; reproduce with "
                    << "LEPTON_CRASH_SEED=" << base
                    << " LEPTON_CRASH_ROUNDS=" << std::max(20, round + 1);
      return;
    }
  }
  std::fprintf(
      stderr,
      "crash test: %d rounds, %zu acknowledged updates, %d "
      "applied but unanswered, newest checkpoint v%llu, %lld ms\n",
      rounds, total_acked, applied_unacked,
      static_cast<unsigned long long>(newest_checkpoint),
      static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() - start)));
  EXPECT_GT(total_acked, 0u);
  // The long rounds made the server checkpoint (and rotate its log) mid-run.
  EXPECT_GT(newest_checkpoint, 1u) << "no checkpoint was written after v1";
}
}  // namespace
}  // namespace lepton::testing
