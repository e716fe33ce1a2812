// Fuzz target: the update-log record reader (core/storage/
// update_log_format.h): ReadLogSegment over a whole segment file, or
// DecodeUpdateRecord over one framed record (a cluster's update entry).
//
// Input: u8 flags, then the segment (or the record).
//   flags & 1: sizes and checksums rewritten to match the bytes
//              (fuzz_support.h), so that mutations reach the payloads
//   flags & 2: read as the newest segment (a torn tail allowed)
//   flags & 4: one record (DecodeUpdateRecord) instead of a segment
//
// Properties, beyond no crash, no sanitizer report and no allocation over
// libFuzzer's -malloc_limit_mb:
//   - the answer is OK or DATA_LOSS;
//   - a segment read OK is consistent: a torn tail only in the newest
//     segment, valid_bytes within the file (all of it unless torn), records
//     in increasing offsets inside the valid bytes;
//   - every record read re-encodes (AppendUpdateRecord, the current format)
//     into a record that decodes to the same update.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/storage/update_log_format.h"
#include "tests/fuzz/fuzz_support.h"

namespace lepton::fuzz {
namespace {

template <typename T>
bool SameBits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() ||
          std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

bool SameBits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

bool SameExample(const Example& a, const Example& b) {
  return SameBits(a.label, b.label) && SameBits(a.weight, b.weight) &&
         SameBits(a.features.dense, b.features.dense) &&
         SameBits(a.features.indices, b.features.indices) &&
         SameBits(a.features.values, b.features.values) &&
         SameBits(a.served_outputs, b.served_outputs) &&
         a.holdout == b.holdout && a.prediction_id == b.prediction_id;
}

void CheckRoundTrip(const LoggedUpdate& update) {
  std::string record;
  AppendUpdateRecord(update.version, update.update_id, update.options,
                     Views(update.examples), &record);
  absl::StatusOr<LoggedUpdate> again = DecodeUpdateRecord(record, "again");
  FUZZ_CHECK(again.ok(), "%s", again.status().ToString().c_str());
  FUZZ_CHECK(again->version == update.version);
  FUZZ_CHECK(again->update_id == update.update_id);
  FUZZ_CHECK(again->options.epochs == update.options.epochs);
  FUZZ_CHECK(again->options.learning_rate.has_value() ==
             update.options.learning_rate.has_value());
  if (update.options.learning_rate.has_value()) {
    FUZZ_CHECK(
        SameBits(*again->options.learning_rate, *update.options.learning_rate));
  }
  FUZZ_CHECK(again->examples.size() == update.examples.size());
  for (size_t i = 0; i < update.examples.size(); ++i) {
    FUZZ_CHECK(SameExample(again->examples[i], update.examples[i]),
               "example %zu", i);
  }
}

void OneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t flags = in.U8();
  std::string bytes(in.Rest());
  if (flags & 4) {
    if (flags & 1) FixRecordChecksums(&bytes, 0);
    absl::StatusOr<LoggedUpdate> update = DecodeUpdateRecord(bytes, "record");
    FUZZ_CHECK(update.ok() || absl::IsDataLoss(update.status()), "%s",
               update.status().ToString().c_str());
    if (update.ok()) CheckRoundTrip(*update);
    return;
  }
  if (flags & 1) FixSegmentChecksums(&bytes);
  const bool newest = (flags & 2) != 0;
  absl::StatusOr<LogSegment> segment = ReadLogSegment(bytes, "wal", newest);
  FUZZ_CHECK(segment.ok() || absl::IsDataLoss(segment.status()), "%s",
             segment.status().ToString().c_str());
  if (!segment.ok()) return;
  FUZZ_CHECK(!segment->torn || newest);
  FUZZ_CHECK(segment->valid_bytes <= bytes.size());
  FUZZ_CHECK(segment->torn || segment->valid_bytes == bytes.size());
  uint64_t next = kSegmentHeaderBytes;
  for (const LoggedUpdate& record : segment->records) {
    FUZZ_CHECK(record.offset >= next && record.offset < segment->valid_bytes);
    next = record.offset + kRecordHeaderBytes;
    CheckRoundTrip(record);
  }
}

}  // namespace
}  // namespace lepton::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lepton::fuzz::OneInput(data, size);
  return 0;
}
