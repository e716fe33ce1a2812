// UpdateJournal: the writing end of one model's update log, a directory of
// segment files "wal-<first version, 20 digits>.log" (format:
// update_log_format.h). The model appends one record per applied update, in
// version order; Sync() makes what was appended durable, and concurrent
// updates share it (group commit: the model's updates keep appending while a
// sync is in progress, and the next sync covers all of them at once).
//
// Positions: every appended byte has a journal position (a count of bytes
// appended since the journal was opened, across segments). Append() returns
// the position just past its record; Sync() returns the position up to which
// everything is durable. A caller acknowledges an update once durable() is
// at or past its record's position.
//
// Failures: a failed Append() cuts the segment back to where the record
// began, so the log holds nothing of it; if even that fails, or a Sync()
// fails (after a failed fsync the kernel may have dropped the unwritten
// pages, so what is on disk is unknown), the journal is broken: every later
// call returns that error, until the server restarts and recovers from what
// the disk holds.
//
// Thread safety: Append() and Rotate() are serialized by the caller (the
// model's update lock). Sync(), durable(), status() and
// RemoveSegmentsBefore() may be called from any thread at any time;
// Sync() calls do not hold the journal's lock while they wait for the disk,
// so appends continue meanwhile.
#ifndef LEPTON_CORE_STORAGE_UPDATE_JOURNAL_H_
#define LEPTON_CORE_STORAGE_UPDATE_JOURNAL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/util/file_system.h"
#include "core/util/mutex.h"

namespace lepton {

// "wal-00000000000000000042.log" for a segment whose first record produces
// version 42; and back (false if `name` is not a segment's name).
std::string SegmentFileName(uint64_t first_version);
bool ParseSegmentFileName(absl::string_view name, uint64_t* first_version);

class UpdateJournal {
 public:
  // Starts a new segment in `dir` whose first record will produce
  // `first_version`. `fs` must outlive the journal.
  static absl::StatusOr<std::unique_ptr<UpdateJournal>> Open(
      FileSystem* fs, std::string dir, uint64_t first_version);
  ~UpdateJournal();
  UpdateJournal(const UpdateJournal&) = delete;
  UpdateJournal& operator=(const UpdateJournal&) = delete;

  // Appends one framed record; returns the position just past it.
  absl::StatusOr<uint64_t> Append(absl::string_view record)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Closes the current segment (it is synced by the next Sync()) and starts
  // a new one whose first record will produce `first_version`.
  absl::Status Rotate(uint64_t first_version) ABSL_LOCKS_EXCLUDED(mu_);
  // Makes everything appended before the call durable; returns durable().
  absl::StatusOr<uint64_t> Sync() ABSL_LOCKS_EXCLUDED(mu_, sync_mu_);

  uint64_t appended() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t durable() const ABSL_LOCKS_EXCLUDED(mu_);
  // OK, or the error that broke the journal.
  absl::Status status() const ABSL_LOCKS_EXCLUDED(mu_);
  // Breaks the journal with `error` (if it is not broken already): for a
  // caller that found the files inconsistent with what it could log next.
  void Fail(const absl::Status& error) ABSL_LOCKS_EXCLUDED(mu_);

  // Removes the closed segments every record of which produced a version
  // below `version` (they are covered by a checkpoint of version - 1 or
  // later): the segments followed by one that starts at or below `version`.
  absl::Status RemoveSegmentsBefore(uint64_t version) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Segment {
    uint64_t first_version = 0;
    std::string path;
    std::shared_ptr<WritableFile> file;  // null once synced and closed
    bool directory_synced = false;       // its creation is durable
  };

  UpdateJournal(FileSystem* fs, std::string dir);
  // Creates the segment file and writes its header.
  absl::StatusOr<Segment> NewSegment(uint64_t first_version)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Break(absl::Status error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  FileSystem* const fs_;
  const std::string dir_;

  // Held by one Sync() at a time: a second caller waits and usually finds
  // its records already durable.
  Mutex sync_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable Mutex mu_;
  // Every segment still on disk, oldest first; the last is the one appended
  // to. Older ones keep their file open until a Sync() covers them.
  std::vector<Segment> segments_ ABSL_GUARDED_BY(mu_);
  uint64_t current_size_ ABSL_GUARDED_BY(mu_) = 0;  // bytes in the newest
  uint64_t appended_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t durable_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lepton

#endif  // LEPTON_CORE_STORAGE_UPDATE_JOURNAL_H_
