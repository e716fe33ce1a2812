// Synthetic workloads for load_bench: the spec of the model under load and
// pools of ready-made requests for it, all from a fixed seed, so every run
// sends the same bytes.
//
//   Workload w(options);
//   CreateModelRequest create = w.CreateRequest("load-bench-123");
//   std::vector<PredictRequest> p = w.PredictRequests("load-bench-123", 64,
//   16);
//
// Two kinds, the two shapes the README's benchmarks use:
//   kSparseLogistic  click-through style: LOGISTIC_REGRESSION, D = 2^22,
//                    40 nonzeros per instance (value 1, like hashed one-hot
//                    features), labels drawn from a hidden logistic model.
//   kDenseSoftmax    Fashion-MNIST style: SOFTMAX_REGRESSION, D = 784, K = 10,
//                    dense values in [0, 1), labels the arg-max of a hidden
//                    linear model.
// Requests cycle through one pool of examples, so predictions touch the rows
// that pre-training taught.
//
// Thread safety: build the pools on one thread; the pools are then read-only.
#ifndef LEPTON_BENCH_LOAD_WORKLOAD_H_
#define LEPTON_BENCH_LOAD_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "lepton/v1/lepton.pb.h"

namespace lepton::bench {

enum class WorkloadKind { kSparseLogistic, kDenseSoftmax };

struct WorkloadOptions {
  WorkloadKind kind = WorkloadKind::kSparseLogistic;
  // D; 0 means the kind's default (2^22 sparse, 784 dense).
  int64_t num_features = 0;
  // Sparse only: nonzeros per instance.
  int nonzeros = 40;
  // Dense softmax only: K.
  int num_classes = 10;
  // Distinct examples in the pool the requests cycle through.
  int pool_size = 4096;
  uint64_t seed = 1;
};

class Workload {
 public:
  explicit Workload(const WorkloadOptions& options);

  // One line naming the model type and shape, e.g. "LOGISTIC_REGRESSION
  // D=4194304, 40 nonzeros/instance".
  std::string Describe() const;
  // The spec's defaults are the server's (AdaGrad 0.05, minibatch 16).
  v1::CreateModelRequest CreateRequest(const std::string& model) const;
  // `count` requests of `batch` items each, consecutive slices of the pool.
  std::vector<v1::PredictRequest> PredictRequests(const std::string& model,
                                                  int batch, int count) const;
  std::vector<v1::UpdateRequest> UpdateRequests(const std::string& model,
                                                int batch, int count) const;

 private:
  const v1::Example& PoolExample(int64_t i) const {
    return pool_[static_cast<size_t>(i) % pool_.size()];
  }

  WorkloadOptions options_;
  std::vector<v1::Example> pool_;
};

}  // namespace lepton::bench

#endif  // LEPTON_BENCH_LOAD_WORKLOAD_H_
