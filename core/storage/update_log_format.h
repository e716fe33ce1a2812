// The update log's on-disk format: segment files of checksummed records, one
// record per applied update, and a reader that tells a torn tail (a crash in
// the middle of a write) from corruption.
//
// Segment file:
//   header (24 bytes): "LEPTNWAL" | u32 format_version
//   (kUpdateLogFormatVersion)
//                      | u64 first_version | u32 crc32c of the 20 bytes before
//   then records, back to back.
// Record:
//   u32 payload_size | u32 crc32c(the 4 bytes of payload_size)
//   | u32 crc32c(payload) | payload
// Update payload:
//   u8 kind (1 = update) | u64 version (the version the update produced)
//   | bytes update_id (u32 length + bytes; empty = none)
//   | u8 has_learning_rate | f32 learning_rate | i32 epochs
//   | u32 n, then n x example:
//       the example's encoding (core/learning/example_codec.h)
//       | u32 o | o x f32 served_outputs | u8 holdout       (version 2 only)
// Integers and floats are little-endian.
//
// Format versions: 2 (written) adds each example's served outputs (the raw
// outputs a delayed label is scored by; o = 0 for an ordinary example) and
// holdout flag. An example sent by prediction_id is logged resolved: the
// cached features and served outputs, not the id, so replay needs no cache
// and gives the same weights and counters. Version 1 segments (written
// before) are still read: their examples have no served outputs and holdout
// false. A journal always starts a new segment when opened, so a segment
// holds one format only.
//
// Reading (ReadLogSegment): records are returned in order until the end. The
// tail of the newest segment may be torn by a crash in the middle of a write;
// such a tail is reported (offset and reason) so the caller can drop and
// truncate it. A tail counts as torn when, at a record boundary:
//   - fewer bytes remain than a record header, or
//   - every remaining byte is zero (space the file system allocated but the
//     crash kept from being written), or
//   - the header is intact but the payload runs past the end of the file, or
//   - the record ends exactly at the end of the file and its payload checksum
//     fails.
// Anything else that is wrong (a header checksum mismatch, a payload checksum
// mismatch with bytes after the record, a payload that does not decode, a
// torn tail in a segment that is not the newest, a bad file header) is
// corruption: DATA_LOSS naming the file and the offset.
//
// Thread safety: pure functions over values.
#ifndef LEPTON_CORE_STORAGE_UPDATE_LOG_FORMAT_H_
#define LEPTON_CORE_STORAGE_UPDATE_LOG_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/learning/example.h"
#include "core/learning/update_types.h"

namespace lepton {

inline constexpr uint32_t kUpdateLogFormatVersion = 2;
// The oldest format version ReadLogSegment still reads.
inline constexpr uint32_t kOldestReadableLogFormatVersion = 1;
inline constexpr size_t kSegmentHeaderBytes = 24;
inline constexpr size_t kRecordHeaderBytes = 12;
// Bound on one record's payload (a sanity check on the size field).
inline constexpr uint32_t kMaxRecordPayloadBytes = uint32_t{1} << 31;
// The largest segment file that is read at start-up (a larger one is refused
// before it is read, DATA_LOSS): 16 GiB. A segment holds the records since
// the last checkpoint, which comes at least every checkpoint_log_bytes
// (256 MiB by default); replaying a larger one would not fit in memory
// anyway. The records' fields are checked against the bytes that follow
// them before anything is allocated for them.
inline constexpr uint64_t kMaxLogSegmentBytes = uint64_t{1} << 34;

// `format_version` other than the current one is for tests (old segments).
std::string EncodeSegmentHeader(
    uint64_t first_version, uint32_t format_version = kUpdateLogFormatVersion);

// Appends one framed update record to *out, in `format_version` (other than
// the current one for tests only; version 1 drops served outputs and
// holdout).
void AppendUpdateRecord(uint64_t version, absl::string_view update_id,
                        const UpdateOptions& options,
                        absl::Span<const ExampleView> examples,
                        std::string* out,
                        uint32_t format_version = kUpdateLogFormatVersion);

// One decoded update record.
struct LoggedUpdate {
  uint64_t version = 0;
  std::string update_id;
  UpdateOptions options;
  std::vector<Example> examples;
  uint64_t offset = 0;  // of the record in its segment
};

struct LogSegment {
  uint64_t first_version = 0;   // from the header
  uint32_t format_version = 0;  // from the header
  std::vector<LoggedUpdate> records;
  // Bytes of header and valid records: where a torn tail starts.
  uint64_t valid_bytes = 0;
  bool torn = false;
  std::string torn_reason;  // e.g. "record at offset 4096 is incomplete"
};

// Parses a whole segment file. `file_name` names it in error messages;
// `newest` says whether a torn tail is allowed (only the newest segment may
// have one). A file shorter than its header, or all zero bytes, counts as a
// torn, empty segment when `newest` (a crash right after creating it).
// Records must come from AppendUpdateRecord on validated examples (values
// as many as indices) of under kMaxRecordPayloadBytes, which the server's
// message size limit guarantees.
absl::StatusOr<LogSegment> ReadLogSegment(absl::string_view contents,
                                          absl::string_view file_name,
                                          bool newest);

// One framed record of the current format on its own (a shared log's update
// entry, log_entry.h), checked as a record of a segment would be; DATA_LOSS
// naming `what` if it is not exactly one intact record.
absl::StatusOr<LoggedUpdate> DecodeUpdateRecord(absl::string_view record,
                                                absl::string_view what);

}  // namespace lepton

#endif  // LEPTON_CORE_STORAGE_UPDATE_LOG_FORMAT_H_
