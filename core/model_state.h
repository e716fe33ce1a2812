// ModelState: everything one version of a model is (spec, weights, optimizer
// state, counters, recent update ids), laid out independently of the
// in-memory page structure, and its portable binary encoding. The same
// encoding is a checkpoint file's content and an exported model
// (ExportModel / ImportModel), so a model moves between servers, into an
// archive, or onto a new replica as one checksummed blob.
//
// Encoding (all integers and floats little-endian; the README repeats it):
//   "LEPTNMDL"               8-byte magic
//   u32 format_version       kModelStateFormatVersion
//   u64 payload_size
//   payload:
//     bytes name                       (u32 length + bytes)
//     i32 type, i64 num_features, i32 num_classes,
//     i32 optimizer kind, f32 learning_rate, f32 power_t, f32 epsilon,
//     f32 initial_accumulator, f32 l2, i32 minibatch_size
//     -- format 2 on: named features (feature_hashing.h) --
//     u32 hash_seed, u32 n, n x bytes interaction
//     -- end of named features --
//     u64 version
//     u64 examples_seen, u64 updates, u64 steps,
//     f64 weight_seen, f64 loss_sum, f64 correct_weight
//     i64 created, i64 published       (Unix microseconds)
//     u32 arrays, u64 param_count, param_count x f32 params
//     u32 n, then n x recent update:
//       bytes update_id, u64 version, i64 examples, f64 loss_before,
//       u8 has_accuracy, f64 accuracy_before
//   u32 crc32c of every byte before it (magic included)
//
// Encoding writes format 2. Decoding also reads format 1, which lacks the
// named-features block: hash_seed 0 and no interactions.
//
// Thread safety: pure functions over values.
#ifndef LEPTON_CORE_MODEL_STATE_H_
#define LEPTON_CORE_MODEL_STATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/model_spec.h"
#include "core/model_version.h"
#include "core/update_types.h"

namespace lepton {

inline constexpr uint32_t kModelStateFormatVersion = 2;
// The oldest format DecodeModelState still reads.
inline constexpr uint32_t kOldestModelStateFormatVersion = 1;

// An applied update remembered by its client-chosen id, so a retry returns
// the original result instead of learning twice.
struct RecentUpdate {
  std::string update_id;
  UpdateResult result;  // result.version: the version it produced
};

struct ModelState {
  std::string name;
  ModelSpec spec;
  uint64_t version = 0;
  ModelCounters counters;
  absl::Time created;
  absl::Time published;
  // ParamArrays(spec) arrays of (num_features + 1) x num_outputs floats, each
  // row-major: array 0 the weights (row j = feature j, the last row the bias),
  // array 1 AdaGrad's accumulators.
  std::vector<float> params;
  std::vector<RecentUpdate> recent_updates;  // oldest first
};

// Parameter arrays of a model with `spec`: 2 for AdaGrad, 1 otherwise.
int32_t ParamArrays(const ModelSpec& spec);

std::string EncodeModelState(const ModelState& state);

// The inverse of EncodeModelState. INVALID_ARGUMENT, with the byte offset of
// the problem ("offset 20: checksum mismatch"), for anything that is not a
// complete, intact encoding of a valid state: bad magic, a format version
// outside [kOldestModelStateFormatVersion, kModelStateFormatVersion], a size
// that disagrees, a checksum mismatch, an invalid spec, a parameter count that
// does not match the spec, a non-finite parameter.
absl::StatusOr<ModelState> DecodeModelState(absl::string_view bytes);

}  // namespace lepton

#endif  // LEPTON_CORE_MODEL_STATE_H_
