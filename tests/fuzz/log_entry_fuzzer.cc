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
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/replication/log_entry.h"
#include "tests/fuzz/fuzz_support.h"

namespace lepton::fuzz {
namespace {

// Decodes `bytes`; what decodes must re-encode canonically.
template <typename Decode, typename Encode>
void CheckCanonical(const std::string& bytes, Decode decode, Encode encode) {
  auto value = decode(bytes);
  FUZZ_CHECK(value.ok() || absl::IsDataLoss(value.status()), "%s",
             value.status().ToString().c_str());
  if (!value.ok()) return;
  const std::string encoded = encode(*value);
  auto again = decode(encoded);
  FUZZ_CHECK(again.ok(), "%s", again.status().ToString().c_str());
  FUZZ_CHECK(encode(*again) == encoded);
}

using ExpiringPrediction = std::pair<RememberedPrediction, absl::Time>;

absl::StatusOr<ExpiringPrediction> DecodePrediction(absl::string_view bytes) {
  absl::Time expires;
  absl::StatusOr<RememberedPrediction> prediction =
      DecodeSharedPrediction(bytes, &expires);
  if (!prediction.ok()) return prediction.status();
  return ExpiringPrediction(*std::move(prediction), expires);
}

std::string EncodePrediction(const ExpiringPrediction& p) {
  return EncodeSharedPrediction(p.first, p.second);
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
      CheckCanonical(bytes, DecodeLogEntry, EncodeLogEntry);
      break;
    case 1:
      CheckCanonical(bytes, DecodeModelSnapshot, EncodeModelSnapshot);
      break;
    default:
      CheckCanonical(bytes, DecodePrediction, EncodePrediction);
      break;
  }
}

}  // namespace
}  // namespace lepton::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lepton::fuzz::OneInput(data, size);
  return 0;
}
