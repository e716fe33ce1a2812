// EvalMetrics: the quality of a model's predictions against known labels,
// as `lepton_client eval` reports it.
//
//   classifiers        accuracy (the predicted label is the true one) and
//                      mean log loss, -ln P(true label), in nats
//   LINEAR_REGRESSION  RMSE, the root of the mean squared error
//
// Every example counts once (the files carry no weights). The probabilities
// come from the server as floats; one that underflowed to 0 counts as 1e-15
// (34.5 nats), as scikit-learn's log_loss clips, instead of making the mean
// infinite.
//
// Thread safety: none; one thread adds to it.
#ifndef LEPTON_CLIENT_CLI_EVAL_METRICS_H_
#define LEPTON_CLIENT_CLI_EVAL_METRICS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "lepton/v1/lepton.pb.h"

namespace lepton::client {

class EvalMetrics {
 public:
  // `num_classes`: K for SOFTMAX_REGRESSION, ignored otherwise.
  EvalMetrics(v1::ModelType type, int32_t num_classes);

  // OK if `label` is one the model could predict: 0 or 1 (logistic), an
  // integer in [0, K) (softmax), any finite value (linear). INVALID_ARGUMENT
  // otherwise ("label 3.5 is not a class: expected an integer in [0, 10)").
  absl::Status CheckLabel(float label) const;

  // Adds one example's prediction. INVALID_ARGUMENT for a label CheckLabel()
  // rejects; DATA_LOSS for a prediction of the wrong shape (a softmax one
  // without K probabilities).
  absl::Status Add(float label, const v1::Prediction& prediction);

  bool is_classifier() const { return type_ != v1::LINEAR_REGRESSION; }
  int64_t count() const { return count_; }
  // 0 before any example.
  double accuracy() const;
  double log_loss() const;
  double rmse() const;
  // The sums behind them (for a plot's points): correct predictions, log
  // loss (classifiers) and squared error (linear).
  int64_t correct() const { return correct_; }
  double loss_sum() const { return loss_sum_; }
  double squared_error_sum() const { return squared_error_sum_; }

 private:
  const v1::ModelType type_;
  const int32_t num_classes_;
  int64_t count_ = 0;
  int64_t correct_ = 0;
  double loss_sum_ = 0;           // log loss, classifiers
  double squared_error_sum_ = 0;  // regression
};

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_CLI_EVAL_METRICS_H_
