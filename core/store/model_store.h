// ModelStore: the named models of one server, and the core's public API.
// Every call a service needs is here and returns absl::Status or
// absl::StatusOr<T>:
//
//   absl::StatusOr<std::unique_ptr<ModelStore>> store =
//       ModelStore::Open({.data_dir = "lepton-data"}, &report);
//   ModelSpec spec;
//   spec.type = ModelType::kLogisticRegression;
//   spec.num_features = 1 << 20;
//   LEPTON_RETURN_IF_ERROR((*store)->CreateModel("ctr", spec).status());
//   absl::StatusOr<UpdateResult> r = (*store)->Update("ctr", Views(examples));
//   absl::StatusOr<Predictions> p = (*store)->Predict("ctr", Views(instances));
//
// Durability: with a data_dir, every model lives in its own directory
// (model_files.h): an update is written to the model's log before it is
// answered (and fsynced first with FsyncPolicy::kAlways), checkpoints are
// written every `checkpoint_every_updates` updates or `checkpoint_interval`,
// and Close() writes a final one. Open() recovers every model: its newest
// valid checkpoint, then its log replayed, bit-identical (the learner is
// deterministic). A model that cannot be recovered exactly is not served:
// its calls return DATA_LOSS with the reason (the file and offset). Without
// a data_dir the store lives in memory only.
//
// Callbacks (StartUpdate's `done`) may run on the log syncer's thread or a
// thread doing a rollback; they must not block on the store (no synchronous
// Update from inside one).
//
// Errors: INVALID_ARGUMENT (message starts with the field path, e.g.
// "examples[7].features.dense[0]: not finite"), NOT_FOUND (no such model, or
// a version no longer kept, or an unknown or expired prediction_id),
// FAILED_PRECONDITION (prediction ids asked of a store that keeps none),
// ALREADY_EXISTS (CreateModel on a taken name), RESOURCE_EXHAUSTED
// (CreateModel or ImportModel beyond max_models),
// UNAVAILABLE (the update log could not be written: nothing was applied; or
// could not be synced: the outcome is unknown until a restart, so retry with
// the same update_id),
// DATA_LOSS (a model whose files could not be recovered), FAILED_PRECONDITION
// (the model's guardrail refused an update: it would make the validation loss
// worse; see adaptation_config.h). A rejected call changes nothing.
//
// Thread safety: every method may be called concurrently from any threads.
// mu_ guards only the name -> model map and is held for a lookup or an
// insert/erase, never during learning, prediction or file I/O. Updates to one
// model are serialized by that model; updates to different models run in
// parallel; predictions never wait for updates (see model.h).
#ifndef LEPTON_CORE_STORE_MODEL_STORE_H_
#define LEPTON_CORE_STORE_MODEL_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/adaptation/model_events.h"
#include "core/storage/fsync_policy.h"
#include "core/store/memory_budget.h"
#include "core/store/store_types.h"
#include "core/util/file_system.h"
#include "core/util/mutex.h"

namespace lepton {

class Model;
class ModelVersion;

// A callback waiting for a model's version (ModelStore::WhenVersion).
class VersionWait {
 public:
  virtual ~VersionWait() = default;
  // Forgets the wait; true if its callback will never run, false if it has
  // run or is about to.
  virtual bool Cancel() = 0;
};

struct StoreOptions {
  // Most models the store holds (0: no limit): CreateModel and ImportModel
  // beyond it are RESOURCE_EXHAUSTED. Open() recovers every model on disk
  // whatever their number (a restart never drops a model); the limit then
  // applies to new ones.
  int32_t max_models = 0;
  // The memory budget in bytes (0: none): CreateModel, ImportModel,
  // AddClasses and updates that could take the models' memory past it are
  // RESOURCE_EXHAUSTED (memory_budget.h). Open() recovers every model
  // whatever it holds.
  int64_t max_memory_bytes = 0;
  // How old the models' charges may be before a reservation recounts them
  // all (memory_budget.h); the store counts a model again itself after each
  // change it makes to it.
  absl::Duration memory_recount_period = absl::Milliseconds(100);
  // A node of a cluster (core/replication/): the store applies a shared
  // log's entries, which the node that appended them checked against its
  // budget, so CreateModel, ImportModel and AddClasses never refuse them for
  // memory; CheckCreate, CheckImport, CheckAddClasses and PrepareUpdate
  // still check.
  bool applies_shared_log = false;
  // Versions of each model kept available for pinned predictions, >= 1.
  int32_t retained_versions = 8;
  // Update ids each model remembers for idempotent retries.
  int32_t remembered_update_ids = 10000;
  // Delayed labels: each model keeps its predictions made with
  // PredictOptions::remember (features and served outputs) for at most
  // prediction_ttl, the oldest dropped first beyond prediction_cache_entries
  // or about prediction_cache_bytes. 0 entries: Predict with remember is
  // FAILED_PRECONDITION. In memory only: lost on restart.
  int64_t prediction_cache_entries = 100000;
  int64_t prediction_cache_bytes = int64_t{256} << 20;
  absl::Duration prediction_ttl = absl::Hours(1);
  // The prediction caches' clock; null = absl::Now (for tests).
  std::function<absl::Time()> prediction_clock = nullptr;

  // Storage. Empty data_dir: memory only.
  std::string data_dir = "";
  FsyncPolicy fsync = FsyncPolicy::kAlways;
  absl::Duration fsync_interval = absl::Milliseconds(10);
  int64_t checkpoint_every_updates = 10000;
  absl::Duration checkpoint_interval = absl::Seconds(60);
  int64_t checkpoint_log_bytes = int64_t{256} << 20;
  int32_t keep_checkpoints = 5;
  // A background thread writes the checkpoints that are due (every second,
  // see Checkpoint()). false: none; checkpoints are written by Checkpoint()
  // and Close() only, for code that opens many short-lived stores (the fuzz
  // targets: AddressSanitizer keeps memory for every thread ever started).
  bool background_checkpoints = true;
  FileSystem* fs = PosixFileSystem();
};

// What Open() found.
struct RecoveryReport {
  std::vector<std::string> recovered;  // model names
  // Models not served, with the reason (DATA_LOSS naming file and offset).
  std::vector<std::pair<std::string, absl::Status>> failed;
  // Torn log tails dropped, corrupt older checkpoints skipped.
  std::vector<std::string> notes;
};

class ModelStore {
 public:
  // A store in memory, or on an empty data_dir: it loads nothing. Open() is
  // the way to start on a data_dir.
  explicit ModelStore(const StoreOptions& options = {});
  // Creates options.data_dir if missing and recovers every model in it.
  static absl::StatusOr<std::unique_ptr<ModelStore>> Open(
      const StoreOptions& options, RecoveryReport* report);
  // Close().
  ~ModelStore();
  ModelStore(const ModelStore&) = delete;
  ModelStore& operator=(const ModelStore&) = delete;

  absl::StatusOr<ModelInfo> CreateModel(absl::string_view name,
                                        const ModelSpec& spec)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<ModelInfo> GetModel(absl::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // All models, ordered by name.
  std::vector<ModelInfo> ListModels() const ABSL_LOCKS_EXCLUDED(mu_);
  // Removes the model and its files. Calls already holding it finish
  // normally.
  absl::Status DeleteModel(absl::string_view name) ABSL_LOCKS_EXCLUDED(mu_);

  // Predictions from `version` (0 = the newest); with options.remember, with
  // an id each for delayed labels (Model::Predict).
  absl::StatusOr<Predictions> Predict(absl::string_view name,
                                      absl::Span<const FeaturesView> instances,
                                      uint64_t version = 0,
                                      const PredictOptions& options = {}) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // The predictions `ids` of model `name` kept for delayed labels (Predict
  // with options.remember), in order; NOT_FOUND for an unknown or expired
  // one.
  absl::StatusOr<std::vector<RememberedPrediction>> RememberedPredictions(
      absl::string_view name, absl::Span<const uint64_t> ids) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Learns from `examples` and publishes a new version; all or nothing. A
  // non-empty `update_id` the model remembers returns the original result
  // and learns nothing.
  absl::StatusOr<UpdateResult> Update(absl::string_view name,
                                      absl::Span<const ExampleView> examples,
                                      const UpdateOptions& options = {},
                                      absl::string_view update_id = "")
      ABSL_LOCKS_EXCLUDED(mu_);
  // Update, answered through `done` (see Model::StartUpdate): with
  // FsyncPolicy::kAlways, from the log syncer's thread once durable, so the
  // calling thread never waits for the disk.
  void StartUpdate(absl::string_view name,
                   absl::Span<const ExampleView> examples,
                   const UpdateOptions& options, absl::string_view update_id,
                   UpdateCallback done) ABSL_LOCKS_EXCLUDED(mu_);
  // For a shared log (core/replication/): everything StartUpdate checks
  // before it learns, with the same errors, and the update's log record,
  // without applying it. A remembered `update_id` gives its original result
  // instead. The record applies with Update() on any store that holds the
  // same model version.
  absl::StatusOr<PreparedUpdate> PrepareUpdate(
      absl::string_view name, absl::Span<const ExampleView> examples,
      const UpdateOptions& options, absl::string_view update_id)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The result of the update `update_id` if model `name` remembers it.
  std::optional<UpdateResult> AppliedUpdate(absl::string_view name,
                                            absl::string_view update_id) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Publishes the state of an earlier `version` (retained or checkpointed) as
  // a new version; returns the model as of that version (its version, even
  // when a concurrent update has published a later one since).
  absl::StatusOr<ModelInfo> Rollback(absl::string_view name, uint64_t version)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Grows softmax model `name` to `num_classes` classes (the new total),
  // keeping every existing weight; publishes a new version and returns the
  // model as of that version (as Rollback). num_classes equal to the model's:
  // nothing changes (a safe retry). See Model::AddClasses for the semantics and
  // errors.
  absl::StatusOr<ModelInfo> AddClasses(absl::string_view name,
                                       int32_t num_classes)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The model's `version` (0 = the newest) encoded as in model_state.h; the
  // version it holds goes to *exported_version when given.
  absl::StatusOr<std::string> ExportModel(
      absl::string_view name, uint64_t version,
      uint64_t* exported_version = nullptr) const ABSL_LOCKS_EXCLUDED(mu_);
  // A new model `name` from an ExportModel blob (name empty: the blob's).
  // INVALID_ARGUMENT for a corrupt or incompatible blob.
  absl::StatusOr<ModelInfo> ImportModel(absl::string_view name,
                                        absl::string_view blob)
      ABSL_LOCKS_EXCLUDED(mu_);
  // CreateModel's checks alone (a shared log checks before it appends).
  absl::Status CheckCreate(absl::string_view name, const ModelSpec& spec) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // ImportModel's checks alone (a shared log checks before it appends): the
  // model's name, or ImportModel's error.
  absl::StatusOr<std::string> CheckImport(absl::string_view name,
                                          absl::string_view blob) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // AddClasses's checks alone (a shared log checks before it appends).
  absl::Status CheckAddClasses(absl::string_view name,
                               int32_t num_classes) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // A handle on one version (0 = the newest), alive as long as it is held.
  absl::StatusOr<std::shared_ptr<const ModelVersion>> AcquireVersion(
      absl::string_view name, uint64_t version = 0) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Read your writes: calls `ready` once model `name` exists and has
  // published a version >= `version`, or is deleted (the caller looks
  // again). It runs on the thread that publishes or creates, so it must be
  // quick. Returns null, keeping nothing, if that is so already; otherwise
  // the wait. RESOURCE_EXHAUSTED beyond the limits of waiting callbacks.
  absl::StatusOr<std::unique_ptr<VersionWait>> WhenVersion(
      absl::string_view name, uint64_t version, std::function<void()> ready)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Calls `listener` with each event of model `name` (model_events.h) from
  // now until the returned subscription is destroyed; NOT_FOUND if there is
  // no such model. The subscription keeps the model object alive.
  absl::StatusOr<std::unique_ptr<EventSubscription>> Watch(
      absl::string_view name, EventHub::Listener listener) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Writes the checkpoints that are due (or, with `force`, of every model
  // changed since its last one). Returns the first error; the rest still run.
  absl::Status Checkpoint(bool force) ABSL_LOCKS_EXCLUDED(mu_);
  // Stops the background threads, makes every log durable and writes a
  // final checkpoint of each changed model. Later updates fail. Idempotent.
  absl::Status Close() ABSL_LOCKS_EXCLUDED(mu_);

  const StoreOptions& options() const { return options_; }

  // What the models are charged against max_memory_bytes (memory_budget.h),
  // in time proportional to the number of models.
  int64_t MemoryUsed() const ABSL_LOCKS_EXCLUDED(mu_);
  // What reservations are checked against: the models' charges as last
  // counted (MemoryUsed() when nothing changed since).
  int64_t MemoryCounted() const { return ledger_.charged(); }

 private:
  // Checks AddClasses and reserves the grown model's parameters.
  absl::StatusOr<MemoryLedger::Hold> ReserveAddClasses(
      const Model& model, int32_t num_classes) const ABSL_LOCKS_EXCLUDED(mu_);
  // Reserves `more` bytes of the memory budget beside MemoryUsed() and the
  // reservations of the changes in progress (memory_budget.h).
  absl::StatusOr<MemoryLedger::Hold> ReserveMemory(int64_t more,
                                                   absl::string_view what) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // OK if `more` bytes could be reserved now (a check before a cluster
  // node appends a change, which it applies later from the log).
  absl::Status CheckMemory(int64_t more, absl::string_view what) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // The model `name`; with `to_change`, UNAVAILABLE once Close() began.
  absl::StatusOr<std::shared_ptr<Model>> Find(absl::string_view name,
                                              bool to_change = false) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Inserts a model built by `make` under `name`.
  absl::StatusOr<ModelInfo> Add(
      absl::string_view name,
      const std::function<absl::StatusOr<std::shared_ptr<Model>>()>& make)
      ABSL_LOCKS_EXCLUDED(mu_);
  // ALREADY_EXISTS if `name` is taken or being created.
  absl::Status CheckNameFree(absl::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::shared_ptr<Model>> AllModels() const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Every model's charge (memory_budget.h).
  std::vector<MemoryLedger::Charge> Charges() const ABSL_LOCKS_EXCLUDED(mu_);
  // Counts `model`'s charge again, once a change to it has landed (under a
  // budget).
  void Recount(const Model& model) const;
  void RunCheckpointer() ABSL_LOCKS_EXCLUDED(mu_);

  // The storage and model options derived from options_, and the log
  // syncer (model_store.cc).
  struct Wiring;
  class CreationWait;

  const StoreOptions options_;
  // Memory charged to the models and reserved by changes in progress
  // (ReserveMemory); declared before what may hold a reservation (an
  // update's callback). Its lock is taken before mu_ and the models' locks,
  // which its recounts take under it.
  mutable MemoryLedger ledger_;
  const std::unique_ptr<Wiring> wiring_;

  mutable Mutex mu_;
  std::map<std::string, std::shared_ptr<Model>, std::less<>> models_
      ABSL_GUARDED_BY(mu_);
  // Models found on disk that could not be recovered, with why.
  std::map<std::string, absl::Status, std::less<>> unrecoverable_
      ABSL_GUARDED_BY(mu_);
  // Names being created (their files are being written, outside mu_).
  std::map<std::string, int, std::less<>> creating_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // WhenVersion callbacks waiting for a model to be created, by id.
  mutable absl::flat_hash_map<uint64_t, std::function<void()>> creation_waiters_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_creation_waiter_ ABSL_GUARDED_BY(mu_) = 1;
  CondVar checkpointer_wake_;
  std::thread checkpointer_;
};

}  // namespace lepton

#endif  // LEPTON_CORE_STORE_MODEL_STORE_H_
