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

}  // namespace lepton
