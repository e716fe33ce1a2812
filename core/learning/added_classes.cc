#include "core/learning/added_classes.h"

#include <algorithm>

namespace lepton {

std::vector<float> PadServedOutputs(absl::Span<const float> served,
                                    int32_t num_outputs) {
  std::vector<float> padded(served.begin(), served.end());
  if (served.empty() || static_cast<int64_t>(served.size()) >= num_outputs) {
    return padded;
  }
  const float max = *std::max_element(served.begin(), served.end());
  padded.resize(num_outputs, max - kAddedClassLogitGap);
  return padded;
}

Learner GrowClasses(const Learner& from, const ModelSpec& grown) {
  Learner learner(grown);
  const int64_t k = from.layout().outputs;
  const int64_t rows = grown.num_features + 1;
  const absl::Span<const float> old_params = from.params();
  std::vector<float> params(learner.params().begin(), learner.params().end());
  for (int64_t r = 0; r < from.layout().arrays * rows; ++r) {
    std::copy_n(old_params.data() + r * k, k,
                params.data() + r * grown.num_classes);
  }
  learner.Load(params);
  return learner;
}

}  // namespace lepton
