#include "core/learning/row_slots.h"

#include <algorithm>
#include <cstddef>

namespace lepton {

void RowSlots::Clear() {
  rows_.clear();
  generation_ += uint64_t{1} << 32;
  if (generation_ == 0) {  // wrapped: every old key must read as free
    generation_ = uint64_t{1} << 32;
    std::fill(keys_.begin(), keys_.end(), 0);
  }
}

void RowSlots::Grow() {
  const size_t capacity = keys_.empty() ? 1024 : 2 * keys_.size();
  keys_.assign(capacity, 0);
  slots_.assign(capacity, 0);
  mask_ = capacity - 1;
  for (uint32_t s = 0; s < rows_.size(); ++s) {
    for (uint64_t i = Hash(rows_[s]) & mask_;; i = (i + 1) & mask_) {
      if (keys_[i] == 0) {
        keys_[i] = generation_ | rows_[s];
        slots_[i] = s;
        break;
      }
    }
  }
}

}  // namespace lepton
