// Group commit of the update log: many threads' updates share fsyncs and
// every acknowledged one is recovered; under each fsync policy (always,
// interval, never) updates are answered and recovered, and a model deleted
// while its updates wait for their fsync answers them OK or NOT_FOUND.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/storage/fsync_policy.h"
#include "core/store/model_store.h"
#include "tests/core/durability_test_support.h"
#include "tests/core/fault_file_system.h"

namespace lepton {
namespace {

// ------------------------------------------------------------ Group commit

TEST_F(DurabilityTest, GroupCommitFromManyThreads) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  std::vector<std::vector<Batch>> batches;
  for (int t = 0; t < kThreads; ++t) {
    batches.push_back(
        MakeBatches(spec, kPerThread, 1000 + t, absl::StrCat("t", t, "-")));
  }
  FaultFileSystem counting;  // no faults: counts the fsyncs
  StoreOptions options = Durable(dir, &counting);
  options.checkpoint_every_updates = 37;
  options.keep_checkpoints = 3;
  auto store = MustOpen(options);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());

  std::vector<std::vector<absl::StatusOr<UpdateResult>>> results(kThreads);
  std::atomic<int> running{kThreads};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (const Batch& b : batches[t]) {
        results[t].push_back(Apply(*store, "m", b));
      }
      --running;
    });
  }
  // Checkpoints and readers run meanwhile.
  std::atomic<int> checkpoint_errors{0};
  std::thread checkpointer([&] {
    while (running > 0) {
      if (!store->Checkpoint(/*force=*/false).ok()) ++checkpoint_errors;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  std::atomic<int> reader_errors{0};
  std::thread reader([&] {
    const std::vector<Features> probes = Probes({batches[0][0]});
    uint64_t last = 0;
    while (running > 0) {
      absl::StatusOr<Predictions> p = store->Predict("m", Views(probes));
      if (!p.ok() || p->version < last) ++reader_errors;
      if (p.ok()) last = p->version;
    }
  });
  for (std::thread& t : threads) t.join();
  checkpointer.join();
  reader.join();
  EXPECT_EQ(checkpoint_errors, 0);
  EXPECT_EQ(reader_errors, 0);

  // Every update succeeded, each with its own version: 2 to 401.
  std::vector<const Batch*> by_version(kThreads * kPerThread + 2, nullptr);
  std::vector<UpdateResult> result_of(by_version.size());
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(results[t].size(), static_cast<size_t>(kPerThread));
    uint64_t previous = 0;
    for (int i = 0; i < kPerThread; ++i) {
      ASSERT_TRUE(results[t][i].ok()) << results[t][i].status();
      const uint64_t v = results[t][i]->version;
      ASSERT_GE(v, 2u);
      ASSERT_LT(v, by_version.size());
      ASSERT_EQ(by_version[v], nullptr) << "version " << v << " twice";
      EXPECT_GT(v, previous);  // a thread's updates in its order
      previous = v;
      by_version[v] = &batches[t][i];
      result_of[v] = *results[t][i];
    }
  }
  EXPECT_EQ(store->GetModel("m")->version, 401u);
  RecordProperty("fsyncs", static_cast<int>(counting.syncs()));
  EXPECT_GT(counting.syncs(), 0);

  // The same updates in version order, in memory: each was scored by the
  // version before it, and the end state is the same.
  ModelStore ref;
  ASSERT_TRUE(ref.CreateModel("m", spec).ok());
  for (size_t v = 2; v < by_version.size(); ++v) {
    ASSERT_NE(by_version[v], nullptr);
    EXPECT_TRUE(SameResult(result_of[v], MustApply(ref, "m", *by_version[v])))
        << "version " << v;
  }
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(ref, "m")));

  // No checkpoint is due now, so the store writes nothing during the copy.
  ASSERT_TRUE(store->Checkpoint(/*force=*/false).ok());
  CrashCopy(dir, crash);
  {
    RecoveryReport report;
    auto recovered = MustOpen(Durable(crash), &report);
    ASSERT_NE(recovered, nullptr);
    EXPECT_TRUE(report.failed.empty());
    EXPECT_TRUE(report.notes.empty()) << Joined(report.notes);
    EXPECT_TRUE(SameModel(Capture(*recovered, "m"), Capture(ref, "m")));
    absl::StatusOr<UpdateResult> retry = Apply(*recovered, "m", batches[3][49]);
    ASSERT_TRUE(retry.ok()) << retry.status();
    EXPECT_TRUE(SameResult(*retry, *results[3][49]));
  }
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(Durable(dir));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(ref, "m")));
}

// ------------------------------------------------------------ Fsync policies

class FsyncPolicyTest : public DurabilityTest,
                        public ::testing::WithParamInterface<FsyncPolicy> {};

TEST_P(FsyncPolicyTest, UpdatesAreAnsweredAndRecovered) {
  const ModelSpec spec = SpecFor(Kind::kSoftmax);
  const std::vector<Batch> batches = MakeBatches(spec, 20, 211, "p");
  const std::string dir = Path("data");
  const std::string crash = Path("crash");
  StoreOptions options = Durable(dir);
  options.fsync = GetParam();
  options.fsync_interval = absl::Milliseconds(2);
  auto ref = Reference("m", spec, batches, 20);
  auto store = MustOpen(options);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateModel("m", spec).ok());
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<UpdateResult> r;
    if (i % 2 == 0) {
      r = Apply(*store, "m", batches[i]);
    } else {  // the asynchronous form
      std::promise<absl::StatusOr<UpdateResult>> answered;
      store->StartUpdate("m", Views(batches[i].examples), batches[i].options,
                         batches[i].id, [&](absl::StatusOr<UpdateResult> a) {
                           answered.set_value(std::move(a));
                         });
      r = answered.get_future().get();
    }
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->version, static_cast<uint64_t>(i + 2));
    EXPECT_EQ(store->GetModel("m")->version, r->version);  // published
  }
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref, "m")));
  // Every record was written before its answer (synced or not, a copy of
  // the files sees it).
  CrashCopy(dir, crash);
  {
    auto recovered = MustOpen(Durable(crash));
    ASSERT_NE(recovered, nullptr);
    EXPECT_TRUE(SameModel(Capture(*recovered, "m"), Capture(*ref, "m")));
  }
  ASSERT_TRUE(store->Close().ok());
  RecoveryReport report;
  store = MustOpen(options, &report);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(report.recovered, std::vector<std::string>{"m"});
  EXPECT_TRUE(SameModel(Capture(*store, "m"), Capture(*ref, "m")));
}

// DeleteModel while other threads update the model and checkpoints rotate
// its log: calls already holding the model finish normally, OK or NOT_FOUND.
// (The soak found updates failing UNAVAILABLE, "the update log could not be
// synced": the syncer opened the directory of a new segment after
// DeleteModel had moved it.)
TEST_P(FsyncPolicyTest, DeleteWhileUpdatesAndCheckpointsRun) {
  const ModelSpec spec = SpecFor(Kind::kLogistic);
  const std::vector<Batch> batches = MakeBatches(spec, 64, 307);
  StoreOptions options = Durable(Path("data"));
  options.fsync = GetParam();
  options.fsync_interval = absl::Milliseconds(1);
  options.checkpoint_every_updates = 1;
  auto store = MustOpen(options);
  ASSERT_NE(store, nullptr);

  std::atomic<bool> stop{false};
  std::atomic<int64_t> applied{0}, not_found{0};
  std::mutex mu;
  std::vector<std::string> errors;  // guarded by mu
  auto error = [&](const std::string& what, const absl::Status& s) {
    std::lock_guard<std::mutex> lock(mu);
    if (errors.size() < 5)
      errors.push_back(absl::StrCat(what, ": ", s.ToString()));
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        // Without update ids: every call applies.
        const Batch& b = batches[(t * 16 + i) % batches.size()];
        absl::StatusOr<UpdateResult> r =
            store->Update("churn", Views(b.examples), b.options);
        if (r.ok()) {
          ++applied;
          absl::SleepFor(absl::Microseconds(50));  // the deletion's turn too
        } else if (r.status().code() == absl::StatusCode::kNotFound) {
          ++not_found;
          absl::SleepFor(absl::Microseconds(100));  // until it is created
        } else {
          error("Update", r.status());
        }
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop.load()) {
      if (absl::Status s = store->Checkpoint(/*force=*/false); !s.ok()) {
        error("Checkpoint", s);
      }
      absl::SleepFor(absl::Microseconds(200));
    }
  });
  constexpr int kCycles = 20;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    if (absl::Status s = store->CreateModel("churn", spec).status(); !s.ok()) {
      error("CreateModel", s);
    }
    absl::SleepFor(absl::Milliseconds(3));
    if (absl::Status s = store->DeleteModel("churn"); !s.ok()) {
      error("DeleteModel", s);
    }
  }
  stop.store(true);
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(errors.empty()) << Joined(errors);
  EXPECT_GT(applied.load(), 0);
  EXPECT_GT(not_found.load(), 0);
  RecordProperty("applied", static_cast<int>(applied.load()));
  ASSERT_TRUE(store->Close().ok());
  RecoveryReport report;
  store = MustOpen(options, &report);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(report.recovered.empty()) << Joined(report.recovered);
  EXPECT_TRUE(report.failed.empty());
}

INSTANTIATE_TEST_SUITE_P(Policies, FsyncPolicyTest,
                         ::testing::Values(FsyncPolicy::kAlways,
                                           FsyncPolicy::kInterval,
                                           FsyncPolicy::kNever),
                         [](const ::testing::TestParamInfo<FsyncPolicy>& i) {
                           switch (i.param) {
                             case FsyncPolicy::kAlways:
                               return std::string("Always");
                             case FsyncPolicy::kInterval:
                               return std::string("Interval");
                             case FsyncPolicy::kNever:
                               return std::string("Never");
                           }
                           return std::string("?");
                         });

}  // namespace
}  // namespace lepton
