#include "core/learning/validation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"

namespace lepton {
namespace {

absl::Status Invalid(PathFn path, absl::string_view field,
                     absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path(), field, ": ", what));
}

// Index of the first non-finite value, or -1. The common all-finite case is
// one branch-free pass that the compiler vectorizes.
int64_t FirstNonFinite(absl::Span<const float> values) {
  uint32_t bad = 0;
  for (float v : values) {
    bad |= !(std::fabs(v) <= std::numeric_limits<float>::max());
  }
  if (bad == 0) return -1;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) return static_cast<int64_t>(i);
  }
  return -1;
}

}  // namespace

absl::Status ValidateFeatures(const ModelSpec& spec, const FeaturesView& f,
                              PathFn path) {
  const int64_t d = spec.num_features;
  if (f.is_dense()) {
    if (!f.indices.empty() || !f.values.empty()) {
      return Invalid(path, "",
                     "give dense values or sparse indices/values, not both");
    }
    if (static_cast<int64_t>(f.dense.size()) != d) {
      return Invalid(path, ".dense",
                     absl::StrCat("has ", f.dense.size(),
                                  " values, the model has num_features ", d));
    }
    if (int64_t i = FirstNonFinite(f.dense); i >= 0) {
      return Invalid(path, absl::StrCat(".dense[", i, "]"), "not finite");
    }
    return absl::OkStatus();
  }
  if (f.indices.size() != f.values.size()) {
    return Invalid(path, ".values",
                   absl::StrCat("has ", f.values.size(), " values for ",
                                f.indices.size(), " indices"));
  }
  for (size_t i = 0; i < f.indices.size(); ++i) {
    if (f.indices[i] >= d) {
      return Invalid(
          path, absl::StrCat(".indices[", i, "]"),
          absl::StrCat(f.indices[i], " is out of range [0, ", d, ")"));
    }
  }
  if (int64_t i = FirstNonFinite(f.values); i >= 0) {
    return Invalid(path, absl::StrCat(".values[", i, "]"), "not finite");
  }
  // Repeated indices: sort a copy of (index, position) and compare neighbours.
  // Ascending input, the common case, is checked without the copy.
  if (std::is_sorted(f.indices.begin(), f.indices.end())) {
    for (size_t i = 1; i < f.indices.size(); ++i) {
      if (f.indices[i] == f.indices[i - 1]) {
        return Invalid(path, absl::StrCat(".indices[", i, "]"),
                       absl::StrCat("repeats index ", f.indices[i]));
      }
    }
    return absl::OkStatus();
  }
  std::vector<std::pair<uint32_t, size_t>> sorted;
  sorted.reserve(f.indices.size());
  for (size_t i = 0; i < f.indices.size(); ++i)
    sorted.emplace_back(f.indices[i], i);
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].first == sorted[i - 1].first) {
      return Invalid(path, absl::StrCat(".indices[", sorted[i].second, "]"),
                     absl::StrCat("repeats index ", sorted[i].first));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateLabelAndWeight(const ModelSpec& spec, float label,
                                    float weight, PathFn path) {
  if (!std::isfinite(label)) return Invalid(path, ".label", "not finite");
  switch (spec.type) {
    case ModelType::kLogisticRegression:
      if (label != 0 && label != 1) {
        return Invalid(path, ".label",
                       absl::StrCat("must be 0 or 1, got ", label));
      }
      break;
    case ModelType::kSoftmaxRegression:
      if (label != std::floor(label) || label < 0 ||
          label >= spec.num_classes) {
        return Invalid(path, ".label",
                       absl::StrCat("must be an integer class in [0, ",
                                    spec.num_classes, "), got ", label));
      }
      break;
    default:
      break;
  }
  if (!std::isfinite(weight) || weight < 0) {
    return Invalid(path, ".weight",
                   absl::StrCat("must be finite and >= 0, got ", weight));
  }
  return absl::OkStatus();
}

absl::Status ValidateInstances(const ModelSpec& spec,
                               absl::Span<const FeaturesView> instances) {
  if (instances.empty()) {
    return absl::InvalidArgumentError("instances: must not be empty");
  }
  for (size_t i = 0; i < instances.size(); ++i) {
    absl::Status s = ValidateFeatures(
        spec, instances[i], [i] { return absl::StrCat("instances[", i, "]"); });
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ValidateExamples(const ModelSpec& spec,
                              absl::Span<const ExampleView> examples) {
  if (examples.empty()) {
    return absl::InvalidArgumentError("examples: must not be empty");
  }
  for (size_t i = 0; i < examples.size(); ++i) {
    absl::Status s = ValidateFeatures(spec, examples[i].features, [i] {
      return absl::StrCat("examples[", i, "].features");
    });
    if (s.ok()) {
      s = ValidateLabelAndWeight(
          spec, examples[i].label, examples[i].weight,
          [i] { return absl::StrCat("examples[", i, "]"); });
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace lepton
