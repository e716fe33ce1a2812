// ReplicatedStore: one node of a cluster whose nodes all learn from one
// shared log (shared_log.h), by state-machine replication: every change to
// the models is appended to the log and applied, in log order, by every
// node to its own ModelStore. The learner is deterministic, so every node
// holds bit-identical weights at every version.
//
//   ReplicatedStore node(&store, &log, {.node_id = "a"});
//   node.StartUpdate("ctr", examples, {}, "u-17", done);  // answered once
//                                                         // applied here
//
// The log: one "catalog" stream holds model creations, imports and
// deletions; each model has a stream of its own ("model:NAME:ID", ID the
// catalog entry that created it, so a model deleted and created again under
// the same name starts a new stream) for its updates, rollbacks and added
// classes. Entries are log_entry.h encodings.
//
// A change (CreateModel, DeleteModel, StartUpdate, Rollback, AddClasses,
// ImportModel) is checked here first against this node's models (bad input
// gets its usual error and appends nothing), appended, and answered with the
// outcome of applying it, once this node has applied it: the version it
// produced is the same on every node. What only the log order can decide
// (two creations of one name, an update to a model deleted meanwhile, the
// guardrail) is decided at apply, the same way on every node. A remembered
// update_id is answered at once with its original result; a retry appended
// again is recognized at apply by every node, so it applies nothing twice.
// UNAVAILABLE if the log cannot be written: the change may or may not be in
// the log, so a retry must carry the same update_id.
//
// Catching up: a node starts with state kCatchingUp, applying the log from
// the start, and is kServing once it has applied every entry that was in
// the log when it started (ServingStatus() is UNAVAILABLE until then).
//
// Snapshots and checkpoints: a model's stream is not replayed from its
// start when a snapshot of it exists. One node at a time (the holder of a
// lease in the log's value store, renewed while it lives) writes a snapshot
// of a model every `snapshot_every` entries of its stream and trims the
// stream below the previous snapshot, so that a node may lag up to
// `snapshot_every` entries behind the newest snapshot; every node with a
// `checkpoint_dir` also keeps a checkpoint of each model there. When a node
// applies a model's creation, it loads the newer of the snapshot and its
// checkpoint, if any, and reads the stream only after it. A node that finds
// entries trimmed before it applied them stops serving (FAILED_PRECONDITION,
// as diverged): a restart loads the snapshot.
//
// Divergence: after every `digest_every` entries of a model's stream, each
// node stores a checksum of the model's version number and parameters under
// that entry's id in the log's value store (the first one written stands);
// a node whose checksum differs becomes kDiverged for good (ServingStatus()
// FAILED_PRECONDITION) and must be restarted.
//
// Threads: an appender thread sends the queued changes to the log, several
// per round trip; a follower thread reads the log and applies it to the
// store. Callbacks run on either (never with a lock held) and must be quick.
//
// Ownership and thread safety: borrows the store and the log, which must
// outlive it. Every method may be called from any thread. mu_ guards the
// queue, the waiting callers, the followed streams and the state.
#ifndef LEPTON_CORE_REPLICATION_REPLICATED_STORE_H_
#define LEPTON_CORE_REPLICATION_REPLICATED_STORE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
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
#include "core/replication/log_entry.h"
#include "core/replication/log_position.h"
#include "core/replication/shared_log.h"
#include "core/store/model_store.h"
#include "core/store/store_types.h"
#include "core/util/file_system.h"
#include "core/util/mutex.h"

namespace lepton {

struct ReplicationOptions {
  // This node's name in the entries it appends; unique among live nodes
  // (empty: a random one).
  std::string node_id;
  // Most entries per append round trip.
  int32_t append_batch = 256;
  // Most entries per stream per read.
  int32_t read_batch = 1000;
  // How long a read waits for new entries (and so how soon the follower
  // notices that it is stopped).
  absl::Duration read_wait = absl::Milliseconds(200);
  // Pause after a failed read before the next.
  absl::Duration retry_delay = absl::Milliseconds(100);
  // Called (on the follower thread, no lock held) after a model was created
  // or imported (true) or deleted (false) by applying the log; may be null.
  std::function<void(const std::string& name, bool exists)> on_catalog =
      nullptr;
  // Entries of a model's stream between two digests (0: none).
  int64_t digest_every = 1000;
  // How long a digest stays in the log's value store to compare with.
  absl::Duration digest_ttl = absl::Hours(1);
  // Entries of a model's stream between two snapshots in the log's value
  // store (0: none), written by the node that holds the snapshot lease.
  int64_t snapshot_every = 10000;
  absl::Duration lease_ttl = absl::Seconds(10);
  // Where this node keeps a checkpoint of each model (its newest snapshot,
  // a file per model stream); empty: none. Written every
  // `checkpoint_every` entries of the model's stream.
  std::string checkpoint_dir;
  int64_t checkpoint_every = 10000;
  FileSystem* fs = PosixFileSystem();
};

// Where a node stands in a model's stream (ModelInfo's replication part).
struct ReplicationPosition {
  std::string log_position;  // the id of the newest entry applied, "0-0"
  // Entries in the stream after it, as of the node's last look.
  uint64_t lag_entries = 0;
  // Log time between the newest entry applied and the stream's newest, plus
  // the time since the node last reached the log if that is more than a
  // few reads ago.
  double lag_seconds = 0;
};

class ReplicatedStore {
 public:
  enum class State { kCatchingUp, kServing, kDiverged };
  using InfoCallback = std::function<void(absl::StatusOr<ModelInfo>)>;
  using StatusCallback = std::function<void(absl::Status)>;

  // Starts following `log` into `store`, which should start empty: the log
  // holds every model.
  ReplicatedStore(ModelStore* store, SharedLog* log,
                  const ReplicationOptions& options);
  // Stop().
  ~ReplicatedStore();
  ReplicatedStore(const ReplicatedStore&) = delete;
  ReplicatedStore& operator=(const ReplicatedStore&) = delete;

  // Waits until no change appended by this node waits for its answer, or
  // `deadline`; false if the deadline came first.
  bool WaitIdle(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);
  // Stops both threads; changes not yet answered get UNAVAILABLE (they may
  // or may not be in the log). Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // The changes, as the ModelStore methods of the same names (model_store.h)
  // but answered through the callback.
  void CreateModel(absl::string_view name, const ModelSpec& spec,
                   InfoCallback done) ABSL_LOCKS_EXCLUDED(mu_);
  void DeleteModel(absl::string_view name, StatusCallback done)
      ABSL_LOCKS_EXCLUDED(mu_);
  void StartUpdate(absl::string_view name,
                   absl::Span<const ExampleView> examples,
                   const UpdateOptions& options, absl::string_view update_id,
                   UpdateCallback done) ABSL_LOCKS_EXCLUDED(mu_);
  void Rollback(absl::string_view name, uint64_t version, InfoCallback done)
      ABSL_LOCKS_EXCLUDED(mu_);
  void AddClasses(absl::string_view name, int32_t num_classes,
                  InfoCallback done) ABSL_LOCKS_EXCLUDED(mu_);
  void ImportModel(absl::string_view name, absl::string_view blob,
                   InfoCallback done) ABSL_LOCKS_EXCLUDED(mu_);

  // Delayed labels across nodes: shares the predictions `ids` of model
  // `name`, just kept by this node's store (Predict with remember), with
  // every node, until the store's prediction_ttl. StartUpdate then takes an
  // example's prediction_id from the shared ones, on any node, each once
  // (NOT_FOUND "examples[i].prediction_id: ..." if it is unknown, expired
  // or used); a change that fails gives its ids back. UNAVAILABLE if the
  // log cannot be reached.
  absl::Status SharePredictions(absl::string_view name,
                                absl::Span<const uint64_t> ids)
      ABSL_LOCKS_EXCLUDED(mu_);

  State state() const ABSL_LOCKS_EXCLUDED(mu_);
  // OK while kServing; UNAVAILABLE while catching up; FAILED_PRECONDITION,
  // naming the model and version, once diverged.
  absl::Status ServingStatus() const ABSL_LOCKS_EXCLUDED(mu_);
  // Where this node stands in model `name`'s stream; nullopt if it follows
  // no such model.
  std::optional<ReplicationPosition> PositionOf(absl::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);
  const std::string& node_id() const { return node_id_; }

  // The catalog stream's name, and model `name`'s stream when created by
  // the catalog entry `created_by` (for tools that read the log).
  static constexpr absl::string_view kCatalogStream = "catalog";
  static std::string ModelStream(absl::string_view name,
                                 absl::string_view created_by);
  // The model of a ModelStream.
  static std::string ModelOfStream(absl::string_view stream);

 private:
  // The outcome of applying an entry, for the node that appended it.
  struct Applied {
    absl::Status status;
    UpdateResult update;  // kUpdate
    ModelInfo info;       // kCreate, kImport, kRollback, kAddClasses
  };
  static Applied Failed(absl::Status status);
  using AppliedCallback = std::function<void(Applied)>;
  struct Waiting {
    std::string stream;
    AppliedCallback done;
  };
  struct Outgoing {
    uint64_t sequence = 0;
    LogAppend append;
  };
  // A model's stream this node applies.
  struct Followed {
    std::string stream;
    LogPosition applied;
    uint64_t applied_entries = 0;  // since the stream's start
    StreamHead head;               // as of the last look
    std::optional<LogPosition> caught_up_target;
  };

  // Queues `entry` for `stream` (the model's, if `stream` is empty; NOT_FOUND
  // if this node has no such model) and calls `done` once applied here.
  void Submit(LogEntry entry, std::string stream, AppliedCallback done)
      ABSL_LOCKS_EXCLUDED(mu_);
  void RunAppender() ABSL_LOCKS_EXCLUDED(mu_);
  void RunFollower() ABSL_LOCKS_EXCLUDED(mu_);
  // Applies one record of `stream` and answers its caller if it is ours.
  void ApplyRecord(const std::string& stream, const LogRecord& record)
      ABSL_LOCKS_EXCLUDED(mu_);
  Applied ApplyEntry(const std::string& stream, const std::string& id,
                     const LogEntry& entry) ABSL_LOCKS_EXCLUDED(mu_);
  // The digest of model `name`, whose state after its stream's entry `id`
  // is `model_state` (EncodeModelState), compared with the first one stored
  // for that entry.
  void CheckDigest(const std::string& stream, const std::string& id,
                   const std::string& name, absl::string_view model_state)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The examples with a prediction_id, taken from the shared predictions
  // into *views (features and served outputs, now owned by *owned); what
  // was taken goes to *taken, to give back if the change fails.
  absl::Status TakePredictions(
      absl::string_view name, std::vector<ExampleView>* views,
      std::vector<Example>* owned,
      std::vector<std::pair<std::string, std::string>>* taken);
  // Gives taken predictions back (for what remains of their time).
  void GiveBack(const std::vector<std::pair<std::string, std::string>>& taken);
  // The newer of the log's snapshot of `stream` and this node's checkpoint.
  std::optional<ModelSnapshot> LoadSnapshot(const std::string& stream)
      ABSL_LOCKS_EXCLUDED(mu_);
  // After entry `id`, the `entries`-th of `stream`, which left its model as
  // `model_state`: the snapshot and the checkpoint asked for.
  void SaveSnapshots(const std::string& stream, const std::string& id,
                     uint64_t entries, std::string model_state, bool to_log,
                     bool to_disk) ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets the snapshots of a deleted model's `stream` (and, holding the
  // lease, removes the stream from the log).
  void DropSnapshots(const std::string& stream) ABSL_LOCKS_EXCLUDED(mu_);
  std::string CheckpointPath(const std::string& stream) const;
  // Removes the checkpoints of every stream but `streams` (of models deleted
  // while this node was away).
  void DropOtherCheckpoints(const std::vector<std::string>& streams)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Takes or renews the snapshot lease (every third of its ttl).
  void RenewLease() ABSL_LOCKS_EXCLUDED(mu_);
  // Refreshes the heads of the followed streams (at most every few reads)
  // and moves from kCatchingUp to kServing once caught up.
  void LookAtHeads() ABSL_LOCKS_EXCLUDED(mu_);
  void SetStateLocked(State state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Answers every waiting caller of `stream` with `status`.
  void FailWaiting(const std::string& stream, const absl::Status& status)
      ABSL_LOCKS_EXCLUDED(mu_);

  ModelStore* const store_;
  SharedLog* const log_;
  const ReplicationOptions options_;
  const std::string node_id_;
  std::atomic<uint64_t> next_sequence_{1};

  mutable Mutex mu_;
  CondVar appender_wake_;
  // Signalled when waiting_ becomes empty.
  CondVar idle_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Outgoing> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Waiting> waiting_ ABSL_GUARDED_BY(mu_);
  // By model name.
  std::map<std::string, Followed, std::less<>> followed_ ABSL_GUARDED_BY(mu_);
  LogPosition catalog_applied_ ABSL_GUARDED_BY(mu_);
  std::optional<LogPosition> catalog_target_ ABSL_GUARDED_BY(mu_);
  State state_ ABSL_GUARDED_BY(mu_) = State::kCatchingUp;
  // state_ == kServing, for ServingStatus() without the lock.
  std::atomic<bool> serving_{false};
  std::string diverged_ ABSL_GUARDED_BY(mu_);
  absl::Time last_contact_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time heads_looked_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Only the follower thread uses these.
  bool holds_lease_ = false;
  absl::Time lease_renewed_at_ = absl::InfinitePast();

  std::thread appender_;
  std::thread follower_;
};

}  // namespace lepton

#endif  // LEPTON_CORE_REPLICATION_REPLICATED_STORE_H_
