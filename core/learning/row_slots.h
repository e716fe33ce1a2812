// RowSlots: the slot of each row one optimizer step touches, in first-touch
// order: an open-addressing table whose entries carry the generation they
// were made in, so that clearing it (every few hundred rows) costs nothing.
//
// Thread safety: none (a Learner's scratch).
#ifndef LEPTON_CORE_LEARNING_ROW_SLOTS_H_
#define LEPTON_CORE_LEARNING_ROW_SLOTS_H_

#include <cstdint>
#include <vector>

namespace lepton {

class RowSlots {
 public:
  // `generation` (> 0) only matters to tests, which start near the wrap.
  explicit RowSlots(uint32_t generation = 1)
      : generation_(uint64_t{generation} << 32) {}

  // The slot of `row`: its position in rows(), appended if new.
  uint32_t Slot(uint32_t row) {
    if (2 * (rows_.size() + 1) > keys_.size()) Grow();
    const uint64_t key = generation_ | row;
    for (uint64_t i = Hash(row) & mask_;; i = (i + 1) & mask_) {
      if (keys_[i] == key) return slots_[i];
      if (keys_[i] < generation_) {  // from an earlier generation: free
        keys_[i] = key;
        slots_[i] = static_cast<uint32_t>(rows_.size());
        rows_.push_back(row);
        return slots_[i];
      }
    }
  }
  // The rows, in first-touch order.
  const std::vector<uint32_t>& rows() const { return rows_; }
  void Clear();

 private:
  static uint64_t Hash(uint32_t row) {
    return (uint64_t{row} * 0x9E3779B97F4A7C15ull) >> 32;
  }
  void Grow();

  // A key is generation_ | row: the generation in the high 32 bits.
  uint64_t generation_;
  std::vector<uint64_t> keys_;
  std::vector<uint32_t> slots_;
  std::vector<uint32_t> rows_;
  uint64_t mask_ = 0;
};

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_ROW_SLOTS_H_
