// ModelVersion: one immutable, published state of a model: its weights and
// optimizer state (a ParamsVersion, see versioned_params.h), its counters,
// and its version number. Predictions are computed from a version and say
// which.
//
// A std::shared_ptr<const ModelVersion> is the handle a reader holds while it
// uses a version (like TensorFlow Serving's ServableHandle): the version and
// its parameters stay readable until the last handle is dropped, even after
// the model has moved on or evicted it from its retained window.
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
#include "core/learning/prediction_types.h"
#include "core/learning/update_types.h"
#include "core/learning/versioned_params.h"

namespace lepton {

class ModelVersion {
 public:
  // `params` is the learner's commit of this version.
  ModelVersion(std::shared_ptr<const ParamsVersion> params,
               std::shared_ptr<const ModelSpec> spec,
               const ModelCounters& counters, absl::Time published);
  // Virtual: the store publishes versions of a subclass (published_version.h).
  virtual ~ModelVersion() = default;
  ModelVersion(const ModelVersion&) = delete;
  ModelVersion& operator=(const ModelVersion&) = delete;

  uint64_t version() const { return params_->version(); }
  const ModelSpec& spec() const { return *spec_; }
  const ModelCounters& counters() const { return counters_; }
  absl::Time published() const { return published_; }
  // Its parameters. A model's versions share one VersionedParams (owner())
  // until classes are added (Model::AddClasses), which starts a new one.
  const ParamsVersion& stored_params() const { return *params_; }
  // Every parameter, in ModelState::params layout (arrays x rows x outputs).
  std::vector<float> params() const;

  // Weight of `feature` for `output` (0 for linear and logistic, the class for
  // softmax); feature == num_features is the bias.
  float weight(int64_t feature, int32_t output = 0) const {
    return Param(0, feature, output);
  }
  // Optimizer state array 1 for the same coordinate (AdaGrad: the
  // accumulator; FTRL: z; Adam: m). Copies every parameter of a large model
  // (a call for tests).
  float optimizer_state(int64_t feature, int32_t output = 0) const;

  // Predictions for instances already validated against spec(). With
  // `raw_outputs`, also the raw outputs z behind them (size() x num_outputs,
  // the input of ComputeLoss). `pin`, if given, must be a read of this
  // version's parameters.
  Predictions Predict(absl::Span<const FeaturesView> instances,
                      std::vector<float>* raw_outputs = nullptr,
                      const ParamsPin* pin = nullptr) const;

 private:
  float Param(int32_t array, int64_t feature, int32_t output) const;

  const std::shared_ptr<const ParamsVersion> params_;
  const std::shared_ptr<const ModelSpec> spec_;
  const ModelCounters counters_;
  const absl::Time published_;
};

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_MODEL_VERSION_H_
