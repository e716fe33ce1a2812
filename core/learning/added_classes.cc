#include "core/learning/added_classes.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace lepton {

absl::Status CheckAddClasses(const ModelSpec& spec, int32_t num_classes,
                             absl::string_view name) {
  if (spec.type != ModelType::kSoftmaxRegression) {
    return absl::FailedPreconditionError(absl::StrCat(
        "num_classes: only SOFTMAX_REGRESSION models have classes; model \"",
        name, "\" is ", ModelTypeName(spec.type)));
  }
  if (num_classes < spec.num_classes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_classes: must be greater than the model's ", spec.num_classes,
        " classes (classes are never removed), got ", num_classes));
  }
  if (num_classes > kMaxClasses) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_classes: must be at most ", kMaxClasses, ", got ", num_classes));
  }
  const int64_t rows = spec.num_features + 1;
  if (rows * num_classes > kMaxParameters) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_classes: (num_features + 1) * num_classes must be at most ",
        kMaxParameters, ", got ", rows, " * ", num_classes));
  }
  return absl::OkStatus();
}

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
  const std::vector<float> old_params = from.params();
  std::vector<float> params = learner.params();
  for (int64_t r = 0; r < from.layout().arrays * rows; ++r) {
    std::copy_n(old_params.data() + r * k, k,
                params.data() + r * grown.num_classes);
  }
  learner.Load(params);
  return learner;
}

}  // namespace lepton
