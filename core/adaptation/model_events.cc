#include "core/adaptation/model_events.h"

#include <utility>
#include <vector>

namespace lepton {

absl::string_view ModelEventKindName(ModelEvent::Kind kind) {
  switch (kind) {
    case ModelEvent::Kind::kVersion:
      return "VERSION";
    case ModelEvent::Kind::kDriftWarning:
      return "DRIFT_WARNING";
    case ModelEvent::Kind::kDrift:
      return "DRIFT";
    case ModelEvent::Kind::kBoostStarted:
      return "BOOST_STARTED";
    case ModelEvent::Kind::kChallengerStarted:
      return "CHALLENGER_STARTED";
    case ModelEvent::Kind::kChallengerPromoted:
      return "CHALLENGER_PROMOTED";
    case ModelEvent::Kind::kChallengerDropped:
      return "CHALLENGER_DROPPED";
    case ModelEvent::Kind::kUpdateRefused:
      return "UPDATE_REFUSED";
    case ModelEvent::Kind::kUpdateQuarantined:
      return "UPDATE_QUARANTINED";
    case ModelEvent::Kind::kQuarantineReleased:
      return "QUARANTINE_RELEASED";
    case ModelEvent::Kind::kQuarantineDropped:
      return "QUARANTINE_DROPPED";
    case ModelEvent::Kind::kDeleted:
      return "DELETED";
    case ModelEvent::Kind::kClassesAdded:
      return "CLASSES_ADDED";
  }
  return "UNKNOWN";
}

uint64_t EventHub::Subscribe(Listener listener) {
  MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  listeners_.emplace(id, std::make_shared<const Listener>(std::move(listener)));
  listener_count_.store(static_cast<int>(listeners_.size()));
  return id;
}

void EventHub::Unsubscribe(uint64_t id) {
  MutexLock lock(&mu_);
  listeners_.erase(id);
  listener_count_.store(static_cast<int>(listeners_.size()));
}

void EventHub::Publish(const ModelEvent& event) {
  std::vector<std::shared_ptr<const Listener>> listeners;
  {
    ReaderMutexLock lock(&mu_);
    listeners.reserve(listeners_.size());
    for (const auto& [id, l] : listeners_) listeners.push_back(l);
  }
  // Outside the lock: a listener may subscribe or unsubscribe.
  for (const auto& l : listeners) (*l)(event);
}

}  // namespace lepton
