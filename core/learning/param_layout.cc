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
  for (int a = 0; a < layout.arrays; ++a) {
    CopyRows(row_order + a * k, layout.row_floats(),
             array_order + a * layout.array_floats(), k, layout.rows, k);
  }
}

void ToArrayOrder(const ParamLayout& layout, const float* row_order,
                  int first_array, int end_array, float* array_order) {
  const int64_t k = layout.outputs;
  for (int a = first_array; a < end_array; ++a) {
    CopyRows(array_order + (a - first_array) * layout.array_floats(), k,
             row_order + a * k, layout.row_floats(), layout.rows, k);
  }
}

}  // namespace lepton
