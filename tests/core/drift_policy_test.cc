// Drift detection and the drift policies on synthetic concept streams with
// known truth (concept_stream.h), through the store, at default settings
// unless said otherwise. Prints the figures the README quotes:
//   build/tests/core/drift_policy_test
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/adaptation/model_events.h"
#include "core/learning/model_spec.h"
#include "core/store/model_store.h"
#include "tests/core/concept_stream.h"

namespace lepton {
namespace {

constexpr int kBatch = 100;
constexpr int64_t kChangeAt = 50000;
constexpr int64_t kAfterWindow = 20000;

ModelSpec StreamSpec(DriftDetectorKind detector, DriftPolicy policy) {
  ModelSpec spec;
  spec.type = ModelType::kLogisticRegression;
  spec.num_features = 20;
  spec.drift.detector.kind = detector;
  spec.drift.policy = policy;
  return spec;
}

struct RunResult {
  std::vector<uint64_t> drifts;  // example counts at which drifts were flagged
  double accuracy_after = 0;     // progressive, [change_at, +20000)
  uint64_t promotions = 0;
};

RunResult RunStream(const ConceptStream::Options& stream_options,
                    const ModelSpec& spec, int64_t total) {
  ModelStore store;
  EXPECT_TRUE(store.CreateModel("m", spec).ok());
  RunResult r;
  // The memory store answers on the calling thread, so the listener runs
  // here too.
  auto watch = store.Watch("m", [&r](const ModelEvent& e) {
    if (e.kind == ModelEvent::Kind::kDrift) r.drifts.push_back(e.example);
    if (e.kind == ModelEvent::Kind::kChallengerPromoted) ++r.promotions;
  });
  EXPECT_TRUE(watch.ok());
  ConceptStream stream(stream_options);
  double correct = 0, counted = 0;
  for (int64_t seen = 0; seen < total; seen += kBatch) {
    const std::vector<Example> batch = stream.Batch(kBatch);
    absl::StatusOr<UpdateResult> u = store.Update("m", Views(batch));
    EXPECT_TRUE(u.ok()) << u.status();
    if (!u.ok()) break;
    if (seen >= kChangeAt && seen < kChangeAt + kAfterWindow) {
      correct += *u->accuracy_before * kBatch;
      counted += kBatch;
    }
  }
  r.accuracy_after = counted > 0 ? correct / counted : 0;
  return r;
}

ConceptStream::Options Stream(ConceptStream::Change change, uint64_t seed) {
  ConceptStream::Options o;
  o.change = change;
  o.seed = seed;
  o.change_at = kChangeAt;
  return o;
}

struct DetectorCase {
  DriftDetectorKind kind;
  const char* name;
};
constexpr DetectorCase kDetectors[] = {
    {DriftDetectorKind::kAdwin, "ADWIN"},
    {DriftDetectorKind::kPageHinkley, "Page-Hinkley"},
};

TEST(DriftPolicyTest, AbruptChangeIsFlaggedWithin2000Examples) {
  for (const DetectorCase& d : kDetectors) {
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      const RunResult r =
          RunStream(Stream(ConceptStream::Change::kAbrupt, seed),
                    StreamSpec(d.kind, DriftPolicy::kAlert), kChangeAt + 10000);
      ASSERT_FALSE(r.drifts.empty()) << d.name << " seed " << seed;
      EXPECT_GT(r.drifts.front(), static_cast<uint64_t>(kChangeAt))
          << d.name << " seed " << seed << ": a drift before the change";
      EXPECT_LE(r.drifts.front(), static_cast<uint64_t>(kChangeAt + 2000))
          << d.name << " seed " << seed;
      std::printf(
          "abrupt  %-12s seed %d: first drift %d examples after the "
          "change (%zu drifts in all)\n",
          d.name, static_cast<int>(seed),
          static_cast<int>(r.drifts.front() - kChangeAt), r.drifts.size());
    }
  }
}

TEST(DriftPolicyTest, GradualChangeIsFlaggedBeforeTheRampEnds) {
  for (const DetectorCase& d : kDetectors) {
    const RunResult r =
        RunStream(Stream(ConceptStream::Change::kGradual, 1),
                  StreamSpec(d.kind, DriftPolicy::kAlert), kChangeAt + 30000);
    ASSERT_FALSE(r.drifts.empty()) << d.name;
    EXPECT_GT(r.drifts.front(), static_cast<uint64_t>(kChangeAt)) << d.name;
    EXPECT_LE(r.drifts.front(), static_cast<uint64_t>(kChangeAt + 20000))
        << d.name;
    std::printf(
        "gradual %-12s: first drift %d examples after the ramp "
        "began (ramp 20000)\n",
        d.name, static_cast<int>(r.drifts.front() - kChangeAt));
  }
}

TEST(DriftPolicyTest, NoDriftOnAStationaryStreamOf200000Examples) {
  for (const DetectorCase& d : kDetectors) {
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      const RunResult r =
          RunStream(Stream(ConceptStream::Change::kStationary, seed),
                    StreamSpec(d.kind, DriftPolicy::kAlert), 200000);
      EXPECT_TRUE(r.drifts.empty())
          << d.name << " seed " << seed << ": " << r.drifts.size()
          << " false drifts, the first at example " << r.drifts.front();
      std::printf("control %-12s seed %d: %zu drifts in 200000 examples\n",
                  d.name, static_cast<int>(seed), r.drifts.size());
    }
  }
}

TEST(DriftPolicyTest, BoostAndChallengerAdaptFasterThanAlert) {
  for (const DetectorCase& d : kDetectors) {
    const ConceptStream::Options stream =
        Stream(ConceptStream::Change::kAbrupt, 7);
    const int64_t total = kChangeAt + kAfterWindow;
    const RunResult alert =
        RunStream(stream, StreamSpec(d.kind, DriftPolicy::kAlert), total);
    const RunResult boost =
        RunStream(stream, StreamSpec(d.kind, DriftPolicy::kBoost), total);
    const RunResult challenger =
        RunStream(stream, StreamSpec(d.kind, DriftPolicy::kChallenger), total);
    std::printf(
        "%-12s progressive accuracy over the 20000 examples after the "
        "change: ALERT %.4f, BOOST %.4f, CHALLENGER %.4f (%d promoted)\n",
        d.name, alert.accuracy_after, boost.accuracy_after,
        challenger.accuracy_after, static_cast<int>(challenger.promotions));
    EXPECT_GE(boost.accuracy_after, alert.accuracy_after + 0.05) << d.name;
    EXPECT_GE(challenger.accuracy_after, alert.accuracy_after + 0.05) << d.name;
    EXPECT_GE(challenger.promotions, 1u) << d.name;
  }
}

}  // namespace
}  // namespace lepton
