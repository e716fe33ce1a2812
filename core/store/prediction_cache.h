// PredictionCache: the features and served outputs of one model's recent
// predictions, kept under an id so that a label arriving later (a click, a
// chargeback) can be learned from without the client sending the features
// again, and scored against what was actually served (delayed labels).
//
// Bounds: at most max_entries entries and about max_bytes bytes, each kept
// at most ttl. The cache never refuses a prediction: when full, the oldest
// entries (by insertion) go first; expired ones are dropped as the cache is
// used. Lookups are O(1) (a hash map into the insertion-ordered list).
//
// Ids: nonzero uint64, unique within the process (across every model's
// cache): a random 32-bit epoch chosen at process start in the high bits and
// a counter below. After a restart the cache is empty and the epoch is new,
// so an id from before the restart is unknown (NOT_FOUND), never another
// prediction's features.
//
// Use by an update (Resolve): the update's ids are claimed (a claimed entry
// cannot be resolved by anyone else), then either committed (consumed: a
// second use is NOT_FOUND) once the update applies, or released (usable
// again) if it fails. A claimed entry may still be evicted by the bounds; the
// claim keeps its data alive, but a release cannot bring it back.
//
// Added classes (Model::AddClasses): a prediction served before a softmax
// model grew has fewer outputs than the model. Resolve pads them (see
// PadServedOutputs), so that its delayed label, even one of a class added
// since, is scored as if the served probability of every added class had
// been 0.
//
// Thread safety: every method may be called from any thread; mu_ guards all
// state and is never held while calling out.
#ifndef LEPTON_CORE_STORE_PREDICTION_CACHE_H_
#define LEPTON_CORE_STORE_PREDICTION_CACHE_H_

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/learning/added_classes.h"
#include "core/learning/example.h"
#include "core/store/store_types.h"
#include "core/util/mutex.h"

namespace lepton {

// What was served for one instance (store_types.h).
using CachedPrediction = RememberedPrediction;

// A fresh prediction id: nonzero, unique within the process, and from a
// random epoch per process start.
uint64_t NewPredictionId();

// INVALID_ARGUMENT, naming the field, unless each example either carries a
// prediction_id with empty features and served_outputs, or has no
// prediction_id and served_outputs empty or of `num_outputs` finite values.
absl::Status ValidatePredictionReferences(
    absl::Span<const ExampleView> examples, int32_t num_outputs);

class PredictionCache {
 public:
  struct Options {
    // 0 disables the cache (Insert returns 0, nothing is kept).
    int64_t max_entries = 100000;
    int64_t max_bytes = int64_t{256} << 20;
    absl::Duration ttl = absl::Hours(1);
    // The time source; null = absl::Now (tests inject a fake clock).
    std::function<absl::Time()> clock = nullptr;
  };

  // The resolution of one update's examples (see Resolve). Move-only;
  // releases its claims when destroyed uncommitted.
  class Claim {
   public:
    Claim() = default;
    Claim(Claim&& other) noexcept;
    Claim& operator=(Claim&& other) noexcept;
    ~Claim();

    // The update's examples with each prediction_id replaced by the cached
    // features and served outputs (label, weight, holdout and the id kept).
    // Borrows the input of Resolve and this claim: valid while both are.
    absl::Span<const ExampleView> examples() const {
      return ids_.empty() ? original_ : absl::MakeConstSpan(resolved_);
    }
    // The update applied: its ids are consumed.
    void Commit();

   private:
    friend class PredictionCache;
    void Reset();

    PredictionCache* cache_ = nullptr;
    absl::Span<const ExampleView> original_;
    std::vector<uint64_t> ids_;
    std::vector<std::shared_ptr<const CachedPrediction>> entries_;
    std::vector<ExampleView> resolved_;
    // Served outputs padded to the model's classes (PadServedOutputs); the
    // views in resolved_ point into the inner vectors' buffers, which moves
    // of this vector do not move.
    std::vector<std::vector<float>> padded_;
  };

  explicit PredictionCache(Options options);
  PredictionCache(const PredictionCache&) = delete;
  PredictionCache& operator=(const PredictionCache&) = delete;

  bool enabled() const { return options_.max_entries > 0; }

  // Keeps a copy of `features` and `outputs` and returns its new id (0 if the
  // cache is disabled). Evicts the oldest entries beyond the bounds.
  uint64_t Insert(const FeaturesView& features, absl::Span<const float> outputs,
                  uint64_t version) ABSL_LOCKS_EXCLUDED(mu_);

  // Claims the entry of every example with a prediction_id, all or nothing:
  // NOT_FOUND "examples[i].prediction_id: <id> is unknown or expired ..." for
  // the first one that is missing, expired, consumed or already claimed (by
  // another update, or earlier in the same one); nothing is then claimed.
  // `examples` must outlive the claim. With `num_outputs` > 0 (the model's
  // outputs now), served outputs with fewer values, from before classes were
  // added, are padded to it (PadServedOutputs).
  absl::StatusOr<Claim> Resolve(absl::Span<const ExampleView> examples,
                                int32_t num_outputs = 0)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The entry `id` if it is live (not expired, consumed or evicted), claimed
  // or not; null otherwise.
  std::shared_ptr<const CachedPrediction> Find(uint64_t id)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Live entries and their bytes (expired ones not yet dropped included).
  int64_t size() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t bytes() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    uint64_t id = 0;
    absl::Time inserted;
    int64_t bytes = 0;
    bool claimed = false;
    std::shared_ptr<const CachedPrediction> data;
  };
  using List = std::list<Entry>;

  absl::Time Now() const;
  void DropExpiredLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(List::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Finish(absl::Span<const uint64_t> ids, bool consume)
      ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  mutable Mutex mu_;
  List fifo_ ABSL_GUARDED_BY(mu_);  // oldest first
  absl::flat_hash_map<uint64_t, List::iterator> index_ ABSL_GUARDED_BY(mu_);
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lepton

#endif  // LEPTON_CORE_STORE_PREDICTION_CACHE_H_
