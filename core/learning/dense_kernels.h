// Dense products of the forward and backward passes, for the small output
// counts of linear models (1 for linear and logistic, K classes for softmax):
//
//   AddRowsTimesWeights:  Z += X W     (Z: rows x k, X: rows x n, W: n x k)
//   SetWeightsGradient:   G  = X^T D   (G: n x k,    X: m x n,    D: m x k)
//
// Z, W, G and D are row-major with row length k. X is given as pointers to
// its rows (columns col0 .. col0 + n - 1 of each), so the examples of a
// request are used where they are, never copied into one matrix.
// A general GEMM (Eigen's) packs both operands on every call and tiles for
// large matrices; with k = 10 and a mini-batch of 8 rows it ran at a quarter
// of these kernels' speed. Each output element is a sum in ascending index
// order in its own vector lane, so results do not depend on alignment or
// tiling: bit-identical for the same binary.
//
// Over-read and over-write: to stay in full vectors, for k >= 2 the kernels
// read up to kPadFloats floats past the end of W and D, and
// SetWeightsGradient writes up to kPadFloats floats past the end of G (and
// into row j + 1 before that row is written). Callers allocate those buffers
// kPadFloats longer. With k = 1 nothing is read or written past the end.
#ifndef LEPTON_CORE_LEARNING_DENSE_KERNELS_H_
#define LEPTON_CORE_LEARNING_DENSE_KERNELS_H_

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "core/util/array_allocator.h"

namespace lepton {

inline constexpr int64_t kPadFloats = 16;

// Aligned for SIMD; large ones on huge pages (core/util/array_allocator.h).
using AlignedFloats = std::vector<float, ArrayAllocator<float>>;

void AddRowsTimesWeights(const float* const* x, int64_t col0, int64_t rows,
                         const float* w, int64_t n, int32_t k, float* z);

void SetWeightsGradient(const float* const* x, int64_t m, const float* d,
                        int64_t n, int32_t k, float* g);

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_DENSE_KERNELS_H_
