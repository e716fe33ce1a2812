#include "core/learning/model_version.h"

#include <algorithm>
#include <utility>

#include "core/learning/loss.h"
#include "core/learning/scoring.h"

namespace lepton {

ModelVersion::ModelVersion(uint64_t version,
                           std::shared_ptr<const ModelSpec> spec,
                           std::shared_ptr<PageArena> arena, ParamTable table,
                           const ModelCounters& counters, absl::Time published)
    : version_(version),
      spec_(std::move(spec)),
      arena_(std::move(arena)),
      table_(table),
      counters_(counters),
      published_(published) {}

ModelVersion::~ModelVersion() { arena_->Release(version_); }

std::vector<float> ModelVersion::params() const {
  const PageLayout& layout = table_.layout();
  const int64_t k = layout.outputs;
  std::vector<float> params(layout.arrays * layout.rows * k);
  float* out = params.data();
  for (int32_t a = 0; a < layout.arrays; ++a) {
    for (int64_t r = 0; r < layout.rows; ++r, out += k) {
      std::copy_n(table_.row(r, a), k, out);
    }
  }
  return params;
}

float ModelVersion::optimizer_state(int64_t feature, int32_t output) const {
  if (table_.layout().arrays < 2) return 0;
  return table_.row(feature, 1)[output];
}

Predictions ModelVersion::Predict(absl::Span<const FeaturesView> instances,
                                  std::vector<float>* raw_outputs) const {
  const int32_t outputs = spec_->num_outputs();
  const int64_t n = static_cast<int64_t>(instances.size());
  Predictions p;
  p.version = version_;
  p.num_outputs = outputs;
  p.scores.resize(n * outputs);
  // One scratch per thread: predictions run concurrently on many threads.
  thread_local ForwardScratch scratch;
  ComputeOutputs(
      PagedWeights{&table_}, spec_->num_features, outputs, n,
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
