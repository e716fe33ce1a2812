// Model: one named, learning model: its spec, its writer (Learner), and the
// window of its most recent published versions.
//
// Concurrency design:
// - update_mu_ serializes updates to this model (and only this model). It
//   guards the Learner, the one mutable copy of the parameters. An update is
//   validated before the lock is taken, applied to the Learner under it, and
//   published as a new immutable ModelVersion, or undone whole.
// - versions_mu_ guards only the deque of retained versions. It is held just
//   long enough to copy or swap a std::shared_ptr, never while learning, so a
//   reader (Predict, Get) never waits for an update in progress: it takes the
//   newest published version and computes outside every lock. The handle it
//   holds keeps that version alive until it is done.
// - Lock order: update_mu_ before versions_mu_.
//
// Versions: a new model is version 1 (all weights zero). Each applied update
// publishes version + 1; a rejected update publishes nothing. Versions are
// never reused. The newest `retained_versions` stay available to pin.
#ifndef LEPTON_CORE_MODEL_H_
#define LEPTON_CORE_MODEL_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/example.h"
#include "core/learner.h"
#include "core/model_spec.h"
#include "core/model_version.h"
#include "core/mutex.h"
#include "core/page_arena.h"

namespace lepton {

struct UpdateOptions {
  // Passes over the batch, 1 .. kMaxEpochs.
  int32_t epochs = 1;
  // Replaces the spec's base learning rate for this update only (> 0).
  std::optional<float> learning_rate;
};

inline constexpr int32_t kMaxEpochs = 1000;

struct UpdateResult {
  uint64_t version = 0;  // the version this update published
  int64_t examples = 0;
  // Progressive validation: the batch's weighted mean loss (and accuracy, for
  // classifiers) under the model as it was before this update; 0 when the
  // example weights sum to 0.
  double loss_before = 0;
  std::optional<double> accuracy_before;
};

struct ModelInfo {
  std::string name;
  ModelSpec spec;
  uint64_t version = 0;  // newest
  ModelCounters counters;
  std::vector<uint64_t> retained_versions;  // ascending, newest last
  int64_t memory_bytes = 0;  // parameter pages of all live versions + writer
  absl::Time created;
  absl::Time updated;  // when the newest version was published
};

class Model {
 public:
  // `spec` and `name` must be valid; retained_versions >= 1.
  Model(std::string name, const ModelSpec& spec, int32_t retained_versions);
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::string& name() const { return name_; }
  const ModelSpec& spec() const { return *spec_; }

  // The newest version. Never blocks behind an update.
  std::shared_ptr<const ModelVersion> Latest() const
      ABSL_LOCKS_EXCLUDED(versions_mu_);
  // Version `version` (0 = the newest); NOT_FOUND if it does not exist or is
  // no longer retained.
  absl::StatusOr<std::shared_ptr<const ModelVersion>> Version(
      uint64_t version) const ABSL_LOCKS_EXCLUDED(versions_mu_);

  absl::StatusOr<Predictions> Predict(absl::Span<const FeaturesView> instances,
                                      uint64_t version = 0) const;

  // Validates everything first (INVALID_ARGUMENT naming the field; nothing
  // changes), then learns and publishes one new version.
  absl::StatusOr<UpdateResult> Update(absl::Span<const ExampleView> examples,
                                      const UpdateOptions& options)
      ABSL_LOCKS_EXCLUDED(update_mu_, versions_mu_);

  ModelInfo Info() const ABSL_LOCKS_EXCLUDED(versions_mu_);

 private:
  void Publish(std::shared_ptr<const ModelVersion> version)
      ABSL_LOCKS_EXCLUDED(versions_mu_);

  const std::string name_;
  const std::shared_ptr<const ModelSpec> spec_;
  const size_t retained_versions_;
  const absl::Time created_;

  Mutex update_mu_ ABSL_ACQUIRED_BEFORE(versions_mu_);
  Learner learner_ ABSL_GUARDED_BY(update_mu_);
  std::atomic<int64_t> learner_bytes_{0};
  // Owns the pages of every version (shared with them, see page_arena.h).
  const std::shared_ptr<PageArena> arena_;

  mutable Mutex versions_mu_;
  // Oldest first; never empty; consecutive version numbers.
  std::deque<std::shared_ptr<const ModelVersion>> retained_
      ABSL_GUARDED_BY(versions_mu_);
};

}  // namespace lepton

#endif  // LEPTON_CORE_MODEL_H_
