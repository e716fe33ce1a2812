// kill -9 of the real lepton_server while it writes a checkpoint
// (tests/integration/crash_harness.h), with every recovered model compared
// bit for bit with the reference:
//
//   KillDuringCheckpoint: a 2^20-feature model (8 MB checkpoints) with a
//     checkpoint after every update; the kill lands while a checkpoint's
//     temporary file is being written (or just after).
//   KillDuringRollbackCheckpoint: the same while a Rollback writes its
//     checkpoint, followed by updates, a checkpoint and another kill.
//
// Environment: LEPTON_CRASH_SEED fixes the base seed (random otherwise; it
// is printed).
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/storage/model_files.h"
#include "gtest/gtest.h"
#include "lepton/v1/lepton.grpc.pb.h"
#include "tests/integration/crash_harness.h"
#include "tests/testing/scratch_dir_fixture.h"
#include "tests/testing/server_process.h"

namespace lepton::testing {
namespace {

TEST(CrashRecoveryTest, KillDuringCheckpoint) {
  const uint64_t base = BaseSeed() ^ 0xc0ffee;
  TestScratchDir dir("lepton-crash-test");
  ASSERT_FALSE(dir.path().empty());
  // A checkpoint per update (the checkpointer looks once a second); 8 MB
  // each, so one takes long enough to be caught in progress.
  Harness h(dir.path(), {"--fsync=always", "--checkpoint_every_updates=1",
                         "--keep_checkpoints=2"});
  ASSERT_NO_FATAL_FAILURE(h.Start());
  const Shape big{"big", v1::LOGISTIC_REGRESSION, int64_t{1} << 20, 0};
  ASSERT_NO_FATAL_FAILURE(h.Create(big, v1::ModelSpec{}));
  const std::string model_dir = ModelDir(dir.path(), big.name);

  int killed_mid_write = 0;
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    const uint64_t seed = base + static_cast<uint64_t>(round);
    SCOPED_TRACE(absl::StrCat("checkpoint round ", round, " seed ", seed,
                              " (LEPTON_CRASH_SEED=", BaseSeed(), ")"));
    Rng rng(seed);
    // Round 0 kills as soon as the checkpoint's temporary file shows up;
    // later ones a little later (during its fsync, the rename, the removal
    // of the old segments and checkpoints).
    const absl::Duration extra =
        round == 0 ? absl::ZeroDuration()
                   : absl::Microseconds(rng.Below(round * 40000));
    Workload workload(rng.Next(), {big}, absl::StrCat("c", round));
    std::vector<std::string> tmp_seen, tmp_after_kill;
    RoundStats stats;
    RoundHooks hooks;
    hooks.wait_for_kill = [&] {
      const absl::Time deadline = absl::Now() + absl::Seconds(5);
      while (absl::Now() < deadline) {
        tmp_seen = TmpFiles(model_dir);
        if (!tmp_seen.empty()) break;
        std::this_thread::sleep_for(std::chrono::microseconds(300));
      }
      if (extra > absl::ZeroDuration()) absl::SleepFor(extra);
    };
    hooks.after_kill = [&] { tmp_after_kill = TmpFiles(model_dir); };
    hooks.after_restart = [&](absl::Duration took) {
      // Start-up removes what the unfinished checkpoint left. (Unless start-up
      // took so long that the checkpointer already started a new one.)
      const std::vector<std::string> left = TmpFiles(model_dir);
      if (took < absl::Milliseconds(800)) {
        EXPECT_TRUE(left.empty())
            << "left after start-up: " << absl::StrJoin(left, ", ");
      }
    };
    h.KillRound(workload, hooks, &stats);
    EXPECT_FALSE(tmp_seen.empty())
        << "no checkpoint started within 5 s of the updates";
    killed_mid_write += tmp_after_kill.empty() ? 0 : 1;
    std::fprintf(
        stderr,
        "crash test: checkpoint round %d seed %llu: kill "
        "%lld us after %s appeared, %zu acked, in flight: %s, "
        "restart %lld ms; after the kill: [%s]; now %s\n",
        round, static_cast<unsigned long long>(seed),
        static_cast<long long>(absl::ToInt64Microseconds(extra)),
        tmp_seen.empty() ? "(none)" : tmp_seen.front().c_str(), stats.acked,
        !stats.in_flight          ? "none"
        : stats.in_flight_applied ? "applied"
                                  : "not applied",
        static_cast<long long>(absl::ToInt64Milliseconds(stats.restart)),
        absl::StrJoin(tmp_after_kill, ", ").c_str(),
        DescribeFiles(model_dir).c_str());
    if (::testing::Test::HasFailure()) return;
  }
  // At least the immediate kill found the temporary file still there.
  EXPECT_GE(killed_mid_write, 1);
}

// A kill while a Rollback writes its checkpoint, then updates while the
// checkpointer writes one, then another kill: every acknowledged update
// must come back. Attempts repeat the sequence: the second kill matters
// most when that checkpoint was taken with an update still being synced.
//
// A regression test: when Rollback rotated the log to wal-<V+2> before
// writing checkpoint V+1, a kill between the two left wal-<V+2> behind,
// unknown to the reopened journal; after a later checkpoint C > V+1 taken
// with update C+1 in flight, the next start-up skipped wal-<V+1> (holding
// C+1) because of it, and the model was DATA_LOSS ("record produces version
// C+2 but the model is at version C").
TEST(CrashRecoveryTest, KillDuringRollbackCheckpoint) {
  const uint64_t base = BaseSeed() ^ 0xbadc0de;
  TestScratchDir dir("lepton-crash-test");
  ASSERT_FALSE(dir.path().empty());
  Harness h(dir.path(), {"--fsync=always", "--checkpoint_every_updates=1"});
  ASSERT_NO_FATAL_FAILURE(h.Start());
  // 8 MB per checkpoint: the rollback's takes long enough to be caught.
  const Shape big{"big", v1::LOGISTIC_REGRESSION, int64_t{1} << 20, 0};
  ASSERT_NO_FATAL_FAILURE(h.Create(big, v1::ModelSpec{}));
  const std::string model_dir = ModelDir(dir.path(), big.name);
  Workload workload(base, {big}, "k");

  constexpr int kAttempts = 4;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    SCOPED_TRACE(absl::StrCat("attempt ", attempt,
                              " (LEPTON_CRASH_SEED=", BaseSeed(), ")"));
    for (int i = 0; i < 10; ++i) {
      v1::UpdateRequest request = workload.Next();
      absl::StatusOr<v1::UpdateResponse> r = h.conn().Update(request);
      ASSERT_TRUE(r.ok()) << r.status();
      h.ref().Apply(request, &*r);
    }
    const uint64_t head = h.ref().Version(big.name);
    // Rollback to head - 1 publishes head + 1 once its checkpoint is
    // written: kill while its temporary file is there.
    const std::string rollback_tmp =
        absl::StrCat(ModelFiles::CheckpointFileName(head + 1), ".tmp");
    std::thread rollback(
        [&] { h.conn().Rollback(big.name, head - 1).IgnoreError(); });
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    bool seen = false;
    while (!seen && absl::Now() < deadline) {
      for (const std::string& n : TmpFiles(model_dir)) {
        seen |= n == rollback_tmp;
      }
      if (!seen) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    h.server().process().Signal(SIGKILL);
    ASSERT_TRUE(h.server().process().Wait(absl::Seconds(20)).has_value());
    rollback.join();
    ASSERT_TRUE(seen) << "the rollback's checkpoint was not seen";
    std::fprintf(stderr,
                 "crash test: attempt %d: killed during the "
                 "rollback's checkpoint (v%llu): %s\n",
                 attempt, static_cast<unsigned long long>(head + 1),
                 absl::StrJoin(ListDir(model_dir), " ").c_str());
    ASSERT_NO_FATAL_FAILURE(h.Start());
    absl::StatusOr<v1::ModelInfo> info = h.conn().Get(big.name);
    ASSERT_TRUE(info.ok()) << info.status();
    ASSERT_GE(info->version(), head);
    ASSERT_LE(info->version(), head + 1);
    if (info->version() == head + 1) {  // the kill came after the rename
      ASSERT_TRUE(h.ref().store().Rollback(big.name, head - 1).ok());
    }
    h.ExpectInStep();

    // Updates until the checkpointer has written one checkpoint; kill.
    RoundStats stats;
    RoundHooks hooks;
    hooks.wait_for_kill = [&] {
      const absl::Time until = absl::Now() + absl::Seconds(5);
      bool started = false;
      while (absl::Now() < until) {
        const bool tmp = !TmpFiles(model_dir).empty();
        if (started && !tmp) break;  // written
        started |= tmp;
        std::this_thread::sleep_for(std::chrono::microseconds(300));
      }
      absl::SleepFor(absl::Milliseconds(20));
    };
    hooks.after_kill = [&] {
      std::fprintf(stderr, "crash test: attempt %d: killed: %s\n", attempt,
                   absl::StrJoin(ListDir(model_dir), " ").c_str());
    };
    h.KillRound(workload, hooks, &stats);
    std::fprintf(stderr, "crash test: attempt %d: %zu acked\n", attempt,
                 stats.acked);
    if (::testing::Test::HasFailure()) return;
  }
}
}  // namespace
}  // namespace lepton::testing
