// Rollback, ExportModel and ImportModel between two real lepton_servers, a
// graceful restart and idempotent retries across a kill -9
// (tests/integration/crash_harness.h), every model compared bit for bit with
// the reference. LEPTON_CRASH_SEED fixes the seed of the updates (random
// otherwise; it is printed).
#include <signal.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/learning/model_version.h"
#include "core/store/model_store.h"
#include "gtest/gtest.h"
#include "lepton/v1/lepton.grpc.pb.h"
#include "tests/integration/crash_harness.h"
#include "tests/testing/scratch_dir_fixture.h"
#include "tests/testing/server_process.h"

namespace lepton::testing {
namespace {

TEST(CrashRecoveryTest, RollbackExportImportAndRetry) {
  SCOPED_TRACE(absl::StrCat("LEPTON_CRASH_SEED=", BaseSeed()));
  Rng rng(BaseSeed() ^ 0xfeed);
  TestScratchDir dir_a("lepton-crash-test"), dir_b("lepton-crash-test");
  ASSERT_FALSE(dir_a.path().empty());
  ASSERT_FALSE(dir_b.path().empty());
  const std::vector<std::string> flags_a = {
      absl::StrCat("--data_dir=", dir_a.path()), "--fsync=always",
      "--retained_versions=4"};
  const std::vector<std::string> flags_b = {
      absl::StrCat("--data_dir=", dir_b.path()), "--fsync=always"};
  ServerProcess a(kServerPath), b(kServerPath);
  ASSERT_TRUE(a.Start(flags_a).ok());
  auto ca = std::make_unique<Conn>(a.target());
  Reference ref(/*retained_versions=*/1000);

  const Shape shape{"m", v1::SOFTMAX_REGRESSION, 20, 3};
  const std::vector<v1::Features> probes = Probes(shape);
  v1::ModelSpec spec;
  spec.set_type(shape.type);
  spec.set_num_features(shape.num_features);
  spec.set_num_classes(shape.num_classes);
  spec.set_minibatch_size(2);
  absl::StatusOr<v1::ModelInfo> created = ca->Create("m", spec);
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_NO_FATAL_FAILURE(ref.Create(*created));

  // The server's own predictions at every version, to compare rollbacks with.
  std::map<uint64_t, v1::PredictResponse> at;
  auto snapshot = [&](Conn& conn) {
    absl::StatusOr<v1::PredictResponse> p = conn.Predict("m", probes);
    ASSERT_TRUE(p.ok()) << p.status();
    at[p->version()] = *p;
  };
  auto same_predictions = [](const v1::PredictResponse& x,
                             const v1::PredictResponse& y) {
    ASSERT_EQ(x.predictions_size(), y.predictions_size());
    for (int i = 0; i < x.predictions_size(); ++i) {
      const v1::Prediction& p = x.predictions(i);
      const v1::Prediction& q = y.predictions(i);
      EXPECT_EQ(p.label(), q.label());
      ASSERT_EQ(p.probabilities_size(), q.probabilities_size());
      EXPECT_EQ(
          FirstDifference(p.probabilities().data(), q.probabilities().data(),
                          p.probabilities_size()),
          -1)
          << "probe " << i;
    }
  };
  Workload workload(rng.Next(), {shape}, "w");
  auto update = [&](Conn& conn, v1::UpdateRequest request) {
    request.clear_update_id();
    absl::StatusOr<v1::UpdateResponse> r = conn.Update(request);
    ASSERT_TRUE(r.ok()) << r.status();
    ref.Apply(request, &*r);
  };

  ASSERT_NO_FATAL_FAILURE(snapshot(*ca));
  for (int i = 0; i < 11; ++i) {
    ASSERT_NO_FATAL_FAILURE(update(*ca, workload.Next()));
    ASSERT_NO_FATAL_FAILURE(snapshot(*ca));
  }
  ExpectSameModel(*ca, "m", ref, "m", 0, probes);
  absl::StatusOr<v1::ModelInfo> info = ca->Get("m");
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->version(), 12u);
  EXPECT_EQ(std::vector<uint64_t>(info->retained_versions().begin(),
                                  info->retained_versions().end()),
            (std::vector<uint64_t>{9, 10, 11, 12}));
  EXPECT_EQ(std::vector<uint64_t>(info->checkpointed_versions().begin(),
                                  info->checkpointed_versions().end()),
            (std::vector<uint64_t>{1}));

  // Rollback to a retained version: published as 13, predicting as 10 did.
  absl::StatusOr<v1::ModelInfo> rolled = ca->Rollback("m", 10);
  ASSERT_TRUE(rolled.ok()) << rolled.status();
  EXPECT_EQ(rolled->version(), 13u);
  ASSERT_TRUE(ref.store().Rollback("m", 10).ok());
  ASSERT_NO_FATAL_FAILURE(snapshot(*ca));
  same_predictions(at[13], at[10]);
  ExpectSameModel(*ca, "m", ref, "m", 0, probes);
  // To a version only checkpointed (1, all zeros): published as 14.
  rolled = ca->Rollback("m", 1);
  ASSERT_TRUE(rolled.ok()) << rolled.status();
  EXPECT_EQ(rolled->version(), 14u);
  EXPECT_EQ(rolled->examples_seen(), 0u);
  ASSERT_TRUE(ref.store().Rollback("m", 1).ok());
  ASSERT_NO_FATAL_FAILURE(snapshot(*ca));
  same_predictions(at[14], at[1]);
  ExpectSameModel(*ca, "m", ref, "m", 0, probes);
  // Neither retained nor checkpointed: NOT_FOUND, nothing changes.
  EXPECT_EQ(ca->Rollback("m", 5).status().code(), absl::StatusCode::kNotFound);
  // Learning goes on from the rolled-back state.
  ASSERT_NO_FATAL_FAILURE(update(*ca, workload.Next()));
  ASSERT_NO_FATAL_FAILURE(update(*ca, workload.Next()));
  ExpectSameModel(*ca, "m", ref, "m", 0, probes);
  info = ca->Get("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->version(), 16u);
  EXPECT_EQ(std::vector<uint64_t>(info->checkpointed_versions().begin(),
                                  info->checkpointed_versions().end()),
            (std::vector<uint64_t>{1, 13, 14}))
      << "a rollback is recorded as a checkpoint";

  // Export the newest (16) and a checkpointed version (13) from A, import
  // both into B: same versions, same bits.
  absl::StatusOr<v1::ExportModelResponse> newest = ca->Export("m");
  ASSERT_TRUE(newest.ok()) << newest.status();
  EXPECT_EQ(newest->version(), 16u);
  absl::StatusOr<v1::ExportModelResponse> old = ca->Export("m", 13);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->version(), 13u);
  ASSERT_TRUE(b.Start(flags_b).ok());
  auto cb = std::make_unique<Conn>(b.target());
  absl::StatusOr<v1::ModelInfo> imported = cb->Import("", newest->model());
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->name(), "m");
  EXPECT_EQ(imported->version(), 16u);
  imported = cb->Import("m13", old->model());
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->version(), 13u);
  EXPECT_EQ(cb->Import("m", newest->model()).status().code(),
            absl::StatusCode::kAlreadyExists);
  auto check_b = [&] {
    ExpectSameModel(*cb, "m", ref, "m", 0, probes);
    ExpectSameModel(*cb, "m13", ref, "m", 13, probes);
    absl::StatusOr<v1::PredictResponse> p13 = cb->Predict("m13", probes);
    ASSERT_TRUE(p13.ok()) << p13.status();
    same_predictions(*p13, at[10]);
  };
  ASSERT_NO_FATAL_FAILURE(check_b());

  // B restarts gracefully (SIGTERM: exit status 0) and keeps both. The
  // channel goes first: with an idle client connection still open, the
  // server's shutdown waits out most of --shutdown_grace (~5 s here).
  cb.reset();
  b.process().Signal(SIGTERM);
  EXPECT_EQ(b.process().Wait(absl::Seconds(30)), std::optional<int>(0));
  ASSERT_TRUE(b.Start(flags_b).ok());
  cb = std::make_unique<Conn>(b.target());
  ASSERT_NO_FATAL_FAILURE(check_b());
  // The imported model learns as the original does (same optimizer state).
  const v1::UpdateRequest same = workload.Next();
  {
    v1::UpdateRequest r = same;
    r.clear_update_id();
    absl::StatusOr<v1::UpdateResponse> on_b = cb->Update(r);
    ASSERT_TRUE(on_b.ok()) << on_b.status();
    ASSERT_NO_FATAL_FAILURE(update(*ca, same));
    absl::StatusOr<std::shared_ptr<const ModelVersion>> v =
        ref.store().AcquireVersion("m");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(on_b->version(), (*v)->version());
    ExpectSameModel(*cb, "m", ref, "m", 0, probes);
    ExpectSameModel(*ca, "m", ref, "m", 0, probes);
  }

  // Idempotent retries: "u1" twice, one version.
  v1::UpdateRequest u1 = workload.Next();
  u1.set_update_id("u1");
  absl::StatusOr<v1::UpdateResponse> first = ca->Update(u1);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->version(), 18u);
  ref.Apply(u1, &*first);
  absl::StatusOr<v1::UpdateResponse> again = ca->Update(u1);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->version(), 18u);
  EXPECT_TRUE(SameBits(again->loss_before(), first->loss_before()));
  info = ca->Get("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->version(), 18u) << "the retry was applied again";
  ASSERT_NO_FATAL_FAILURE(update(*ca, workload.Next()));  // 19
  ExpectSameModel(*ca, "m", ref, "m", 0, probes);

  // kill -9 A: it comes back at 19, bit-identical, and still knows "u1".
  a.process().Signal(SIGKILL);
  EXPECT_EQ(a.process().Wait(absl::Seconds(20)), std::optional<int>(-SIGKILL));
  ASSERT_TRUE(a.Start(flags_a).ok());
  ca = std::make_unique<Conn>(a.target());
  ExpectSameModel(*ca, "m", ref, "m", 0, probes);
  absl::StatusOr<v1::UpdateResponse> after = ca->Update(u1);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->version(), 18u);
  EXPECT_EQ(after->examples(), first->examples());
  EXPECT_TRUE(SameBits(after->loss_before(), first->loss_before()));
  info = ca->Get("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->version(), 19u) << "the retry after the restart was applied";
  ExpectSameModel(*ca, "m", ref, "m", 0, probes);
}
}  // namespace
}  // namespace lepton::testing
