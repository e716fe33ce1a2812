#include "bench/load_workload.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace lepton::bench {
namespace {

// A fixed pseudo-random weight in [-1, 1) for feature i: the hidden model of
// the sparse kind, without a 2^22-entry table.
float HiddenWeight(uint64_t i, uint64_t seed) {
  uint64_t z = i + seed * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) / static_cast<float>(1 << 23) - 1.0f;
}

}  // namespace

Workload::Workload(const WorkloadOptions& options) : options_(options) {
  const bool sparse = options_.kind == WorkloadKind::kSparseLogistic;
  if (options_.num_features == 0) {
    options_.num_features = sparse ? int64_t{1} << 22 : 784;
  }
  std::mt19937_64 rng(options_.seed);
  pool_.resize(options_.pool_size);
  if (sparse) {
    std::uniform_int_distribution<uint32_t> index(
        0, static_cast<uint32_t>(options_.num_features - 1));
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (v1::Example& example : pool_) {
      absl::flat_hash_set<uint32_t> seen;
      double z = 0;
      v1::Features* f = example.mutable_features();
      while (f->indices_size() < options_.nonzeros) {
        const uint32_t i = index(rng);
        if (!seen.insert(i).second) continue;  // the server rejects repeats
        f->add_indices(i);
        f->add_values(1.0f);
        z += HiddenWeight(i, options_.seed);
      }
      // A Bernoulli label from the hidden model, so the task is learnable
      // but noisy, as click data is.
      example.set_label(unit(rng) < 1.0 / (1.0 + std::exp(-z)) ? 1.0f : 0.0f);
    }
    return;
  }
  const int64_t d = options_.num_features;
  const int k = options_.num_classes;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> hidden(static_cast<size_t>(d) * k);
  for (float& w : hidden) w = normal(rng);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  for (v1::Example& example : pool_) {
    v1::Features* f = example.mutable_features();
    f->mutable_dense()->Reserve(static_cast<int>(d));
    for (int64_t j = 0; j < d; ++j) f->add_dense(pixel(rng));
    int best = 0;
    float best_z = -INFINITY;
    for (int c = 0; c < k; ++c) {
      float z = 0;
      for (int64_t j = 0; j < d; ++j) z += hidden[c * d + j] * f->dense(j);
      if (z > best_z) best_z = z, best = c;
    }
    example.set_label(static_cast<float>(best));
  }
}

std::string Workload::Describe() const {
  if (options_.kind == WorkloadKind::kSparseLogistic) {
    return absl::StrCat("LOGISTIC_REGRESSION D=", options_.num_features, ", ",
                        options_.nonzeros, " nonzeros/instance (sparse)");
  }
  return absl::StrCat("SOFTMAX_REGRESSION D=", options_.num_features,
                      " K=", options_.num_classes, " (dense)");
}

v1::CreateModelRequest Workload::CreateRequest(const std::string& model) const {
  v1::CreateModelRequest request;
  request.set_name(model);
  v1::ModelSpec* spec = request.mutable_spec();
  spec->set_num_features(options_.num_features);
  if (options_.kind == WorkloadKind::kSparseLogistic) {
    spec->set_type(v1::LOGISTIC_REGRESSION);
  } else {
    spec->set_type(v1::SOFTMAX_REGRESSION);
    spec->set_num_classes(options_.num_classes);
  }
  return request;
}

std::vector<v1::PredictRequest> Workload::PredictRequests(
    const std::string& model, int batch, int count) const {
  std::vector<v1::PredictRequest> requests(count);
  int64_t next = 0;
  for (v1::PredictRequest& request : requests) {
    request.set_model(model);
    for (int i = 0; i < batch; ++i) {
      *request.add_instances() = PoolExample(next++).features();
    }
  }
  return requests;
}

std::vector<v1::UpdateRequest> Workload::UpdateRequests(
    const std::string& model, int batch, int count) const {
  std::vector<v1::UpdateRequest> requests(count);
  int64_t next = 0;
  for (v1::UpdateRequest& request : requests) {
    request.set_model(model);
    for (int i = 0; i < batch; ++i)
      *request.add_examples() = PoolExample(next++);
  }
  return requests;
}

}  // namespace lepton::bench
