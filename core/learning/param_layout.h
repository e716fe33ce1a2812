// ParamLayout: the shape of a model's parameters in memory.
//
// A model's parameters are `arrays` matrices of `rows` x `outputs` floats,
// stored one after another (the ModelState::params layout): array 0 holds the
// weights (row j = feature j, the last row = the bias), the others the
// optimizer's per-coordinate state.
//
// That is "array order". The learner of a large model (not whole_copies())
// keeps its working copy in "row order": row by row, each row's arrays one
// after another, so that an optimizer step on a row reads and writes one
// place.
//
// Dense products sum over the rows in blocks of 2^block_shift rows, in block
// order (scoring.h). Every reader and the learner use the same blocks, so
// that their outputs are bit-identical.
#ifndef LEPTON_CORE_LEARNING_PARAM_LAYOUT_H_
#define LEPTON_CORE_LEARNING_PARAM_LAYOUT_H_

#include <cstdint>

namespace lepton {

struct ParamLayout {
  int64_t rows = 0;
  int32_t outputs = 0;
  int32_t arrays = 0;
  int block_shift = 0;

  // Models of up to kWholeCopyFloats floats sum in one block and publish each
  // version as a whole copy (versioned_params.h); larger ones use blocks of
  // about min(256, 64 * outputs) floats.
  static constexpr int64_t kWholeCopyFloats = int64_t{1} << 16;
  static ParamLayout For(int64_t rows, int32_t outputs, int32_t arrays);

  int64_t block_rows() const { return int64_t{1} << block_shift; }
  // Floats of one array, and of a row across all arrays.
  int64_t array_floats() const { return rows * outputs; }
  int64_t row_floats() const { return int64_t{outputs} * arrays; }
  int64_t floats() const { return array_floats() * arrays; }
  bool whole_copies() const { return floats() <= kWholeCopyFloats; }
};

// Converts every parameter from array order to row order.
void ToRowOrder(const ParamLayout& layout, const float* array_order,
                float* row_order);
// Writes arrays [first_array, end_array) of a row-order set, in array order,
// to `array_order` (which starts at array first_array).
void ToArrayOrder(const ParamLayout& layout, const float* row_order,
                  int first_array, int end_array, float* array_order);

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_PARAM_LAYOUT_H_
