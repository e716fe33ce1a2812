// ModelEvent and EventHub: what happens to a model that its watchers want to
// know (a new version, a drift, a challenger promoted, an update refused), and
// the fan-out of those events to whoever listens (WatchModel streams).
//
// Delivery: EventHub::Publish calls every listener on the publishing thread
// (an update worker, the log syncer's), after the model's locks are released,
// so a listener must be quick and must not block: it queues the event and
// returns. Events of one model arrive in the order they happened. A listener
// may still be called once after Unsubscribe returns if a Publish was already
// under way: listeners keep what they touch alive (shared_ptr) for that.
//
// Thread safety: every method of EventHub may be called from any thread.
#ifndef LEPTON_CORE_ADAPTATION_MODEL_EVENTS_H_
#define LEPTON_CORE_ADAPTATION_MODEL_EVENTS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/util/mutex.h"

namespace lepton {

struct ModelEvent {
  enum class Kind {
    kVersion,             // a version was published (update or rollback)
    kDriftWarning,        // the detector entered its warning zone
    kDrift,               // the detector flagged a drift
    kBoostStarted,        // BOOST: the learning rate is raised for a while
    kChallengerStarted,   // CHALLENGER: a shadow model started learning
    kChallengerPromoted,  // its weights became the model's
    kChallengerDropped,   // it was given up
    kUpdateRefused,       // the guardrail refused an update
    kUpdateQuarantined,   // the guardrail held an update back (QUARANTINE)
    kQuarantineReleased,  // a held update passed its second check: learned
    kQuarantineDropped,   // a held update failed it, or was displaced
    kDeleted,             // the model was deleted (the last event)
    // Classes were added (Model::AddClasses): the event of the version it
    // published; detail "num_classes K -> K'".
    kClassesAdded,
  };
  Kind kind = Kind::kVersion;
  uint64_t version = 0;  // the model's newest version when it happened
  uint64_t example = 0;  // the model's example count when it happened
  std::string detail;    // human-readable; no example data
  absl::Time time;
};

absl::string_view ModelEventKindName(ModelEvent::Kind kind);

// A listener's registration; unsubscribes when destroyed.
class EventSubscription {
 public:
  virtual ~EventSubscription() = default;
};

class EventHub {
 public:
  using Listener = std::function<void(const ModelEvent&)>;

  // Returns an id for Unsubscribe.
  uint64_t Subscribe(Listener listener) ABSL_LOCKS_EXCLUDED(mu_);
  void Unsubscribe(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  // Cheap (one atomic load): lets publishers skip building events.
  bool has_listeners() const {
    return listener_count_.load(std::memory_order_relaxed) > 0;
  }
  void Publish(const ModelEvent& event) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  std::atomic<int> listener_count_{0};
  mutable Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::shared_ptr<const Listener>> listeners_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace lepton

#endif  // LEPTON_CORE_ADAPTATION_MODEL_EVENTS_H_
