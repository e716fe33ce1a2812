// CopyFloats / CopyPointers: the core's copies of arrays (weights, pages,
// page tables).
//
// A plain loop that the compiler vectorizes, instead of memcpy: glibc copies
// blocks of a few KB with `rep movsb`, which is much slower on some hosts
// (docs/benchmarks.md).
#ifndef LEPTON_CORE_UTIL_COPY_H_
#define LEPTON_CORE_UTIL_COPY_H_

#include <cstdint>

namespace lepton {

// The attribute stops GCC from turning the loop back into a memcpy call;
// clang has no such pass.
#if defined(__clang__)
#define LEPTON_NO_MEMCPY_IDIOM
#else
#define LEPTON_NO_MEMCPY_IDIOM \
  __attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif

LEPTON_NO_MEMCPY_IDIOM inline void CopyFloats(float* __restrict dst,
                                              const float* __restrict src,
                                              int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

// The values of one row: often a single float (a sparse model's weight),
// which a call to CopyFloats would cost more than (its attribute keeps it
// from being inlined).
inline void CopyRowFloats(float* dst, const float* src, int64_t n) {
  if (n == 1) {
    *dst = *src;
    return;
  }
  CopyFloats(dst, src, n);
}

// `rows` rows of n floats, row r from src + r * src_stride to
// dst + r * dst_stride: between a model's array order and row order.
inline void CopyRows(float* dst, int64_t dst_stride, const float* src,
                     int64_t src_stride, int64_t rows, int64_t n) {
  if (n == 1) {  // a plain strided loop: most large models
    for (int64_t r = 0; r < rows; ++r)
      dst[r * dst_stride] = src[r * src_stride];
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    CopyFloats(dst + r * dst_stride, src + r * src_stride, n);
  }
}

template <typename T>
LEPTON_NO_MEMCPY_IDIOM inline void CopyPointers(T** __restrict dst,
                                                T* const* __restrict src,
                                                int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

}  // namespace lepton

#undef LEPTON_NO_MEMCPY_IDIOM

#endif  // LEPTON_CORE_UTIL_COPY_H_
