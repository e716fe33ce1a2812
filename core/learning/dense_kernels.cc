#include "core/learning/dense_kernels.h"

#include <algorithm>

namespace lepton {
namespace {

// Eight floats; GCC lowers the arithmetic to AVX2 (+ FMA) under
// -march=x86-64-v3 and to narrower instructions elsewhere.
typedef float V8 __attribute__((vector_size(32)));

inline V8 Load(const float* p) {
  V8 v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

inline void Store(float* p, V8 v) { __builtin_memcpy(p, &v, sizeof(v)); }

// Accumulators are zeroed one by one: an aggregate `= {}` on an array of
// vectors became a `rep stos` into the stack, half the kernel's time.
inline V8 Zero() { return V8{0, 0, 0, 0, 0, 0, 0, 0}; }

// Sum of the lanes, in lane order.
inline float LaneSum(V8 v) {
  float s = v[0];
  for (int l = 1; l < 8; ++l) s += v[l];
  return s;
}

// Z[r, 0..lanes) += sum_j X[r, j] W[j, 0..lanes) for NR rows, in NC vectors.
template <int NR, int NC>
void MultiOutputTile(const float* const* x, int64_t col0, const float* w,
                     int64_t n, int32_t k, int lanes, float* z) {
  const float* xr[NR];
  for (int r = 0; r < NR; ++r) xr[r] = x[r] + col0;
  V8 acc[NR][NC];
  for (int r = 0; r < NR; ++r) {
    for (int c = 0; c < NC; ++c) acc[r][c] = Zero();
  }
  for (int64_t j = 0; j < n; ++j) {
    V8 wv[NC];
    for (int c = 0; c < NC; ++c) wv[c] = Load(w + j * k + 8 * c);
    for (int r = 0; r < NR; ++r) {
      const float xv = xr[r][j];
      for (int c = 0; c < NC; ++c) acc[r][c] += xv * wv[c];
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int l = 0; l < lanes; ++l) z[r * k + l] += acc[r][l / 8][l % 8];
  }
}

template <int NC>
void MultiOutput(const float* const* x, int64_t col0, int64_t rows,
                 const float* w, int64_t n, int32_t k, int lanes, float* z) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    MultiOutputTile<4, NC>(x + r, col0, w, n, k, lanes, z + r * k);
  }
  for (; r < rows; ++r) {
    MultiOutputTile<1, NC>(x + r, col0, w, n, k, lanes, z + r * k);
  }
}

// z[r] += X[r, :] . w for NR rows.
template <int NR>
void SingleOutputTile(const float* const* x, int64_t col0, const float* w,
                      int64_t n, float* z) {
  const float* xr[NR];
  for (int r = 0; r < NR; ++r) xr[r] = x[r] + col0;
  V8 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = Zero();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const V8 wv = Load(w + j);
    for (int r = 0; r < NR; ++r) acc[r] += Load(xr[r] + j) * wv;
  }
  for (int r = 0; r < NR; ++r) {
    float s = LaneSum(acc[r]);
    for (int64_t t = j; t < n; ++t) s += xr[r][t] * w[t];
    z[r] += s;
  }
}

// Rows j .. j + NJ - 1 of G = X^T D for k <= 8 * NC outputs: each written
// whole with full-vector stores, in ascending order, so the lanes a store
// spills past row j land in row j + 1 before that row is written.
template <int NJ, int NC>
void GradientTile(const float* const* x, int64_t j0, int64_t m, const float* d,
                  int32_t k, float* g) {
  V8 acc[NJ][NC];
  for (int jj = 0; jj < NJ; ++jj) {
    for (int c = 0; c < NC; ++c) acc[jj][c] = Zero();
  }
  for (int64_t i = 0; i < m; ++i) {
    V8 dv[NC];
    for (int c = 0; c < NC; ++c) dv[c] = Load(d + i * k + 8 * c);
    const float* xi = x[i] + j0;
    for (int jj = 0; jj < NJ; ++jj) {
      const float xv = xi[jj];
      for (int c = 0; c < NC; ++c) acc[jj][c] += xv * dv[c];
    }
  }
  for (int jj = 0; jj < NJ; ++jj) {
    for (int c = 0; c < NC; ++c) Store(g + jj * k + 8 * c, acc[jj][c]);
  }
}

}  // namespace

void AddRowsTimesWeights(const float* const* x, int64_t col0, int64_t rows,
                         const float* w, int64_t n, int32_t k, float* z) {
  if (k == 1) {
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
      SingleOutputTile<4>(x + r, col0, w, n, z + r);
    }
    for (; r < rows; ++r) SingleOutputTile<1>(x + r, col0, w, n, z + r);
    return;
  }
  for (int32_t c0 = 0; c0 < k; c0 += 16) {
    const int lanes = std::min(16, k - c0);
    if (lanes > 8) {
      MultiOutput<2>(x, col0, rows, w + c0, n, k, lanes, z + c0);
    } else {
      MultiOutput<1>(x, col0, rows, w + c0, n, k, lanes, z + c0);
    }
  }
}

void SetWeightsGradient(const float* const* x, int64_t m, const float* d,
                        int64_t n, int32_t k, float* g) {
  if (k == 1) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      V8 acc = Zero();
      for (int64_t i = 0; i < m; ++i) acc += d[i] * Load(x[i] + j);
      Store(g + j, acc);
    }
    for (; j < n; ++j) {
      float s = 0;
      for (int64_t i = 0; i < m; ++i) s += d[i] * x[i][j];
      g[j] = s;
    }
    return;
  }
  if (k <= 16) {
    // Four rows of G at a time share the loads of D.
    int64_t j = 0;
    if (k > 8) {
      for (; j + 4 <= n; j += 4) GradientTile<4, 2>(x, j, m, d, k, g + j * k);
      for (; j < n; ++j) GradientTile<1, 2>(x, j, m, d, k, g + j * k);
    } else {
      for (; j + 4 <= n; j += 4) GradientTile<4, 1>(x, j, m, d, k, g + j * k);
      for (; j < n; ++j) GradientTile<1, 1>(x, j, m, d, k, g + j * k);
    }
    return;
  }
  // Row j is written whole, in ascending j: the lanes a full-vector store
  // spills past row j land in row j + 1, which is written next.
  for (int64_t j = 0; j < n; ++j) {
    for (int32_t c0 = 0; c0 < k; c0 += 16) {
      V8 a0 = Zero();
      V8 a1 = Zero();
      if (k - c0 > 8) {
        for (int64_t i = 0; i < m; ++i) {
          const float xv = x[i][j];
          a0 += xv * Load(d + i * k + c0);
          a1 += xv * Load(d + i * k + c0 + 8);
        }
        Store(g + j * k + c0, a0);
        Store(g + j * k + c0 + 8, a1);
      } else {
        for (int64_t i = 0; i < m; ++i) {
          a0 += x[i][j] * Load(d + i * k + c0);
        }
        Store(g + j * k + c0, a0);
      }
    }
  }
}

}  // namespace lepton
