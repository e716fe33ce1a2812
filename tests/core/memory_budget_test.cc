// The memory budget (core/store/memory_budget.h, StoreOptions::
// max_memory_bytes): the reservations and bounds against what models really
// hold, and every change that could cross the budget refused whole.
#include "core/store/memory_budget.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/adaptation/model_adaptation.h"
#include "core/learning/example.h"
#include "core/store/model_store.h"
#include "tests/core/model_store_test_support.h"
#include "tests/core/test_support.h"

namespace lepton {
namespace {

constexpr int32_t kRetained = 8;

// `n` sparse examples of `nonzeros` features each, below `d`.
std::vector<Example> SparseBatch(int n, int64_t d, int nonzeros,
                                 uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Example> batch;
  for (int i = 0; i < n; ++i) {
    std::vector<uint32_t> indices;
    for (int j = 0; j < nonzeros; ++j) {
      indices.push_back(
          static_cast<uint32_t>((rng() % (d / nonzeros)) + j * (d / nonzeros)));
    }
    batch.push_back(Sparse(indices, std::vector<float>(nonzeros, 1.0f),
                           static_cast<float>(rng() % 2)));
  }
  return batch;
}

// StartUpdate (the path the server takes, which checks the budget), waited
// for.
absl::StatusOr<UpdateResult> StartAndWait(ModelStore& store,
                                          absl::string_view name,
                                          const std::vector<Example>& batch) {
  std::promise<absl::StatusOr<UpdateResult>> done;
  store.StartUpdate(name, Views(batch), {}, "",
                    [&done](absl::StatusOr<UpdateResult> r) {
                      done.set_value(std::move(r));
                    });
  return done.get_future().get();
}

::testing::AssertionResult IsOverBudget(const absl::Status& s,
                                        absl::string_view what) {
  if (s.code() != absl::StatusCode::kResourceExhausted ||
      !absl::StrContains(s.message(), "memory budget: ") ||
      !absl::StrContains(s.message(), what)) {
    return ::testing::AssertionFailure() << s;
  }
  return ::testing::AssertionSuccess();
}

StoreOptions Budget(int64_t bytes) {
  StoreOptions options;
  options.retained_versions = kRetained;
  options.max_memory_bytes = bytes;
  return options;
}

TEST(MemoryBudgetTest, AWholeCopyModelStaysWithinItsReservation) {
  const ModelSpec spec =
      SpecBuilder(ModelType::kSoftmaxRegression, 200, 5).Adagrad(0.1f);
  const int64_t reserved = ReservedModelBytes(spec, kRetained);
  ModelStore store(Budget(0));
  ASSERT_TRUE(store.CreateModel("m", spec).ok());
  std::mt19937 rng(1);
  for (int i = 0; i < 3 * kRetained; ++i) {
    MustUpdate(store, "m",
               RandomBatch(ModelType::kSoftmaxRegression, 200, 5, 16, rng,
                           /*sparse_too=*/false));
  }
  const int64_t held = store.GetModel("m")->memory_bytes;
  // The writer's per-batch buffers come on top of the parameters.
  EXPECT_LE(held, reserved + 64 * 1024) << reserved;
  EXPECT_GE(held, reserved * 9 / 10) << reserved;
  EXPECT_EQ(store.MemoryUsed(), std::max(held, reserved));
}

TEST(MemoryBudgetTest, ASparseModelGrowsByLessThanItsUpdatesBounds) {
  constexpr int64_t kD = int64_t{1} << 18;
  const ModelSpec spec =
      SpecBuilder(ModelType::kLogisticRegression, kD).Adagrad(0.1f);
  const int64_t reserved = ReservedModelBytes(spec, kRetained);
  ModelStore store(Budget(0));
  ASSERT_TRUE(store.CreateModel("m", spec).ok());
  int64_t held = store.GetModel("m")->memory_bytes;
  EXPECT_LE(held, reserved);
  int64_t bounds = 0;
  for (int i = 0; i < 3 * kRetained; ++i) {
    const std::vector<Example> batch = SparseBatch(64, kD, 40, i);
    const int64_t bound = UpdateBytesBound(spec, Views(batch));
    MustUpdate(store, "m", batch);
    const int64_t now = store.GetModel("m")->memory_bytes;
    EXPECT_LE(now - held, bound) << "update " << i;
    held = now;
    bounds += bound;
  }
  EXPECT_LE(held, reserved + bounds);
}

TEST(MemoryBudgetTest, CreateModelBeyondTheBudgetIsRefusedAndCreatesNothing) {
  const ModelSpec spec = SpecBuilder(ModelType::kLogisticRegression, 1 << 17);
  const int64_t reserved = ReservedModelBytes(spec, kRetained);
  ModelStore store(Budget(3 * reserved + reserved / 2));
  for (const std::string name : {"a", "b", "c"}) {
    ASSERT_TRUE(store.CreateModel(name, spec).ok()) << name;
  }
  EXPECT_TRUE(IsOverBudget(store.CreateModel("d", spec).status(),
                           "creating model \"d\""));
  EXPECT_TRUE(IsOverBudget(store.CheckCreate("d", spec), "creating model"));
  EXPECT_EQ(store.ListModels().size(), 3u);
  EXPECT_LE(store.MemoryUsed(), 3 * reserved + reserved / 2);
  // A smaller model fits; deleting one makes room.
  EXPECT_TRUE(
      store.CreateModel("small", SpecBuilder(ModelType::kLinearRegression, 10))
          .ok());
  ASSERT_TRUE(store.DeleteModel("a").ok());
  EXPECT_TRUE(store.CreateModel("d", spec).ok());
}

TEST(MemoryBudgetTest, AnUpdateThatCouldCrossTheBudgetIsRefusedWhole) {
  constexpr int64_t kD = int64_t{1} << 18;
  const ModelSpec spec =
      SpecBuilder(ModelType::kLogisticRegression, kD).Adagrad(0.1f);
  const std::vector<Example> small = SparseBatch(4, kD, 10, 1);
  const std::vector<Example> large = SparseBatch(4096, kD, 40, 2);
  const int64_t reserved = ReservedModelBytes(spec, kRetained);
  ModelStore store(
      Budget(reserved + 4 * UpdateBytesBound(spec, Views(small)) + 65536));
  ASSERT_TRUE(store.CreateModel("m", spec).ok());
  absl::StatusOr<UpdateResult> applied = StartAndWait(store, "m", small);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->version, 2u);
  const std::vector<float> before = AllWeights(*MustAcquire(store, "m"));

  EXPECT_TRUE(IsOverBudget(StartAndWait(store, "m", large).status(),
                           "this update of model \"m\""));
  EXPECT_TRUE(IsOverBudget(
      store.PrepareUpdate("m", Views(large), {}, "").status(), "update"));
  const absl::StatusOr<ModelInfo> info = store.GetModel("m");
  EXPECT_EQ(info->version, 2u);
  EXPECT_EQ(info->counters.examples_seen, small.size());
  EXPECT_TRUE(BitEqual(AllWeights(*MustAcquire(store, "m")), before));
}

TEST(MemoryBudgetTest, AddClassesAndImportModelBeyondTheBudgetAreRefused) {
  const ModelSpec spec = SpecBuilder(ModelType::kSoftmaxRegression, 4000, 3);
  const int64_t reserved = ReservedModelBytes(spec, kRetained);
  ModelStore store(Budget(2 * reserved + reserved / 2));
  ASSERT_TRUE(store.CreateModel("m", spec).ok());
  EXPECT_TRUE(
      IsOverBudget(store.AddClasses("m", 30).status(), "adding classes"));
  EXPECT_TRUE(IsOverBudget(store.CheckAddClasses("m", 30), "adding classes"));
  EXPECT_EQ(store.GetModel("m")->spec.num_classes, 3);
  // Checks that come first still come first; a retry of the same number is
  // no change.
  EXPECT_EQ(store.AddClasses("m", 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store.AddClasses("m", 3).ok());
  EXPECT_TRUE(store.AddClasses("m", 4).ok());

  absl::StatusOr<std::string> blob = store.ExportModel("m", 0);
  ASSERT_TRUE(blob.ok());
  ModelStore tight(Budget(reserved / 2));
  EXPECT_TRUE(IsOverBudget(tight.ImportModel("copy", *blob).status(),
                           "importing model \"copy\""));
  EXPECT_TRUE(IsOverBudget(tight.CheckImport("copy", *blob).status(),
                           "importing model"));
  EXPECT_TRUE(tight.ListModels().empty());
}

TEST(MemoryBudgetTest, AStoreThatAppliesASharedLogChecksOnlyBeforeAppending) {
  const ModelSpec spec = SpecBuilder(ModelType::kLogisticRegression, 1 << 17);
  StoreOptions options = Budget(1024);
  options.applies_shared_log = true;
  ModelStore store(options);
  EXPECT_TRUE(IsOverBudget(store.CheckCreate("m", spec), "creating model"));
  // An entry another node appended applies.
  EXPECT_TRUE(store.CreateModel("m", spec).ok());
  EXPECT_TRUE(IsOverBudget(
      store.PrepareUpdate("m", Views(SparseBatch(1, 1 << 17, 1, 3)), {}, "")
          .status(),
      "update"));
  EXPECT_TRUE(store.Update("m", Views(SparseBatch(1, 1 << 17, 1, 3))).ok());
}

TEST(MemoryBudgetTest, AHoldoutSetCountsTheBatchesItHolds) {
  const std::vector<Example> batch = SparseBatch(10, 1000, 5, 4);
  const std::vector<ExampleView> views = Views(batch);
  int64_t one_batch = 0;
  for (const ExampleView& v : views) one_batch += OwnedBytes(v);
  auto empty = std::make_shared<const HoldoutSet>();
  EXPECT_EQ(empty->bytes(), 0);
  auto one = empty->With(views, 15);
  EXPECT_EQ(one->bytes(), one_batch);
  // The first batch stays while some of it is held, and goes with its last.
  auto two = one->With(views, 15);
  EXPECT_EQ(two->size(), 15);
  EXPECT_EQ(two->bytes(), 2 * one_batch);
  auto three = two->With(views, 15);
  EXPECT_EQ(three->bytes(), 2 * one_batch);
  EXPECT_EQ(three->size(), 15);
}

TEST(MemoryLedgerTest, ReservationsCountUntilTheyAreGivenBack) {
  MemoryLedger ledger;
  int64_t used = 10;
  auto in_use = [&used] {
    return std::vector<MemoryLedger::Charge>{{&used, used}};
  };
  absl::StatusOr<MemoryLedger::Hold> first =
      ledger.Reserve(100, in_use, 60, "a");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->bytes(), 60);
  EXPECT_EQ(ledger.reserved(), 60);
  // 10 used + 60 reserved + 40 > 100.
  EXPECT_TRUE(IsOverBudget(ledger.Reserve(100, in_use, 40, "b").status(),
                           "b needs up to 40 bytes, and 70 of"));
  {
    absl::StatusOr<MemoryLedger::Hold> second =
        ledger.Reserve(100, in_use, 30, "c");
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_EQ(ledger.reserved(), 90);
    MemoryLedger::Hold moved = *std::move(second);
    EXPECT_EQ(ledger.reserved(), 90);
  }
  EXPECT_EQ(ledger.reserved(), 60);
  *first = MemoryLedger::Hold();
  EXPECT_EQ(ledger.reserved(), 0);
  EXPECT_TRUE(ledger.Reserve(100, in_use, 90, "d").ok());
  EXPECT_EQ(ledger.reserved(), 0);  // the hold died at once
  // No budget: nothing is reserved.
  absl::StatusOr<MemoryLedger::Hold> free =
      ledger.Reserve(0, in_use, 1000, "e");
  EXPECT_TRUE(free.ok());
  EXPECT_EQ(free->bytes(), 0);
  EXPECT_EQ(ledger.reserved(), 0);
}

TEST(MemoryLedgerTest, ChargesAreARunningTotalRecountedAfterTheirPeriod) {
  int a = 0, b = 0;  // two owners
  int recounts = 0;
  auto recount = [&] {
    ++recounts;
    return std::vector<MemoryLedger::Charge>{{&a, 30}, {&b, 20}};
  };
  MemoryLedger ledger(absl::InfiniteDuration());
  EXPECT_TRUE(ledger.Reserve(100, recount, 50, "x").ok());
  EXPECT_EQ(recounts, 1);  // the first reservation counts every charge
  EXPECT_EQ(ledger.charged(), 50);
  ledger.SetCharge(&a, [] { return int64_t{70}; });
  EXPECT_EQ(ledger.charged(), 90);
  // 70 + 20 + 11 > 100, and the charges are not recounted.
  EXPECT_TRUE(IsOverBudget(ledger.Reserve(100, recount, 11, "y").status(),
                           "y needs up to 11 bytes, and 90 of"));
  EXPECT_EQ(recounts, 1);
  ledger.SetCharge(&b, [] { return int64_t{0}; });  // forgotten
  EXPECT_EQ(ledger.charged(), 70);
  EXPECT_TRUE(ledger.Reserve(100, recount, 30, "z").ok());
  EXPECT_EQ(recounts, 1);
  // A period of 0: every reservation recounts.
  MemoryLedger always(absl::ZeroDuration());
  always.SetCharge(&a, [] { return int64_t{99}; });
  EXPECT_TRUE(always.Reserve(100, recount, 50, "w").ok());
  EXPECT_TRUE(always.Reserve(100, recount, 50, "w").ok());
  EXPECT_EQ(recounts, 3);
  EXPECT_EQ(always.charged(), 50);
}

// With no recount, the running total must follow every change the store
// makes: it equals the full count after each.
TEST(MemoryBudgetTest, TheCountedChargesFollowEveryChangeOfTheStore) {
  StoreOptions options = Budget(int64_t{1} << 40);
  options.memory_recount_period = absl::InfiniteDuration();
  ModelStore store(options);
  const ModelSpec sparse =
      SpecBuilder(ModelType::kLogisticRegression, 1 << 17).Adagrad(0.1f);
  const ModelSpec softmax =
      SpecBuilder(ModelType::kSoftmaxRegression, 300, 3).Adagrad(0.1f);
  ASSERT_TRUE(store.CreateModel("sparse", sparse).ok());
  ASSERT_TRUE(store.CreateModel("softmax", softmax).ok());
  EXPECT_EQ(store.MemoryCounted(), store.MemoryUsed());
  std::mt19937 rng(4);
  for (int i = 0; i < 3 * kRetained; ++i) {
    ASSERT_TRUE(
        StartAndWait(store, "sparse", SparseBatch(64, 1 << 17, 20, i)).ok());
    ASSERT_TRUE(StartAndWait(store, "softmax",
                             RandomBatch(ModelType::kSoftmaxRegression, 300, 3,
                                         32, rng, /*sparse_too=*/true))
                    .ok());
    ASSERT_EQ(store.MemoryCounted(), store.MemoryUsed()) << "update " << i;
  }
  ASSERT_TRUE(store.AddClasses("softmax", 5).ok());
  EXPECT_EQ(store.MemoryCounted(), store.MemoryUsed());
  const uint64_t back = store.GetModel("sparse")->retained_versions.front();
  ASSERT_TRUE(store.Rollback("sparse", back).ok());
  EXPECT_EQ(store.MemoryCounted(), store.MemoryUsed());
  absl::StatusOr<std::string> blob = store.ExportModel("sparse", 0, nullptr);
  ASSERT_TRUE(blob.ok()) << blob.status();
  ASSERT_TRUE(store.ImportModel("copy", *blob).ok());
  EXPECT_EQ(store.MemoryCounted(), store.MemoryUsed());
  ASSERT_TRUE(store.DeleteModel("sparse").ok());
  ASSERT_TRUE(store.DeleteModel("copy").ok());
  EXPECT_EQ(store.MemoryCounted(), store.MemoryUsed());
  EXPECT_GT(store.MemoryCounted(), 0);
}

// Creations racing for the last room: each one's reservation is seen by the
// others, so together they never take more than the budget.
TEST(MemoryBudgetTest, CreationsRacingForTheLastRoomStayWithinTheBudget) {
  const ModelSpec spec = SpecBuilder(ModelType::kLogisticRegression, 1 << 16);
  const int64_t reserved = ReservedModelBytes(spec, kRetained);
  const int64_t budget = 5 * reserved + reserved / 2;
  for (int round = 0; round < 5; ++round) {
    ModelStore store(Budget(budget));
    std::vector<std::thread> threads;
    std::atomic<int> created{0};
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 4; ++i) {
          absl::Status s =
              store.CreateModel(absl::StrCat("m", t, "_", i), spec).status();
          if (s.ok()) {
            ++created;
          } else {
            EXPECT_TRUE(IsOverBudget(s, "creating model")) << s;
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_GE(created.load(), 1);
    EXPECT_LE(created.load(), 5);
    EXPECT_LE(store.MemoryUsed(), budget) << created.load() << " models";
  }
}

}  // namespace
}  // namespace lepton
