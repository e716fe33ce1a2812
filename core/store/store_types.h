// The values the model store's callers exchange with it (model_store.h):
// what a model is (ModelInfo), what an update and a prediction take and give
// back (update_types.h, prediction_types.h), the examples themselves
// (example.h) and the events a watcher gets (model_events.h). This header
// and model_store.h are all a caller needs: neither brings in the learner,
// the adaptation logic or the storage layer.
//
// Thread safety: plain values.
#ifndef LEPTON_CORE_STORE_STORE_TYPES_H_
#define LEPTON_CORE_STORE_STORE_TYPES_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/adaptation/adaptation_counters.h"
#include "core/adaptation/model_events.h"
#include "core/learning/drift_detector_config.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/prediction_types.h"
#include "core/learning/update_types.h"

namespace lepton {

struct ModelInfo {
  std::string name;
  ModelSpec spec;
  uint64_t version = 0;    // newest
  ModelCounters counters;  // the newest version's own (a Rollback restores)
  // Examples learned and updates applied by this model since the store
  // loaded it, starting from the loaded version's counters: unlike
  // `counters`, a Rollback never takes them back.
  uint64_t examples_learned_total = 0;
  uint64_t updates_applied_total = 0;
  std::vector<uint64_t> retained_versions;  // ascending, newest last
  // Versions with a checkpoint (rollback targets besides the retained ones),
  // ascending; empty without storage.
  std::vector<uint64_t> checkpointed_versions;
  // Parameters of all live versions (versioned_params.h; after AddClasses
  // the older learner's too while a retained version is of it) + the
  // writer's working copy + the holdout set and held updates + remembered
  // predictions: what counts against StoreOptions::max_memory_bytes.
  int64_t memory_bytes = 0;
  // Updates refused since the server started because the disk of the
  // model's update log was full (RESOURCE_EXHAUSTED).
  uint64_t disk_full_refusals = 0;
  // Not OK once the model's update log has failed (a failed fsync, a write
  // that could not be undone): the model refuses every change with
  // FAILED_PRECONDITION until the server restarts and recovers.
  absl::Status update_log_error;
  // Drift and guardrail state of the newest version (adaptation_config.h):
  // its counters, and what the model adds to them.
  struct Adaptation : AdaptationCounters {
    double mean_loss_after = 0;  // the detector's mean since the last change
    bool challenger_active = false;
    uint64_t challenger_started_at = 0;
    int64_t challenger_examples = 0;
    int64_t holdout_examples = 0;
    // Updates the guardrail refused since the server started.
    uint64_t refused_updates = 0;
    int64_t quarantine_held = 0;  // QUARANTINE: updates held back now
  };
  Adaptation adaptation;
  // Weights of the newest version (array 0, the bias included) that are
  // exactly nonzero: how sparse L1 (FTRL) made the model. Counted by Info()
  // in one scan, O(parameters).
  int64_t nonzero_weights = 0;
  absl::Time created;
  absl::Time updated;  // when the newest version was published
};

// What a prediction kept for a delayed label served (PredictOptions::remember).
struct RememberedPrediction {
  Features features;
  std::vector<float> outputs;  // the raw outputs z (ComputeLoss's input)
  uint64_t version = 0;        // the version that served it
};

// An update checked and encoded for a shared log without being applied
// (ModelStore::PrepareUpdate).
struct PreparedUpdate {
  // Set: the model already applied an update with this update_id, and this
  // is its result (nothing to append).
  std::optional<UpdateResult> original;
  // The update's log record (update_log_format.h, version 0): named features
  // hashed, delayed labels resolved to their cached features and outputs.
  std::string record;
  // Settles the prediction ids the record resolved: consumed if the update
  // applied, usable again if not. Call once; dropping it uncalled releases
  // them.
  std::function<void(bool applied)> settle = [](bool) {};
};

// How an update is answered (ModelStore::StartUpdate): once, with the
// result or the error.
using UpdateCallback = std::function<void(absl::StatusOr<UpdateResult>)>;

}  // namespace lepton

#endif  // LEPTON_CORE_STORE_STORE_TYPES_H_
