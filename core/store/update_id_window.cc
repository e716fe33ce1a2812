#include "core/store/update_id_window.h"

namespace lepton {

void UpdateIdWindow::Remember(absl::string_view update_id,
                              const UpdateResult& result,
                              uint64_t log_position) {
  if (update_id.empty() || capacity_ <= 0) return;
  auto [it, inserted] =
      entries_.try_emplace(update_id, Entry{result, log_position});
  if (!inserted) return;
  order_.emplace_back(update_id);
  while (order_.size() > static_cast<size_t>(capacity_)) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
}

const UpdateIdWindow::Entry* UpdateIdWindow::Find(
    absl::string_view update_id) const {
  auto it = entries_.find(update_id);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<RecentUpdate> UpdateIdWindow::UpTo(uint64_t version) const {
  std::vector<RecentUpdate> recent;
  for (const std::string& id : order_) {
    const Entry& e = entries_.at(id);
    if (e.result.version <= version) recent.push_back({id, e.result});
  }
  return recent;
}

}  // namespace lepton
