// The memory budget of a store (StoreOptions::max_memory_bytes): what a model
// is charged, what a change may add, and the check before it.
//
// A model is charged the larger of what it holds (Model::MemoryBytes: its
// versions' parameters, the writer's copy, holdout set, held updates and
// remembered predictions) and what its spec reserves (ReservedModelBytes:
// the parameters it holds once its retained versions are published). A
// change that may grow memory (CreateModel, ImportModel, AddClasses, an
// update) reserves what it may add before it starts (MemoryLedger): the
// charges of all models, the reservations of the changes in progress and
// its own must fit in the budget, or it is RESOURCE_EXHAUSTED and nothing
// is applied. It holds the reservation until the models' charges include
// what it added, so changes running at once cannot together cross the
// budget. The ledger keeps the models' charges as a running total: the store
// counts a model's charge again whenever one of its own changes has landed
// (before that change's reservation is given back), and recounts every model
// at most every so often for what changes without it (remembered
// predictions, versions that readers let go), so that a reservation costs
// the same whatever the number of models.
//
// Thread safety: the functions are pure; MemoryLedger is thread-safe.
#ifndef LEPTON_CORE_STORE_MEMORY_BUDGET_H_
#define LEPTON_CORE_STORE_MEMORY_BUDGET_H_

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/util/mutex.h"

namespace lepton {

// Bytes of the parameters of a model of `spec` with `retained_versions`
// versions published: the writer's working copy, and a whole copy per
// version (models of up to ParamLayout::kWholeCopyFloats floats) or two live
// copies of the weights and the first version's delta (versioned_params.h).
int64_t ReservedModelBytes(const ModelSpec& spec, int32_t retained_versions);

// At most what an update of `examples` adds to a model of `spec`: the delta
// of the rows it may change (their values before and after; none for whole
// copies, which the reservation covers), and a copy of each example, which
// the holdout set or the quarantine may keep.
int64_t UpdateBytesBound(const ModelSpec& spec,
                         absl::Span<const ExampleView> examples);

// OK if `more` bytes fit: used + more <= limit; a limit of 0 is no budget.
// Otherwise RESOURCE_EXHAUSTED naming the budget, what is in use and `what`
// needs ("creating model \"m\"").
absl::Status CheckMemoryBudget(int64_t limit, int64_t used, int64_t more,
                               absl::string_view what);

// The bytes of a budget reserved by changes in progress.
class MemoryLedger {
 public:
  // A reservation, given back when it dies (or is assigned over). A
  // default-constructed Hold reserves nothing. Must not outlive its ledger.
  class Hold {
   public:
    Hold() = default;
    Hold(Hold&& other) noexcept;
    Hold& operator=(Hold&& other) noexcept;
    ~Hold();

    // Bytes held: 0 for a default-constructed Hold, or under no budget.
    int64_t bytes() const { return bytes_; }

   private:
    friend class MemoryLedger;
    Hold(MemoryLedger* ledger, int64_t bytes)
        : ledger_(ledger), bytes_(bytes) {}
    MemoryLedger* ledger_ = nullptr;
    int64_t bytes_ = 0;
  };

  // What one owner (a model) is charged.
  struct Charge {
    const void* owner = nullptr;
    int64_t bytes = 0;
  };
  using Recount = absl::FunctionRef<std::vector<Charge>()>;

  // Charges older than `recount_period` are recounted by the next Reserve.
  explicit MemoryLedger(absl::Duration recount_period = absl::Milliseconds(100))
      : recount_period_(recount_period) {}

  // Reserves `more` bytes if the charges + the reservations held + more <=
  // limit (CheckMemoryBudget, which names `what`); a limit of 0 reserves
  // nothing and always succeeds. When the charges are older than the
  // recount period, `recount` lists them all first. Runs under the ledger's
  // lock, so that no two changes take the same room.
  absl::StatusOr<Hold> Reserve(int64_t limit, Recount recount, int64_t more,
                               absl::string_view what) ABSL_LOCKS_EXCLUDED(mu_);
  // Sets what `owner` is charged to charge(), which runs under the ledger's
  // lock (so that the newest count wins); 0 forgets the owner.
  void SetCharge(const void* owner, absl::FunctionRef<int64_t()> charge)
      ABSL_LOCKS_EXCLUDED(mu_);

  int64_t reserved() const ABSL_LOCKS_EXCLUDED(mu_);
  // The sum of the charges as last set or recounted.
  int64_t charged() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Release(int64_t bytes) ABSL_LOCKS_EXCLUDED(mu_);

  const absl::Duration recount_period_;
  mutable Mutex mu_;
  int64_t reserved_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<const void*, int64_t> charges_ ABSL_GUARDED_BY(mu_);
  int64_t charged_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time recounted_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace lepton

#endif  // LEPTON_CORE_STORE_MEMORY_BUDGET_H_
