// ModelSpec: what a model is (its type, size, optimizer and regularization),
// fixed when the model is created, and the rules that make a spec valid.
//
// Every default is written beside its field. ValidateModelSpec() and
// ValidateModelName() return INVALID_ARGUMENT with a message that starts with
// the path of the offending field ("spec.num_features: ..."), the same path a
// gRPC client sees.
//
// Thread safety: plain values; const access from many threads is safe.
#ifndef LEPTON_CORE_LEARNING_MODEL_SPEC_H_
#define LEPTON_CORE_LEARNING_MODEL_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/learning/adaptation_config.h"

namespace lepton {

enum class ModelType {
  kUnspecified = 0,
  kLinearRegression = 1,    // squared loss (y - z)^2, real-valued labels
  kLogisticRegression = 2,  // log loss, labels 0 or 1, predicts P(y = 1)
  kSoftmaxRegression = 3,   // cross-entropy, labels 0..K-1, predicts K probs
};

enum class OptimizerKind {
  kUnspecified = 0,
  // w -= eta_t * g with eta_t = learning_rate / (1 + t)^power_t, where t is the
  // number of steps the model has taken before this one.
  kSgd = 1,
  // Per-coordinate rates (Duchi et al. 2011):
  //   acc += g^2;  w -= learning_rate * g / (sqrt(acc) + epsilon).
  kAdagrad = 2,
  // FTRL-Proximal (McMahan et al. 2013, Algorithm 1), per coordinate, with
  // alpha = learning_rate and two state arrays z and n:
  //   sigma = (sqrt(n + g^2) - sqrt(n)) / alpha;  z += g - sigma * w;
  //   n += g^2;
  //   w = 0 if |z| <= l1, else
  //       -(z - sign(z) * l1) / ((beta + sqrt(n)) / alpha + l2).
  // L1 makes weights exactly zero; l2 is the spec's l2, applied here in the
  // closed form instead of being added to the gradient. The bias gets
  // neither l1 nor l2.
  kFtrl = 3,
  // Adam (Kingma & Ba 2015) with state arrays m and v:
  //   g += l2 * w;  m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2)
  //   g^2; w -= learning_rate * m / (1 - beta1^t) /
  //        (sqrt(v / (1 - beta2^t)) + epsilon),
  // t = the model's step number, 1-based, counted over all steps (also the
  // ones that did not touch this coordinate). A sparse step updates m and v
  // of the rows it touches only ("lazy" Adam): the moments of other rows do
  // not decay in between.
  kAdam = 4,
};

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kAdagrad;
  float learning_rate = 0.05f;  // > 0
  float power_t = 0.0f;         // SGD only: >= 0; 0 keeps the rate constant
  float epsilon = 1e-6f;        // AdaGrad and Adam: > 0
  float initial_accumulator = 0.0f;  // AdaGrad only: >= 0
  float beta = 1.0f;                 // FTRL only: > 0
  float l1 = 0.0f;                   // FTRL only: >= 0
  float beta1 = 0.9f;                // Adam only: in [0, 1)
  float beta2 = 0.999f;              // Adam only: in [0, 1)
};

struct ModelSpec {
  ModelType type = ModelType::kUnspecified;
  // D: the length of a dense example and the bound on sparse indices.
  int64_t num_features = 0;  // 1 .. kMaxFeatures
  // K: softmax only, 2 .. kMaxClasses. 0 for the other types.
  int32_t num_classes = 0;
  OptimizerConfig optimizer;
  // L2 strength lambda: the step adds lambda * w to the gradient of every
  // weight the step touches (never to the bias).
  float l2 = 0.0f;  // >= 0
  // Examples per optimizer step. 1 is pure online learning (one step per
  // example); larger values average the gradient over that many consecutive
  // examples of an update, which is much faster on dense inputs.
  int32_t minibatch_size = 16;  // 1 .. kMaxMinibatch
  // Gradient clipping, for every optimizer: if the L2 norm of a step's mean
  // loss gradient (over every coordinate the step touches, the bias
  // included, before any L2 term) exceeds this, the whole gradient is scaled
  // down to this norm. 0 = off. So one absurd example (a regression label of
  // 1e30) moves the model no further than a normal one can.
  float max_gradient_norm = 0.0f;  // >= 0
  // No weight changes by more than this in one step (a per-coordinate clamp
  // of the change, to within float rounding). For FTRL the weight is clamped
  // relative to its previous value while z and n keep their unclamped
  // update, so the weight then approaches its closed-form value by at most
  // max_step per step that touches it. 0 = off.
  float max_step = 0.0f;  // >= 0
  // Drift detection and what to do on a drift (adaptation_config.h).
  DriftConfig drift;
  // The holdout (validation) set and the guardrail on updates.
  GuardrailConfig guardrail;

  // Named features (feature_hashing.h): the seed of every hash that maps a
  // namespace, a feature name or an interaction pair to an index. Models
  // with different seeds spread the same names differently.
  uint32_t hash_seed = 0;
  // Quadratic interactions between namespaces, Vowpal Wabbit style: each
  // entry is 2 printable ASCII characters (' ' to '~'), "ua" crossing the
  // namespaces whose names start with 'u' with those starting with 'a'. At
  // most kMaxInteractions entries, none repeated.
  std::vector<std::string> interactions;

  // Outputs per example: 1 for linear and logistic, K for softmax.
  int32_t num_outputs() const {
    return type == ModelType::kSoftmaxRegression ? num_classes : 1;
  }
  bool is_classifier() const { return type != ModelType::kLinearRegression; }
};

// Parameter arrays of a model with `spec` (array 0 = the weights, the others
// the optimizer's per-coordinate state): 2 for AdaGrad (accumulators), 3 for
// FTRL (z, n) and Adam (m, v), 1 for SGD.
int32_t ParamArrays(const ModelSpec& spec);

inline constexpr int64_t kMaxFeatures = int64_t{1} << 26;
inline constexpr int32_t kMaxClasses = 1 << 16;
// Bound on (num_features + 1) * num_outputs, the weights of one model.
inline constexpr int64_t kMaxParameters = int64_t{1} << 28;
inline constexpr int32_t kMaxMinibatch = 1 << 16;
inline constexpr size_t kMaxModelNameLength = 128;
inline constexpr size_t kMaxInteractions = 64;

absl::Status ValidateModelSpec(const ModelSpec& spec);

// A name is 1 to 128 characters of [A-Za-z0-9._-] and does not start with '.'
// (names become file names once models are persisted).
absl::Status ValidateModelName(absl::string_view name);

absl::string_view ModelTypeName(ModelType type);
absl::string_view OptimizerKindName(OptimizerKind kind);

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_MODEL_SPEC_H_
