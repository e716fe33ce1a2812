// ModelState: everything one version of a model is (spec, weights, optimizer
// state, counters, recent update ids), laid out independently of the
// in-memory page structure, and its portable binary encoding. The same
// encoding is a checkpoint file's content and an exported model
// (ExportModel / ImportModel), so a model moves between servers, into an
// archive, or onto a new replica as one checksummed blob.
//
// Encoding (all integers and floats little-endian):
//   "LEPTNMDL"               8-byte magic
//   u32 format_version       kModelStateFormatVersion (3)
//   u64 payload_size
//   payload:
//     bytes name                       (u32 length + bytes)
//     i32 type, i64 num_features, i32 num_classes,
//     i32 optimizer kind, f32 learning_rate, f32 power_t, f32 epsilon,
//     f32 initial_accumulator, f32 l2, i32 minibatch_size,
//     f32 beta, f32 l1, f32 beta1, f32 beta2,          (format 2 only)
//     f32 max_gradient_norm, f32 max_step              (format 2 only)
//     (format 2) drift: i32 detector kind, f64 adwin_delta,
//       f64 adwin_warning_delta, i32 adwin_clock, i32 adwin_max_buckets,
//       f64 ph_delta, f64 ph_lambda, f64 ph_warning_lambda, f64 ph_alpha,
//       i32 min_observations, i32 policy, f32 boost_factor,
//       i64 boost_examples, i32 challenger_window,
//       i64 challenger_max_examples
//     (format 2) guardrail: i32 policy, i32 holdout_capacity, f32 tolerance,
//       i32 min_holdout,
//       (format 3) i32 quarantine_capacity, i32 recheck_holdout
//     (format 2) named features (feature_hashing.h): u32 hash_seed,
//       u32 n, n x bytes interaction
//     u64 version
//     u64 examples_seen, u64 updates, u64 steps,
//     f64 weight_seen, f64 loss_sum, f64 correct_weight
//     i64 created, i64 published       (Unix microseconds)
//     u32 arrays, u64 param_count, param_count x f32 params
//     u32 n, then n x recent update:
//       bytes update_id, u64 version, i64 examples, f64 loss_before,
//       u8 has_accuracy, f64 accuracy_before,
//       (format 3) u8 quarantined, i32 quarantine_released,
//       i32 quarantine_dropped
//     (format 2) bytes adaptation      (EncodeAdaptationState; format 3
//       appends the QUARANTINE section, model_adaptation.cc)
//   u32 crc32c of every byte before it (magic included)
//
// Format 1 lacks every field marked format 2 above; it is still decoded,
// the missing fields taking their defaults (model_spec.h; no hash seed or
// interactions, no adaptation state), which is exactly how format-1 models
// learned. Format 2 lacks the fields marked format 3: a format-2 model has
// the QUARANTINE defaults and nothing held back (format 2 had no
// QUARANTINE). Encoding always writes the newest format.
//
// Thread safety: pure functions over values.
#ifndef LEPTON_CORE_STORAGE_MODEL_STATE_H_
#define LEPTON_CORE_STORAGE_MODEL_STATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/adaptation/model_adaptation.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/learning/update_types.h"

namespace lepton {

inline constexpr uint32_t kModelStateFormatVersion = 3;
// The oldest format DecodeModelState still reads (its models take the
// defaults of what it lacks).
inline constexpr uint32_t kOldestModelStateFormatVersion = 1;
// The largest encoding DecodeModelState takes, and so the largest checkpoint
// file that is read (a larger one is refused before it is read): 16 GiB,
// room for the largest model a spec allows (kMaxParameters weights with two
// optimizer arrays, 3 GiB, and a challenger as large) with its holdout set
// and recent updates. An ImportModel blob is bounded first by the server's
// --max_message_bytes.
inline constexpr uint64_t kMaxModelStateBytes = uint64_t{1} << 34;

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
  // then the optimizer's state: AdaGrad's accumulators; FTRL's z, then n;
  // Adam's m, then v.
  std::vector<float> params;
  std::vector<RecentUpdate> recent_updates;  // oldest first
  // Drift detector, challenger and holdout set (model_adaptation.h).
  AdaptationState adaptation;
};

std::string EncodeModelState(const ModelState& state);

// The inverse of EncodeModelState. INVALID_ARGUMENT, with the byte offset of
// the problem ("offset 20: checksum mismatch"), for anything that is not a
// complete, intact encoding of a valid state: bad magic, a format version
// outside [kOldestModelStateFormatVersion, kModelStateFormatVersion], a size
// that disagrees, a checksum mismatch, an invalid spec, a parameter count that
// does not match the spec, a non-finite parameter, more than
// kMaxModelStateBytes. Every count and length in the input is checked
// against the bytes that follow it before anything is allocated for it, so
// decoding allocates at most a small multiple of the input's size.
absl::StatusOr<ModelState> DecodeModelState(absl::string_view bytes);

// A spec alone (a shared log's create entry, log_entry.h): u32
// format_version, then the spec's fields as in a state of that format. The
// caller checksums it. DecodeModelSpec fails like DecodeModelState, offsets
// counted from the format version.
std::string EncodeModelSpec(const ModelSpec& spec);
absl::StatusOr<ModelSpec> DecodeModelSpec(absl::string_view bytes);

}  // namespace lepton

#endif  // LEPTON_CORE_STORAGE_MODEL_STATE_H_
