#include "core/learning/row_slots.h"

#include <cstddef>

namespace lepton {

void RowSlots::Clear() {
  for (const uint32_t row : rows_) {
    for (uint64_t i = Hash(row) & mask_;; i = (i + 1) & mask_) {
      if (keys_[i] == row) {
        keys_[i] = kEmpty;
        break;
      }
    }
  }
  rows_.clear();
}

void RowSlots::Grow() {
  const size_t capacity = keys_.empty() ? 1024 : 2 * keys_.size();
  keys_.assign(capacity, kEmpty);
  slots_.assign(capacity, 0);
  mask_ = capacity - 1;
  for (uint32_t s = 0; s < rows_.size(); ++s) {
    for (uint64_t i = Hash(rows_[s]) & mask_;; i = (i + 1) & mask_) {
      if (keys_[i] == kEmpty) {
        keys_[i] = rows_[s];
        slots_[i] = s;
        break;
      }
    }
  }
}

}  // namespace lepton
