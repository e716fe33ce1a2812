// UpdateIdWindow: the update ids a model remembers (the newest `capacity`),
// each with the result of the update it named and where its log record ends,
// so that a retry returns the original answer instead of learning twice.
// The window is part of a model's state: checkpoints carry it
// (ModelState::recent_updates) and a replay of the log rebuilds it.
//
// Thread safety: none; the owning model guards it with its update lock.
#ifndef LEPTON_CORE_STORE_UPDATE_ID_WINDOW_H_
#define LEPTON_CORE_STORE_UPDATE_ID_WINDOW_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "core/learning/update_types.h"
#include "core/storage/model_state.h"

namespace lepton {

// Longest update id accepted, in bytes.
inline constexpr size_t kMaxUpdateIdLength = 128;

class UpdateIdWindow {
 public:
  struct Entry {
    UpdateResult result;
    uint64_t log_position = 0;  // 0: durable (from a checkpoint or replay)
  };

  // Remembers at most `capacity` ids (<= 0: none).
  explicit UpdateIdWindow(int32_t capacity) : capacity_(capacity) {}

  // Remembers `update_id` (ignored if empty or already remembered); the
  // oldest beyond the capacity is forgotten.
  void Remember(absl::string_view update_id, const UpdateResult& result,
                uint64_t log_position);
  // The entry of `update_id`, or null.
  const Entry* Find(absl::string_view update_id) const;
  // The remembered ids that produced versions <= `version`, oldest first.
  std::vector<RecentUpdate> UpTo(uint64_t version) const;

 private:
  const int32_t capacity_;
  absl::flat_hash_map<std::string, Entry> entries_;
  std::deque<std::string> order_;  // oldest first
};

}  // namespace lepton

#endif  // LEPTON_CORE_STORE_UPDATE_ID_WINDOW_H_
