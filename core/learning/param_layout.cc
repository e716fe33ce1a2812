#include "core/learning/param_layout.h"

#include <algorithm>

#include "core/util/copy.h"

namespace lepton {
namespace {

// Floats a block aims at, per output of a row; rows of several outputs keep
// at least a few rows a block for the dense kernels.
constexpr int64_t kBlockFloatsPerOutput = 64;
constexpr int64_t kMaxBlockFloatsTarget = 256;

int CeilLog2(int64_t n) {
  int s = 0;
  while ((int64_t{1} << s) < n) ++s;
  return s;
}

int FloorLog2(int64_t n) {
  int s = 0;
  while ((int64_t{2} << s) <= n) ++s;
  return s;
}

}  // namespace

ParamLayout ParamLayout::For(int64_t rows, int32_t outputs, int32_t arrays) {
  ParamLayout l;
  l.rows = rows;
  l.outputs = outputs;
  l.arrays = arrays;
  if (l.whole_copies()) {
    l.block_shift = CeilLog2(rows);
  } else {
    const int64_t target =
        std::min(kMaxBlockFloatsTarget, kBlockFloatsPerOutput * outputs);
    l.block_shift = FloorLog2(std::max<int64_t>(1, target / l.row_floats()));
  }
  return l;
}

void ToRowOrder(const ParamLayout& layout, const float* array_order,
                float* row_order) {
  const int64_t k = layout.outputs;
  const int64_t array_floats = layout.array_floats();
  const int64_t row_floats = layout.row_floats();
  for (int a = 0; a < layout.arrays; ++a) {
    const float* src = array_order + a * array_floats;
    float* dst = row_order + a * k;
    if (k == 1) {  // a plain strided loop: most large models
      for (int64_t row = 0; row < layout.rows; ++row) {
        dst[row * row_floats] = src[row];
      }
      continue;
    }
    for (int64_t row = 0; row < layout.rows; ++row) {
      CopyFloats(dst + row * row_floats, src + row * k, k);
    }
  }
}

void ToArrayOrder(const ParamLayout& layout, const float* row_order,
                  int first_array, int end_array, float* array_order) {
  const int64_t k = layout.outputs;
  const int64_t array_floats = layout.array_floats();
  const int64_t row_floats = layout.row_floats();
  for (int a = first_array; a < end_array; ++a) {
    const float* src = row_order + a * k;
    float* dst = array_order + (a - first_array) * array_floats;
    if (k == 1) {
      for (int64_t row = 0; row < layout.rows; ++row) {
        dst[row] = src[row * row_floats];
      }
      continue;
    }
    for (int64_t row = 0; row < layout.rows; ++row) {
      CopyFloats(dst + row * k, src + row * row_floats, k);
    }
  }
}

}  // namespace lepton
