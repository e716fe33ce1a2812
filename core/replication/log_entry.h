// LogEntry: one change to the models of a cluster, as a record of the shared
// log (shared_log.h) that every node applies in order (replicated_store.h),
// and its binary encoding.
//
// Encoding (integers little-endian):
//   "LEPTNENT" | u32 format_version (kLogEntryFormatVersion)
//   | u8 kind | bytes model | bytes origin | u64 sequence
//   | the kind's body:
//       create:      bytes spec            (EncodeModelSpec, model_state.h)
//       delete:      nothing
//       update:      bytes record          (AppendUpdateRecord with version
//                                           0, update_log_format.h: the
//                                           examples hashed and their
//                                           delayed labels resolved)
//       rollback:    u64 version
//       add classes: i32 num_classes
//       import:      bytes state           (EncodeModelState, model_state.h)
//   | u32 crc32c of every byte before it
// where bytes = u32 length + the bytes.
//
// `origin` and `sequence` name the node that appended the entry and its
// count there, so that the node can answer its caller once it applies its
// own entry; other nodes ignore them.
//
// Thread safety: plain values and pure functions.
#ifndef LEPTON_CORE_REPLICATION_LOG_ENTRY_H_
#define LEPTON_CORE_REPLICATION_LOG_ENTRY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/learning/model_spec.h"
#include "core/store/store_types.h"

namespace lepton {

inline constexpr uint32_t kLogEntryFormatVersion = 1;

enum class LogEntryKind : uint8_t {
  kCreate = 1,
  kDelete = 2,
  kUpdate = 3,
  kRollback = 4,
  kAddClasses = 5,
  kImport = 6,
};

struct LogEntry {
  LogEntryKind kind = LogEntryKind::kUpdate;
  std::string model;
  std::string origin;
  uint64_t sequence = 0;
  ModelSpec spec;             // kCreate
  std::string update_record;  // kUpdate
  uint64_t version = 0;       // kRollback
  int32_t num_classes = 0;    // kAddClasses
  std::string model_state;    // kImport
};

std::string EncodeLogEntry(const LogEntry& entry);

// A model as of an entry of its stream: what a node that starts (or joins)
// loads instead of replaying the stream up to that entry. Kept in the log's
// value store (a snapshot) and in a node's --data_dir (a checkpoint).
// Encoding: "LEPTNSNP" | u32 format_version (kLogEntryFormatVersion)
//   | bytes position | u64 entries | bytes model_state | u32 crc32c.
struct ModelSnapshot {
  std::string position;     // the id of the last entry it includes
  uint64_t entries = 0;     // entries of the stream it includes
  std::string model_state;  // EncodeModelState (model_state.h)
};

std::string EncodeModelSnapshot(const ModelSnapshot& snapshot);
// DATA_LOSS "snapshot: ..." for anything that EncodeModelSnapshot did not
// write (the state itself is checked when loaded).
absl::StatusOr<ModelSnapshot> DecodeModelSnapshot(absl::string_view bytes);

// A prediction kept for a delayed label, shared with the other nodes of the
// cluster (replicated_store.h) until `expires`:
// "LEPTNPRD" | u32 format_version (kLogEntryFormatVersion)
//   | i64 expires (Unix microseconds) | u64 version
//   | the features (example_codec.h, label and weight 0)
//   | u32 n | n x f32 outputs | u32 crc32c.
std::string EncodeSharedPrediction(const RememberedPrediction& prediction,
                                   absl::Time expires);
// DATA_LOSS "prediction: ..." for anything EncodeSharedPrediction did not
// write.
absl::StatusOr<RememberedPrediction> DecodeSharedPrediction(
    absl::string_view bytes, absl::Time* expires);

// The inverse of EncodeLogEntry; DATA_LOSS "log entry: ..." for anything
// else (the log holds only what nodes encoded, so this is corruption or an
// incompatible node). The update record and the model state are checked
// when applied.
absl::StatusOr<LogEntry> DecodeLogEntry(absl::string_view bytes);

}  // namespace lepton

#endif  // LEPTON_CORE_REPLICATION_LOG_ENTRY_H_
