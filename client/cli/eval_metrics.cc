#include "client/cli/eval_metrics.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace lepton::client {
namespace {

// scikit-learn's log_loss clipping: keeps one underflowed probability from
// making the mean infinite.
constexpr double kMinProbability = 1e-15;

}  // namespace

EvalMetrics::EvalMetrics(v1::ModelType type, int32_t num_classes)
    : type_(type), num_classes_(num_classes) {}

absl::Status EvalMetrics::CheckLabel(float label) const {
  if (!std::isfinite(label)) {
    return absl::InvalidArgumentError(
        absl::StrCat("label ", label, " is not finite"));
  }
  switch (type_) {
    case v1::LINEAR_REGRESSION:
      return absl::OkStatus();
    case v1::LOGISTIC_REGRESSION:
      if (label == 0 || label == 1) return absl::OkStatus();
      return absl::InvalidArgumentError(
          absl::StrCat("label ", label, " is not a class: expected 0 or 1"));
    case v1::SOFTMAX_REGRESSION:
      if (label >= 0 && label < num_classes_ && label == std::floor(label)) {
        return absl::OkStatus();
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "label ", label, " is not a class: expected an integer in [0, ",
          num_classes_, ")"));
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "model type ", v1::ModelType_Name(type_), " has no metrics here"));
  }
}

absl::Status EvalMetrics::Add(float label, const v1::Prediction& prediction) {
  if (absl::Status s = CheckLabel(label); !s.ok()) return s;
  if (type_ == v1::LINEAR_REGRESSION) {
    const double error = static_cast<double>(prediction.value()) - label;
    squared_error_sum_ += error * error;
    ++count_;
    return absl::OkStatus();
  }
  const int32_t y = static_cast<int32_t>(label);
  double p = 0;
  if (type_ == v1::LOGISTIC_REGRESSION) {
    p = y == 1 ? prediction.value() : 1.0 - prediction.value();
  } else {
    if (prediction.probabilities_size() != num_classes_) {
      return absl::DataLossError(absl::StrCat(
          "a softmax prediction with ", prediction.probabilities_size(),
          " probabilities; the model has ", num_classes_, " classes"));
    }
    p = prediction.probabilities(y);
  }
  loss_sum_ += -std::log(std::max(p, kMinProbability));
  correct_ += prediction.label() == y;
  ++count_;
  return absl::OkStatus();
}

double EvalMetrics::accuracy() const {
  return count_ == 0 ? 0 : static_cast<double>(correct_) / count_;
}

double EvalMetrics::log_loss() const {
  return count_ == 0 ? 0 : loss_sum_ / count_;
}

double EvalMetrics::rmse() const {
  return count_ == 0 ? 0 : std::sqrt(squared_error_sum_ / count_);
}

}  // namespace lepton::client
