// The three models' link functions and losses, on the raw outputs z of one
// example (z = W^T x + b: 1 value, or K for softmax).
//
//   linear    prediction z            loss (z - y)^2               dz = 2(z -
//   y) logistic  prediction sigmoid(z)   loss log(1 + e^z) - y z      dz = p -
//   y softmax   prediction softmax(z)   loss logsumexp(z) - z_y      dz = p -
//   e_y
//
// All are computed in forms that stay finite for any finite z.
#ifndef LEPTON_CORE_LEARNING_LOSS_H_
#define LEPTON_CORE_LEARNING_LOSS_H_

#include <cstdint>

#include "core/learning/model_spec.h"

namespace lepton {

struct ExampleLoss {
  double loss = 0;
  bool correct = false;  // classifiers: the predicted label equals the label
};

// Loss of one example with outputs z[0..outputs). If `dz` is not null, writes
// the derivative of the loss with respect to each output into dz.
ExampleLoss ComputeLoss(ModelType type, const float* z, int32_t outputs,
                        float label, float* dz);

// Turns raw outputs into the served prediction in place (identity, sigmoid, or
// softmax) and returns the predicted label (-1 for linear regression).
int32_t ToPrediction(ModelType type, float* z, int32_t outputs);

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_LOSS_H_
