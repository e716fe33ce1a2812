// ModelVersion: one immutable, published state of a model: its weights and
// optimizer state (as shared pages, see page_arena.h), its counters, and its
// version number. Predictions are computed from a version and say which.
//
// A std::shared_ptr<const ModelVersion> is the handle a reader holds while it
// uses a version (like TensorFlow Serving's ServableHandle): the version, and
// the pages it reaches, stay alive until the last handle is dropped, even
// after the model has moved on or evicted it from its retained window.
//
// Thread safety: immutable after construction; every method is const and may
// be called from any number of threads without locking.
#ifndef LEPTON_CORE_LEARNING_MODEL_VERSION_H_
#define LEPTON_CORE_LEARNING_MODEL_VERSION_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/page_arena.h"
#include "core/learning/prediction_types.h"
#include "core/learning/update_types.h"

namespace lepton {

class ModelVersion {
 public:
  // Takes over the arena's registration of `version` (see PageArena).
  ModelVersion(uint64_t version, std::shared_ptr<const ModelSpec> spec,
               std::shared_ptr<PageArena> arena, ParamTable table,
               const ModelCounters& counters, absl::Time published);
  // Virtual: the store publishes versions of a subclass (published_version.h).
  virtual ~ModelVersion();
  ModelVersion(const ModelVersion&) = delete;
  ModelVersion& operator=(const ModelVersion&) = delete;

  uint64_t version() const { return version_; }
  const ModelSpec& spec() const { return *spec_; }
  const ModelCounters& counters() const { return counters_; }
  absl::Time published() const { return published_; }
  const ParamTable& table() const { return table_; }
  // The arena that owns its pages. A model's versions share one arena until
  // classes are added (Model::AddClasses), which starts a new one.
  PageArena* arena() const { return arena_.get(); }
  // Every parameter, in ModelState::params layout (arrays x rows x outputs).
  std::vector<float> params() const;

  // Weight of `feature` for `output` (0 for linear and logistic, the class for
  // softmax); feature == num_features is the bias.
  float weight(int64_t feature, int32_t output = 0) const {
    return table_.row(feature, 0)[output];
  }
  // Optimizer state array 1 for the same coordinate (AdaGrad: the
  // accumulator; FTRL: z; Adam: m).
  float optimizer_state(int64_t feature, int32_t output = 0) const;

  // Predictions for instances already validated against spec(). With
  // `raw_outputs`, also the raw outputs z behind them (size() x num_outputs,
  // the input of ComputeLoss).
  Predictions Predict(absl::Span<const FeaturesView> instances,
                      std::vector<float>* raw_outputs = nullptr) const;

 private:
  const uint64_t version_;
  const std::shared_ptr<const ModelSpec> spec_;
  const std::shared_ptr<PageArena> arena_;
  const ParamTable table_;
  const ModelCounters counters_;
  const absl::Time published_;
};

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_MODEL_VERSION_H_
