// RowSlots: the slot of each row one optimizer step touches, in first-touch
// order: an open-addressing table that is cleared in time proportional to
// what it holds (absl's flat_hash_map frees a large table on clear(), and a
// step clears it every few hundred rows).
//
// Thread safety: none (a Learner's scratch).
#ifndef LEPTON_CORE_LEARNING_ROW_SLOTS_H_
#define LEPTON_CORE_LEARNING_ROW_SLOTS_H_

#include <cstdint>
#include <vector>

namespace lepton {

class RowSlots {
 public:
  // The slot of `row`: its position in rows(), appended if new.
  uint32_t Slot(uint32_t row) {
    if (2 * (rows_.size() + 1) > keys_.size()) Grow();
    for (uint64_t i = Hash(row) & mask_;; i = (i + 1) & mask_) {
      if (keys_[i] == row) return slots_[i];
      if (keys_[i] == kEmpty) {
        keys_[i] = row;
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
  static constexpr uint32_t kEmpty = ~uint32_t{0};  // never a row
  static uint64_t Hash(uint32_t row) {
    return (uint64_t{row} * 0x9E3779B97F4A7C15ull) >> 32;
  }
  void Grow();

  std::vector<uint32_t> keys_;
  std::vector<uint32_t> slots_;
  std::vector<uint32_t> rows_;
  uint64_t mask_ = 0;
};

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_ROW_SLOTS_H_
