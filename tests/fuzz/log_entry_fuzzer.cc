// Fuzz target: what a node of a cluster reads from Redis (core/replication/
// log_entry.h): a log entry (DecodeLogEntry), a model snapshot
// (DecodeModelSnapshot) or a shared prediction (DecodeSharedPrediction).
//
// Input: u8 flags, then the bytes.
//   (flags >> 1) % 3: 0 a log entry, 1 a snapshot, 2 a shared prediction
//   flags & 1: the trailing CRC-32C rewritten to match the bytes before it,
//              so that mutations reach the fields behind it
//
// Properties, beyond no crash, no sanitizer report and no allocation over
// libFuzzer's -malloc_limit_mb:
//   - the answer is OK or DATA_LOSS;
//   - what decodes re-encodes into bytes that decode again and re-encode to
//     the same bytes (the encoding is a function of the value).
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/replication/log_entry.h"
#include "tests/fuzz/fuzz_support.h"

namespace lepton::fuzz {
namespace {

void CheckDecodeAnswer(const absl::Status& status) {
  FUZZ_CHECK(status.ok() || absl::IsDataLoss(status), "%s",
             status.ToString().c_str());
}

void LogEntryInput(const std::string& bytes) {
  absl::StatusOr<LogEntry> entry = DecodeLogEntry(bytes);
  CheckDecodeAnswer(entry.status());
  if (!entry.ok()) return;
  const std::string encoded = EncodeLogEntry(*entry);
  absl::StatusOr<LogEntry> again = DecodeLogEntry(encoded);
  FUZZ_CHECK(again.ok(), "%s", again.status().ToString().c_str());
  FUZZ_CHECK(EncodeLogEntry(*again) == encoded);
}

void SnapshotInput(const std::string& bytes) {
  absl::StatusOr<ModelSnapshot> snapshot = DecodeModelSnapshot(bytes);
  CheckDecodeAnswer(snapshot.status());
  if (!snapshot.ok()) return;
  const std::string encoded = EncodeModelSnapshot(*snapshot);
  absl::StatusOr<ModelSnapshot> again = DecodeModelSnapshot(encoded);
  FUZZ_CHECK(again.ok(), "%s", again.status().ToString().c_str());
  FUZZ_CHECK(EncodeModelSnapshot(*again) == encoded);
}

void PredictionInput(const std::string& bytes) {
  absl::Time expires;
  absl::StatusOr<RememberedPrediction> prediction =
      DecodeSharedPrediction(bytes, &expires);
  CheckDecodeAnswer(prediction.status());
  if (!prediction.ok()) return;
  const std::string encoded = EncodeSharedPrediction(*prediction, expires);
  absl::Time expires_again;
  absl::StatusOr<RememberedPrediction> again =
      DecodeSharedPrediction(encoded, &expires_again);
  FUZZ_CHECK(again.ok(), "%s", again.status().ToString().c_str());
  FUZZ_CHECK(EncodeSharedPrediction(*again, expires_again) == encoded);
}

void OneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t flags = in.U8();
  std::string bytes(in.Rest());
  if ((flags & 1) && bytes.size() >= 4) {
    const size_t at = bytes.size() - 4;
    StoreU32(Crc32c(absl::string_view(bytes).substr(0, at)), bytes.data() + at);
  }
  switch ((flags >> 1) % 3) {
    case 0:
      LogEntryInput(bytes);
      break;
    case 1:
      SnapshotInput(bytes);
      break;
    default:
      PredictionInput(bytes);
      break;
  }
}

}  // namespace
}  // namespace lepton::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lepton::fuzz::OneInput(data, size);
  return 0;
}
