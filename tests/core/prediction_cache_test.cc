// PredictionCache: eviction order, TTL, the byte bound, ids used once,
// release on failure, and concurrent use.
#include "core/store/prediction_cache.h"

#include <atomic>
#include <cmath>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lepton {
namespace {

using ::testing::HasSubstr;

// A clock the test moves by hand.
struct FakeClock {
  absl::Time now = absl::FromUnixSeconds(1000000);
  std::function<absl::Time()> fn() {
    return [this] { return now; };
  }
};

PredictionCache::Options Opts(int64_t entries, FakeClock* clock,
                              absl::Duration ttl = absl::Hours(1),
                              int64_t bytes = int64_t{1} << 30) {
  PredictionCache::Options o;
  o.max_entries = entries;
  o.max_bytes = bytes;
  o.ttl = ttl;
  if (clock != nullptr) o.clock = clock->fn();
  return o;
}

// A sparse instance with feature `f` = value, and output `z`.
uint64_t Put(PredictionCache& cache, uint32_t f, float z) {
  const uint32_t index[] = {f};
  const float value[] = {1.0f};
  const float out[] = {z};
  return cache.Insert(FeaturesView{{}, index, value}, out, 7);
}

ExampleView ById(uint64_t id, float label = 1) {
  ExampleView e;
  e.prediction_id = id;
  e.label = label;
  return e;
}

bool Found(PredictionCache& cache, uint64_t id) {
  const ExampleView e[] = {ById(id)};
  return cache.Resolve(e).ok();  // released again when the claim dies
}

TEST(PredictionCacheTest, ResolvesToTheCachedFeaturesAndOutputs) {
  PredictionCache cache(Opts(10, nullptr));
  const float dense[] = {1.5f, -2.0f};
  const float out[] = {0.25f, -0.5f, 3.0f};
  const uint64_t id = cache.Insert(FeaturesView{dense, {}, {}}, out, 42);
  ASSERT_NE(id, 0u);
  ExampleView plain;  // an ordinary example passes through as it is
  const uint32_t idx[] = {1};
  const float val[] = {2.0f};
  plain.features = FeaturesView{{}, idx, val};
  plain.label = 2;
  ExampleView delayed = ById(id, 1);
  delayed.weight = 0.5f;
  delayed.holdout = true;
  const ExampleView in[] = {plain, delayed};
  absl::StatusOr<PredictionCache::Claim> claim = cache.Resolve(in);
  ASSERT_TRUE(claim.ok()) << claim.status();
  absl::Span<const ExampleView> got = claim->examples();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].features.indices.data(), idx);
  EXPECT_TRUE(got[0].served_outputs.empty());
  EXPECT_THAT(std::vector<float>(got[1].features.dense.begin(),
                                 got[1].features.dense.end()),
              ::testing::ElementsAre(1.5f, -2.0f));
  EXPECT_THAT(std::vector<float>(got[1].served_outputs.begin(),
                                 got[1].served_outputs.end()),
              ::testing::ElementsAre(0.25f, -0.5f, 3.0f));
  EXPECT_EQ(got[1].label, 1);
  EXPECT_EQ(got[1].weight, 0.5f);
  EXPECT_TRUE(got[1].holdout);
  EXPECT_EQ(got[1].prediction_id, id);
}

TEST(PredictionCacheTest, NoIdsMeansTheInputItself) {
  PredictionCache cache(Opts(10, nullptr));
  const ExampleView in[] = {ExampleView{}, ExampleView{}};
  absl::StatusOr<PredictionCache::Claim> claim = cache.Resolve(in);
  ASSERT_TRUE(claim.ok());
  EXPECT_EQ(claim->examples().data(), in);
}

TEST(PredictionCacheTest, EvictsOldestFirstBeyondTheEntryBound) {
  PredictionCache cache(Opts(3, nullptr));
  std::vector<uint64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Put(cache, i, i));
  EXPECT_EQ(cache.size(), 3);
  EXPECT_FALSE(Found(cache, ids[0]));
  EXPECT_FALSE(Found(cache, ids[1]));
  EXPECT_TRUE(Found(cache, ids[2]));
  EXPECT_TRUE(Found(cache, ids[3]));
  EXPECT_TRUE(Found(cache, ids[4]));
}

TEST(PredictionCacheTest, ExpiresAfterTheTtl) {
  FakeClock clock;
  PredictionCache cache(Opts(100, &clock, absl::Minutes(10)));
  const uint64_t a = Put(cache, 1, 1);
  clock.now += absl::Minutes(6);
  const uint64_t b = Put(cache, 2, 2);
  clock.now += absl::Minutes(3);  // a is 9 minutes old, b 3
  EXPECT_TRUE(Found(cache, a));
  EXPECT_TRUE(Found(cache, b));
  clock.now += absl::Minutes(1);  // a is exactly 10 minutes old: expired
  EXPECT_FALSE(Found(cache, a));
  EXPECT_TRUE(Found(cache, b));
  EXPECT_EQ(cache.size(), 1);  // dropped, not only hidden
  clock.now += absl::Minutes(6);
  EXPECT_FALSE(Found(cache, b));
  EXPECT_EQ(cache.size(), 0);
  EXPECT_EQ(cache.bytes(), 0);
}

TEST(PredictionCacheTest, BoundedByBytes) {
  const float dense[256] = {};
  const float out[] = {0};
  // Find the size of one entry, then allow 2.5 of them.
  PredictionCache probe(Opts(100, nullptr));
  probe.Insert(FeaturesView{dense, {}, {}}, out, 1);
  const int64_t one = probe.bytes();
  EXPECT_GE(one, int64_t{256 * 4});
  PredictionCache cache(Opts(100, nullptr, absl::Hours(1), one * 5 / 2));
  std::vector<uint64_t> ids;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(cache.Insert(FeaturesView{dense, {}, {}}, out, 1));
  }
  EXPECT_EQ(cache.size(), 2);
  EXPECT_EQ(cache.bytes(), 2 * one);
  EXPECT_FALSE(Found(cache, ids[1]));
  EXPECT_TRUE(Found(cache, ids[2]));
  EXPECT_TRUE(Found(cache, ids[3]));
}

TEST(PredictionCacheTest, CommittedIdsAreUsedOnce) {
  PredictionCache cache(Opts(10, nullptr));
  const uint64_t id = Put(cache, 1, 1);
  {
    const ExampleView e[] = {ById(id)};
    absl::StatusOr<PredictionCache::Claim> claim = cache.Resolve(e);
    ASSERT_TRUE(claim.ok());
    claim->Commit();
  }
  EXPECT_EQ(cache.size(), 0);
  const ExampleView e[] = {ExampleView{}, ById(id)};
  absl::Status s = cache.Resolve(e).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), ::testing::StartsWith(absl::StrCat(
                                            "examples[1].prediction_id: ", id,
                                            " is unknown or expired")));
}

TEST(PredictionCacheTest, UncommittedClaimsAreReleased) {
  PredictionCache cache(Opts(10, nullptr));
  const uint64_t a = Put(cache, 1, 1);
  const uint64_t b = Put(cache, 2, 2);
  {
    const ExampleView e[] = {ById(a), ById(b)};
    absl::StatusOr<PredictionCache::Claim> claim = cache.Resolve(e);
    ASSERT_TRUE(claim.ok());
    // While claimed, nobody else gets them.
    const ExampleView other[] = {ById(b)};
    EXPECT_EQ(cache.Resolve(other).status().code(),
              absl::StatusCode::kNotFound);
  }  // the update failed: dropped without Commit
  EXPECT_TRUE(Found(cache, a));
  EXPECT_TRUE(Found(cache, b));
  EXPECT_EQ(cache.size(), 2);
}

TEST(PredictionCacheTest, AllOrNothing) {
  PredictionCache cache(Opts(10, nullptr));
  const uint64_t a = Put(cache, 1, 1);
  const ExampleView e[] = {ById(a), ById(12345)};
  absl::Status s = cache.Resolve(e).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(),
              HasSubstr("examples[1].prediction_id: 12345 is unknown"));
  EXPECT_TRUE(Found(cache, a));  // the failed call claimed nothing
  // One id twice in one update: the second use is unknown.
  const ExampleView twice[] = {ById(a), ById(a)};
  s = cache.Resolve(twice).status();
  EXPECT_THAT(s.message(), HasSubstr("examples[1].prediction_id: "));
  EXPECT_TRUE(Found(cache, a));
}

TEST(PredictionCacheTest, ZeroEntriesDisables) {
  PredictionCache cache(Opts(0, nullptr));
  EXPECT_FALSE(cache.enabled());
  EXPECT_EQ(Put(cache, 1, 1), 0u);
  EXPECT_EQ(cache.size(), 0);
}

TEST(PredictionCacheTest, IdsAreUniqueAndNonzero) {
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t id = NewPredictionId();
    EXPECT_NE(id, 0u);
    EXPECT_TRUE(seen.insert(id).second);
  }
  // One epoch per process: the high 32 bits are shared.
  EXPECT_EQ(*seen.begin() >> 32, *seen.rbegin() >> 32);
}

TEST(PredictionCacheTest, ValidatesReferences) {
  const float dense[] = {1};
  const float out1[] = {0.5f};
  ExampleView e = ById(9);
  e.features.dense = dense;
  absl::Status s = ValidatePredictionReferences({&e, 1}, 1);
  EXPECT_EQ(s, absl::InvalidArgumentError(
                   "examples[0].features: must be empty with prediction_id"));
  e = ById(9);
  e.served_outputs = out1;
  EXPECT_THAT(ValidatePredictionReferences({&e, 1}, 1).message(),
              HasSubstr("examples[0].served_outputs: must be empty"));
  e = ExampleView{};
  e.served_outputs = out1;
  EXPECT_TRUE(ValidatePredictionReferences({&e, 1}, 1).ok());
  EXPECT_THAT(ValidatePredictionReferences({&e, 1}, 3).message(),
              HasSubstr("examples[0].served_outputs: must have 3 values"));
  const float nan[] = {std::nanf("")};
  e.served_outputs = nan;
  EXPECT_THAT(ValidatePredictionReferences({&e, 1}, 1).message(),
              HasSubstr("examples[0].served_outputs[0]: not finite"));
}

// Many threads insert while others resolve and commit: each id is applied
// by exactly one of the threads racing for it.
TEST(PredictionCacheTest, ConcurrentClaimsApplyEachIdOnce) {
  PredictionCache cache(Opts(100000, nullptr));
  constexpr int kIds = 2000;
  std::vector<uint64_t> ids(kIds);
  for (int i = 0; i < kIds; ++i) ids[i] = Put(cache, i, i);
  std::atomic<int> committed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIds; ++i) {
        // Writers add unrelated entries meanwhile.
        if (i % 7 == t) Put(cache, 1, 1);
        const ExampleView e[] = {ById(ids[i])};
        absl::StatusOr<PredictionCache::Claim> claim = cache.Resolve(e);
        if (!claim.ok()) continue;
        if ((i + t) % 3 == 0) continue;  // this "update" failed: released
        claim->Commit();
        committed.fetch_add(1);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  int left = 0;
  for (uint64_t id : ids) left += Found(cache, id) ? 1 : 0;
  EXPECT_EQ(committed.load() + left, kIds);
  EXPECT_GT(committed.load(), 0);
}

}  // namespace
}  // namespace lepton
