#include "core/learning/model_version.h"

#include <algorithm>
#include <utility>

#include "core/learning/loss.h"
#include "core/learning/scoring.h"

namespace lepton {

ModelVersion::ModelVersion(std::shared_ptr<const ParamsVersion> params,
                           std::shared_ptr<const ModelSpec> spec,
                           const ModelCounters& counters, absl::Time published)
    : params_(std::move(params)),
      spec_(std::move(spec)),
      counters_(counters),
      published_(published) {}

std::vector<float> ModelVersion::params() const { return params_->CopyAll(); }

float ModelVersion::Param(int32_t array, int64_t feature,
                          int32_t output) const {
  const ParamLayout& l = params_->layout();
  const int64_t at = array * l.array_floats() + feature * l.outputs + output;
  if (array == 0) return params_->Read().data()[at];
  return params_->CopyAll()[at];  // the state is read whole (tests)
}

float ModelVersion::optimizer_state(int64_t feature, int32_t output) const {
  if (params_->layout().arrays < 2) return 0;
  return Param(1, feature, output);
}

Predictions ModelVersion::Predict(absl::Span<const FeaturesView> instances,
                                  std::vector<float>* raw_outputs,
                                  const ParamsPin* pin) const {
  ParamsPin own;
  if (pin == nullptr) {
    own = params_->Read();
    pin = &own;
  }
  const ParamLayout& layout = params_->layout();
  const int32_t outputs = spec_->num_outputs();
  const int64_t n = static_cast<int64_t>(instances.size());
  Predictions p;
  p.version = version();
  p.num_outputs = outputs;
  p.scores.resize(n * outputs);
  // One scratch per thread: predictions run concurrently on many threads.
  thread_local ForwardScratch scratch;
  ComputeOutputs(
      ContiguousWeights{pin->data(), layout.rows, outputs, layout.block_shift},
      spec_->num_features, outputs, n,
      [&](int64_t i) -> const FeaturesView& { return instances[i]; }, &scratch,
      p.scores.data());
  if (raw_outputs != nullptr)
    raw_outputs->assign(p.scores.begin(), p.scores.end());
  if (spec_->is_classifier()) p.labels.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t label =
        ToPrediction(spec_->type, p.scores.data() + i * outputs, outputs);
    if (spec_->is_classifier()) p.labels[i] = label;
  }
  return p;
}

}  // namespace lepton
