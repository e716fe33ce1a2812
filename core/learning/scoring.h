// The forward pass shared by prediction and learning: raw outputs
// z = W^T x + b for a batch of instances, over the learner's working weights
// or a published version's (both contiguous, ParamLayout order).
//
// Dense instances are multiplied where they are, block by block of the
// weights (ParamLayout::block_shift; a single block for small models) with
// the kernels of dense_kernels.h; sparse instances gather only the rows
// they name. The order of every sum depends only on the model's layout and
// the batch, never on threads, timing or alignment, so results are
// bit-identical run to run for the same binary.
#ifndef LEPTON_CORE_LEARNING_SCORING_H_
#define LEPTON_CORE_LEARNING_SCORING_H_

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/learning/dense_kernels.h"
#include "core/learning/example.h"

namespace lepton {

// Weights as one contiguous rows x outputs row-major array, taken in blocks of
// 2^block_shift rows.
struct ContiguousWeights {
  const float* data;
  int64_t rows;
  int32_t outputs;
  int block_shift;

  const float* row(int64_t r) const { return data + r * outputs; }
  // Calls f(first_row, row_count, block) for each block of consecutive rows.
  template <typename F>
  void ForEachBlock(F&& f) const {
    const int64_t block = int64_t{1} << block_shift;
    for (int64_t first = 0; first < rows; first += block) {
      f(first, std::min(block, rows - first), row(first));
    }
  }
};

// Dense rows, each num_features floats, given by pointers to where they are.
struct DenseRows {
  const float* const* rows = nullptr;
  int64_t count = 0;
};

// Grows `buffer` to at least n + kPadFloats floats (it never shrinks, so a
// scratch buffer stops reallocating) and returns it.
inline float* Reserve(AlignedFloats& buffer, int64_t n) {
  if (static_cast<int64_t>(buffer.size()) < n + kPadFloats) {
    buffer.resize(n + kPadFloats);
  }
  return buffer.data();
}

// Sets z (row-major n x outputs) to the bias plus the sparse instances'
// contributions, for instances get(0) .. get(n-1) (each a validated
// FeaturesView), and lists the positions of the dense ones in *dense_index.
template <typename Weights, typename Get>
void SparseOutputs(const Weights& w, int64_t num_features, int32_t outputs,
                   int64_t n, Get&& get, std::vector<int64_t>* dense_index,
                   float* z) {
  const float* bias = w.row(num_features);
  dense_index->clear();
  for (int64_t i = 0; i < n; ++i) {
    const FeaturesView& f = get(i);
    if (i + 1 < n) {
      // The next instance's rows are scattered: fetch them meanwhile.
      for (const uint32_t j : get(i + 1).indices) __builtin_prefetch(w.row(j));
    }
    float* zi = z + i * outputs;
    std::copy(bias, bias + outputs, zi);
    if (f.is_dense()) {
      dense_index->push_back(i);
      continue;
    }
    for (size_t k = 0; k < f.indices.size(); ++k) {
      const float v = f.values[k];
      const float* wr = w.row(f.indices[k]);
      for (int32_t o = 0; o < outputs; ++o) zi[o] += v * wr[o];
    }
  }
}

// Points `rows` at the dense instances get(index[r]).
template <typename Get>
DenseRows DenseRowsOf(const std::vector<int64_t>& index, Get&& get,
                      std::vector<const float*>* rows) {
  rows->clear();
  for (int64_t i : index) rows->push_back(get(i).dense.data());
  return DenseRows{rows->data(), static_cast<int64_t>(rows->size())};
}

// Adds X W (without the bias row) to rows z[index[r]], X = `dense`, block by
// block of the weights.
template <typename Weights>
void AddDenseOutputs(const Weights& w, int64_t num_features, int32_t outputs,
                     const DenseRows& dense, const std::vector<int64_t>& index,
                     AlignedFloats* out_buffer, float* z) {
  const int64_t rows = dense.count;
  if (rows == 0) return;
  float* out = Reserve(*out_buffer, rows * outputs);
  std::fill(out, out + rows * outputs, 0.0f);
  w.ForEachBlock([&](int64_t first, int64_t count, const float* block) {
    count = std::min(count, num_features - first);  // the bias row is apart
    if (count <= 0) return;
    AddRowsTimesWeights(dense.rows, first, rows, block, count, outputs, out);
  });
  for (int64_t r = 0; r < rows; ++r) {
    float* zi = z + index[r] * outputs;
    for (int32_t o = 0; o < outputs; ++o) zi[o] += out[r * outputs + o];
  }
}

// Reusable buffers of ComputeOutputs.
struct ForwardScratch {
  std::vector<const float*> dense_rows;
  AlignedFloats out;
  std::vector<int64_t> dense_index;
};

// Writes the raw outputs of instances get(0) .. get(n-1) into z.
template <typename Weights, typename Get>
void ComputeOutputs(const Weights& w, int64_t num_features, int32_t outputs,
                    int64_t n, Get&& get, ForwardScratch* s, float* z) {
  SparseOutputs(w, num_features, outputs, n, get, &s->dense_index, z);
  if (s->dense_index.empty()) return;
  const DenseRows dense = DenseRowsOf(s->dense_index, get, &s->dense_rows);
  AddDenseOutputs(w, num_features, outputs, dense, s->dense_index, &s->out, z);
}

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_SCORING_H_
