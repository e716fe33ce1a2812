// ModelEventLogger: writes each model's drift, adaptation and guardrail
// events (core/adaptation/model_events.h: drift warnings and drifts,
// learning-rate boosts, challengers started, promoted or dropped, updates the
// guardrail refused) to the structured log (log.h), one line each:
//
//   ts=... level=warn event=drift model=ctr version=812 example=51200
//   detail="..."
//
// (one line in the log). Events: drift_warning, drift (warn),
// boost_started, challenger_started, challenger_promoted,
// challenger_dropped, update_refused (warn).
//
// It follows a model through ModelStore::Watch from Follow() to Unfollow();
// the service follows every model at start and each one it creates or
// imports, and unfollows the ones it deletes. Version events (one per
// update) are not logged: the per-call debug lines cover them.
//
// Ownership and thread safety: borrows the store, which must outlive it;
// each subscription keeps its model object alive until Unfollow() or the
// destructor, so the logger must go before the store. Every method may be
// called from any thread; listeners run on the publishing thread and only
// format and write a line.
#ifndef LEPTON_SERVER_LOG_EVENTS_H_
#define LEPTON_SERVER_LOG_EVENTS_H_

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "core/store/model_store.h"
#include "core/store/store_types.h"
#include "core/util/mutex.h"

namespace lepton::server {

class ModelEventLogger {
 public:
  explicit ModelEventLogger(const ModelStore* store) : store_(store) {}

  // Starts logging `name`'s events; nothing if it is followed already or
  // not found.
  void Follow(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  void Unfollow(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const ModelStore* const store_;
  Mutex mu_;
  std::map<std::string, std::unique_ptr<EventSubscription>> followed_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_LOG_EVENTS_H_
