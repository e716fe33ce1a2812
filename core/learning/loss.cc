#include "core/learning/loss.h"

#include <cmath>

namespace lepton {
namespace {

// log(1 + e^z) without overflow.
double Softplus(double z) {
  return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

float Sigmoid(float z) {
  if (z >= 0) return 1.0f / (1.0f + std::exp(-z));
  const float e = std::exp(z);
  return e / (1.0f + e);
}

int32_t ArgMax(const float* z, int32_t n) {
  int32_t best = 0;
  for (int32_t k = 1; k < n; ++k) {
    if (z[k] > z[best]) best = k;
  }
  return best;
}

}  // namespace

ExampleLoss ComputeLoss(ModelType type, const float* z, int32_t outputs,
                        float label, float* dz) {
  ExampleLoss r;
  switch (type) {
    case ModelType::kLinearRegression: {
      const double diff = static_cast<double>(z[0]) - label;
      r.loss = diff * diff;
      if (dz != nullptr) dz[0] = static_cast<float>(2 * diff);
      break;
    }
    case ModelType::kLogisticRegression: {
      r.loss = Softplus(z[0]) - static_cast<double>(label) * z[0];
      r.correct = (z[0] >= 0) == (label == 1);
      if (dz != nullptr) dz[0] = Sigmoid(z[0]) - label;
      break;
    }
    case ModelType::kSoftmaxRegression: {
      // exp in float (a tenth of the cost of double on the learning path);
      // arguments are <= 0, so nothing overflows.
      const int32_t y = static_cast<int32_t>(label);
      const int32_t best = ArgMax(z, outputs);
      const float max = z[best];
      float sum = 0;
      for (int32_t k = 0; k < outputs; ++k) sum += std::exp(z[k] - max);
      r.loss =
          static_cast<double>(max) + std::log(static_cast<double>(sum)) - z[y];
      r.correct = best == y;
      if (dz != nullptr) {
        const float inv = 1.0f / sum;
        for (int32_t k = 0; k < outputs; ++k)
          dz[k] = std::exp(z[k] - max) * inv;
        dz[y] -= 1.0f;
      }
      break;
    }
    default:
      break;
  }
  return r;
}

int32_t ToPrediction(ModelType type, float* z, int32_t outputs) {
  switch (type) {
    case ModelType::kLogisticRegression: {
      // The label comes from z, as in ComputeLoss: for z just below 0 the
      // float sigmoid rounds to exactly 0.5.
      const int32_t label = z[0] >= 0 ? 1 : 0;
      z[0] = Sigmoid(z[0]);
      return label;
    }
    case ModelType::kSoftmaxRegression: {
      const int32_t best = ArgMax(z, outputs);
      const float max = z[best];
      float sum = 0;
      for (int32_t k = 0; k < outputs; ++k) {
        z[k] = std::exp(z[k] - max);
        sum += z[k];
      }
      const float inv = 1.0f / sum;
      for (int32_t k = 0; k < outputs; ++k) z[k] *= inv;
      return best;
    }
    default:
      return -1;
  }
}

}  // namespace lepton
