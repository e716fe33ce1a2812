// ModelFiles: one model's directory under the data directory,
//
//   <data_dir>/models/<name>/checkpoint-<version, 20 digits>.ckpt
//   <data_dir>/models/<name>/wal-<first version, 20 digits>.log
//
// A checkpoint is a ModelState encoding (model_state.h) written atomically
// (temporary file, fsync, rename, directory fsync); the spec lives in every
// checkpoint. The log segments (update_log_format.h) hold the updates applied
// after the checkpoints. ModelFiles writes checkpoints, keeps the newest
// `keep_checkpoints` of them, removes the log segments the newest one
// covers, and reads a directory back at start-up (Read).
//
// Thread safety: WriteCheckpoint() calls are serialized by the caller;
// everything else may be called from any thread.
#ifndef LEPTON_CORE_STORAGE_MODEL_FILES_H_
#define LEPTON_CORE_STORAGE_MODEL_FILES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/storage/fsync_policy.h"
#include "core/storage/model_state.h"
#include "core/storage/update_journal.h"
#include "core/storage/update_log_format.h"
#include "core/util/file_system.h"
#include "core/util/mutex.h"

namespace lepton {

class ModelFiles {
 public:
  struct Options {
    FileSystem* fs = PosixFileSystem();
    std::string data_dir = "";  // non-empty
    FsyncPolicy fsync = FsyncPolicy::kAlways;
    absl::Duration fsync_interval = absl::Milliseconds(10);
    // A checkpoint is due after this many updates, or after this long if
    // the model changed.
    int64_t checkpoint_every_updates = 10000;
    absl::Duration checkpoint_interval = absl::Seconds(60);
    // ... or once this many bytes were logged since the last one, so that a
    // restart never replays much more than that.
    int64_t checkpoint_log_bytes = int64_t{256} << 20;
    int32_t keep_checkpoints = 5;  // >= 1
  };

  // What start-up found on disk for one model.
  struct Recovered {
    ModelState state;  // from the newest valid checkpoint
    std::string checkpoint_path;
    // Versions of the checkpoint files that did not read back intact.
    std::vector<uint64_t> corrupt_checkpoints;
    // Log segments in order, holding only records above state.version.
    std::vector<LogSegment> segments;
    std::vector<std::string> segment_paths;
    // What was dropped or skipped, for the server's log.
    std::vector<std::string> notes;
  };

  static std::string ModelsDir(const Options& options);
  static std::string ModelDir(const Options& options, absl::string_view name);
  static std::string CheckpointFileName(uint64_t version);
  static bool ParseCheckpointFileName(absl::string_view name,
                                      uint64_t* version);

  // A new model's directory: FAILED_PRECONDITION if it already holds files;
  // writes `initial` as the first checkpoint and opens the log.
  static absl::StatusOr<std::unique_ptr<ModelFiles>> Create(
      const Options* options, absl::string_view name,
      const ModelState& initial);
  // Reads a model's directory; DATA_LOSS naming the file and offset when no
  // valid checkpoint exists or the log is corrupt or has a gap.
  static absl::StatusOr<Recovered> Read(const Options* options,
                                        absl::string_view name);
  // After the caller replayed `recovered` up to `version`: cuts a torn tail
  // off the newest segment, removes temporary files, opens the log.
  static absl::StatusOr<std::unique_ptr<ModelFiles>> Reopen(
      const Options* options, absl::string_view name,
      const Recovered& recovered, uint64_t version);

  const Options& options() const { return *options_; }
  const std::string& dir() const { return dir_; }
  UpdateJournal& journal() { return *journal_; }

  // Writes `state` as a checkpoint; OK once it is durable. On failure no
  // checkpoint file of state.version is left, or DATA_LOSS says that one
  // may be (its removal failed too).
  absl::Status WriteCheckpoint(const ModelState& state)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Keeps only the newest keep_checkpoints checkpoints and removes the log
  // segments the newest one covers. An error here leaves extra files, which
  // the next call removes; it never affects the checkpoints' validity.
  absl::Status RemoveObsolete() ABSL_LOCKS_EXCLUDED(mu_);
  // Ascending.
  std::vector<uint64_t> checkpoint_versions() const ABSL_LOCKS_EXCLUDED(mu_);
  // NOT_FOUND if there is no checkpoint of `version`.
  absl::StatusOr<ModelState> ReadCheckpoint(uint64_t version) const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  ModelFiles(const Options* options, std::string dir,
             std::unique_ptr<UpdateJournal> journal,
             std::vector<uint64_t> checkpoints);

  const Options* const options_;
  const std::string dir_;
  const std::unique_ptr<UpdateJournal> journal_;
  mutable Mutex mu_;
  std::vector<uint64_t> checkpoints_ ABSL_GUARDED_BY(mu_);  // ascending
};

}  // namespace lepton

#endif  // LEPTON_CORE_STORAGE_MODEL_FILES_H_
