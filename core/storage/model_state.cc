#include "core/storage/model_state.h"

#include <cmath>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/adaptation/drift_detector.h"
#include "core/util/byte_io.h"
#include "core/util/crc32c.h"
#include "core/util/status_macros.h"

namespace lepton {
namespace {

constexpr absl::string_view kMagic = "LEPTNMDL";
constexpr size_t kFormatVersionOffset = 8;
constexpr size_t kPayloadSizeOffset = 12;
constexpr size_t kHeaderBytes = 20;  // magic, format version, payload size
constexpr size_t kChecksumBytes = 4;
// A recent update with an empty id: the least room one can take, so
// `remaining / kMinRecentUpdateBytes` bounds a count read from the input
// before anything is allocated for it.
constexpr size_t kMinRecentUpdateBytes = 4 + 8 + 8 + 8 + 1 + 8;

absl::Status Error(uint64_t offset, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("offset ", offset, ": ", what));
}

// Reads the payload's fields, and names the offset (from the start of the
// whole encoding, not of the payload) of whatever is wrong.
class PayloadReader {
 public:
  PayloadReader(absl::string_view payload, size_t base)
      : reader_(payload), base_(base) {}

  size_t offset() const { return base_ + reader_.position(); }
  size_t remaining() const { return reader_.remaining(); }

  // A fixed-width little-endian integer or float.
  template <typename T>
  absl::Status Fixed(T* v, absl::string_view what) {
    if (!reader_.Raw(v, sizeof(T))) return Truncated(what);
    return absl::OkStatus();
  }
  absl::Status Bytes(std::string* v, absl::string_view what) {
    const size_t start = offset();  // Bytes() may consume the length
    absl::string_view s;
    if (!reader_.Bytes(&s)) return TruncatedAt(start, what);
    v->assign(s.data(), s.size());
    return absl::OkStatus();
  }
  absl::Status Floats(size_t n, float* dst, absl::string_view what) {
    if (!reader_.Floats(n, dst)) return Truncated(what);
    return absl::OkStatus();
  }

  // The checksum matched, so this is an encoder that disagrees with the
  // format (or a payload_size that a bug wrote too small), not a torn file.
  absl::Status Truncated(absl::string_view what) const {
    return TruncatedAt(offset(), what);
  }
  static absl::Status TruncatedAt(size_t offset, absl::string_view what) {
    return Error(offset,
                 absl::StrCat("truncated: the payload ends inside ", what));
  }

 private:
  ByteReader reader_;
  const size_t base_;
};

absl::Status CheckFinite(double v, size_t offset, absl::string_view what) {
  if (std::isfinite(v)) return absl::OkStatus();
  return Error(offset, absl::StrCat(what, " is not finite (", v, ")"));
}

void EncodeAdaptationConfig(const ModelSpec& spec, ByteWriter& w) {
  const DriftConfig& d = spec.drift;
  const DriftDetectorConfig& c = d.detector;
  w.I32(static_cast<int32_t>(c.kind));
  w.F64(c.adwin_delta);
  w.F64(c.adwin_warning_delta);
  w.I32(c.adwin_clock);
  w.I32(c.adwin_max_buckets);
  w.F64(c.ph_delta);
  w.F64(c.ph_lambda);
  w.F64(c.ph_warning_lambda);
  w.F64(c.ph_alpha);
  w.I32(c.min_observations);
  w.I32(static_cast<int32_t>(d.policy));
  w.F32(d.boost_factor);
  w.I64(d.boost_examples);
  w.I32(d.challenger_window);
  w.I64(d.challenger_max_examples);
  const GuardrailConfig& g = spec.guardrail;
  w.I32(static_cast<int32_t>(g.policy));
  w.I32(g.holdout_capacity);
  w.F32(g.tolerance);
  w.I32(g.min_holdout);
  w.I32(g.quarantine_capacity);
  w.I32(g.recheck_holdout);
}

absl::Status DecodeAdaptationConfig(PayloadReader& r, uint32_t format_version,
                                    ModelSpec* spec) {
  DriftConfig& d = spec->drift;
  DriftDetectorConfig& c = d.detector;
  int32_t kind = 0, policy = 0, guardrail_policy = 0;
  LEPTON_RETURN_IF_ERROR(r.Fixed(&kind, "spec.drift.detector.kind"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&c.adwin_delta, "spec.drift.adwin_delta"));
  LEPTON_RETURN_IF_ERROR(
      r.Fixed(&c.adwin_warning_delta, "spec.drift.adwin_warning_delta"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&c.adwin_clock, "spec.drift.adwin_clock"));
  LEPTON_RETURN_IF_ERROR(
      r.Fixed(&c.adwin_max_buckets, "spec.drift.adwin_max_buckets"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&c.ph_delta, "spec.drift.ph_delta"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&c.ph_lambda, "spec.drift.ph_lambda"));
  LEPTON_RETURN_IF_ERROR(
      r.Fixed(&c.ph_warning_lambda, "spec.drift.ph_warning_lambda"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&c.ph_alpha, "spec.drift.ph_alpha"));
  LEPTON_RETURN_IF_ERROR(
      r.Fixed(&c.min_observations, "spec.drift.min_observations"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&policy, "spec.drift.policy"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&d.boost_factor, "spec.drift.boost_factor"));
  LEPTON_RETURN_IF_ERROR(
      r.Fixed(&d.boost_examples, "spec.drift.boost_examples"));
  LEPTON_RETURN_IF_ERROR(
      r.Fixed(&d.challenger_window, "spec.drift.challenger_window"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&d.challenger_max_examples,
                                 "spec.drift.challenger_max_examples"));
  GuardrailConfig& g = spec->guardrail;
  LEPTON_RETURN_IF_ERROR(r.Fixed(&guardrail_policy, "spec.guardrail.policy"));
  LEPTON_RETURN_IF_ERROR(
      r.Fixed(&g.holdout_capacity, "spec.guardrail.holdout_capacity"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&g.tolerance, "spec.guardrail.tolerance"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&g.min_holdout, "spec.guardrail.min_holdout"));
  if (format_version >= 3) {
    LEPTON_RETURN_IF_ERROR(
        r.Fixed(&g.quarantine_capacity, "spec.guardrail.quarantine_capacity"));
    LEPTON_RETURN_IF_ERROR(
        r.Fixed(&g.recheck_holdout, "spec.guardrail.recheck_holdout"));
  }
  c.kind = static_cast<DriftDetectorKind>(kind);
  d.policy = static_cast<DriftPolicy>(policy);
  g.policy = static_cast<GuardrailPolicy>(guardrail_policy);
  return absl::OkStatus();
}

// Format 2's named-features block (model_state.h).
absl::Status DecodeNamedFeatureSpec(PayloadReader& r, ModelSpec* spec) {
  LEPTON_RETURN_IF_ERROR(r.Fixed(&spec->hash_seed, "spec.hash_seed"));
  uint32_t n = 0;
  LEPTON_RETURN_IF_ERROR(r.Fixed(&n, "the count of spec.interactions"));
  // Each entry takes at least its 4-byte length: bound n before allocating.
  if (n > r.remaining() / 4) {
    return r.Truncated(absl::StrCat(n, " spec.interactions"));
  }
  spec->interactions.resize(n);
  for (std::string& pair : spec->interactions) {
    LEPTON_RETURN_IF_ERROR(r.Bytes(&pair, "spec.interactions"));
  }
  return absl::OkStatus();
}

absl::Status DecodeSpec(PayloadReader& r, uint32_t format_version,
                        ModelSpec* spec) {
  const size_t offset = r.offset();
  int32_t type = 0, optimizer_kind = 0;
  LEPTON_RETURN_IF_ERROR(r.Fixed(&type, "spec.type"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&spec->num_features, "spec.num_features"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&spec->num_classes, "spec.num_classes"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&optimizer_kind, "spec.optimizer.kind"));
  OptimizerConfig& o = spec->optimizer;
  LEPTON_RETURN_IF_ERROR(
      r.Fixed(&o.learning_rate, "spec.optimizer.learning_rate"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&o.power_t, "spec.optimizer.power_t"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&o.epsilon, "spec.optimizer.epsilon"));
  LEPTON_RETURN_IF_ERROR(
      r.Fixed(&o.initial_accumulator, "spec.optimizer.initial_accumulator"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&spec->l2, "spec.l2"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&spec->minibatch_size, "spec.minibatch_size"));
  // Format 1 has none of these: they keep ModelSpec's defaults.
  if (format_version >= 2) {
    LEPTON_RETURN_IF_ERROR(r.Fixed(&o.beta, "spec.optimizer.beta"));
    LEPTON_RETURN_IF_ERROR(r.Fixed(&o.l1, "spec.optimizer.l1"));
    LEPTON_RETURN_IF_ERROR(r.Fixed(&o.beta1, "spec.optimizer.beta1"));
    LEPTON_RETURN_IF_ERROR(r.Fixed(&o.beta2, "spec.optimizer.beta2"));
    LEPTON_RETURN_IF_ERROR(
        r.Fixed(&spec->max_gradient_norm, "spec.max_gradient_norm"));
    LEPTON_RETURN_IF_ERROR(r.Fixed(&spec->max_step, "spec.max_step"));
    LEPTON_RETURN_IF_ERROR(DecodeAdaptationConfig(r, format_version, spec));
    LEPTON_RETURN_IF_ERROR(DecodeNamedFeatureSpec(r, spec));
  }
  // Both enums have int as their underlying type, so any value converts;
  // ValidateModelSpec rejects the ones that name nothing.
  spec->type = static_cast<ModelType>(type);
  o.kind = static_cast<OptimizerKind>(optimizer_kind);
  if (absl::Status s = ValidateModelSpec(*spec); !s.ok()) {
    return Error(offset, s.message());
  }
  return absl::OkStatus();
}

absl::Status DecodeCounters(PayloadReader& r, ModelCounters* c) {
  LEPTON_RETURN_IF_ERROR(r.Fixed(&c->examples_seen, "examples_seen"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&c->updates, "updates"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&c->steps, "steps"));
  struct Field {
    double* value;
    absl::string_view name;
  };
  for (const Field& f :
       {Field{&c->weight_seen, "weight_seen"}, Field{&c->loss_sum, "loss_sum"},
        Field{&c->correct_weight, "correct_weight"}}) {
    const size_t offset = r.offset();
    LEPTON_RETURN_IF_ERROR(r.Fixed(f.value, f.name));
    LEPTON_RETURN_IF_ERROR(CheckFinite(*f.value, offset, f.name));
  }
  return absl::OkStatus();
}

absl::Status DecodeParams(PayloadReader& r, const ModelSpec& spec,
                          std::vector<float>* params) {
  const size_t arrays_offset = r.offset();
  uint32_t arrays = 0;
  LEPTON_RETURN_IF_ERROR(r.Fixed(&arrays, "arrays"));
  const int32_t want_arrays = ParamArrays(spec);
  if (arrays != static_cast<uint32_t>(want_arrays)) {
    return Error(arrays_offset,
                 absl::StrCat("arrays is ", arrays, "; a model with optimizer ",
                              OptimizerKindName(spec.optimizer.kind), " has ",
                              want_arrays));
  }
  const size_t count_offset = r.offset();
  uint64_t param_count = 0;
  LEPTON_RETURN_IF_ERROR(r.Fixed(&param_count, "param_count"));
  // No overflow: the spec is valid, so (num_features + 1) * num_outputs is at
  // most kMaxParameters (2^28).
  const uint64_t want_count = static_cast<uint64_t>(want_arrays) *
                              static_cast<uint64_t>(spec.num_features + 1) *
                              static_cast<uint64_t>(spec.num_outputs());
  if (param_count != want_count) {
    return Error(
        count_offset,
        absl::StrCat("param_count is ", param_count, "; the spec has ",
                     want_count, " (", want_arrays, " x (", spec.num_features,
                     " + 1) x ", spec.num_outputs(), ")"));
  }
  // Up to 2^29 floats for a valid spec: allocate only what the input holds.
  if (param_count > r.remaining() / sizeof(float)) {
    return r.Truncated(absl::StrCat(param_count, " params"));
  }
  const size_t params_offset = r.offset();
  params->resize(param_count);
  LEPTON_RETURN_IF_ERROR(r.Floats(param_count, params->data(), "params"));
  for (size_t i = 0; i < params->size(); ++i) {
    if (!std::isfinite((*params)[i])) {
      return Error(
          params_offset + i * sizeof(float),
          absl::StrCat("parameter ", i, " is not finite (", (*params)[i], ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status DecodeRecentUpdates(PayloadReader& r, uint32_t format_version,
                                 std::vector<RecentUpdate>* recent) {
  uint32_t n = 0;
  LEPTON_RETURN_IF_ERROR(r.Fixed(&n, "the count of recent updates"));
  if (n > r.remaining() / kMinRecentUpdateBytes) {
    return r.Truncated(absl::StrCat(n, " recent updates"));
  }
  recent->resize(n);
  for (RecentUpdate& u : *recent) {
    UpdateResult& result = u.result;
    LEPTON_RETURN_IF_ERROR(r.Bytes(&u.update_id, "a recent update's id"));
    LEPTON_RETURN_IF_ERROR(
        r.Fixed(&result.version, "a recent update's version"));
    LEPTON_RETURN_IF_ERROR(
        r.Fixed(&result.examples, "a recent update's examples"));
    LEPTON_RETURN_IF_ERROR(
        r.Fixed(&result.loss_before, "a recent update's loss_before"));
    const size_t flag_offset = r.offset();
    uint8_t has_accuracy = 0;
    double accuracy = 0;
    LEPTON_RETURN_IF_ERROR(
        r.Fixed(&has_accuracy, "a recent update's has_accuracy"));
    LEPTON_RETURN_IF_ERROR(
        r.Fixed(&accuracy, "a recent update's accuracy_before"));
    if (has_accuracy > 1) {
      return Error(
          flag_offset,
          absl::StrCat("has_accuracy must be 0 or 1, got ", int{has_accuracy}));
    }
    if (has_accuracy) result.accuracy_before = accuracy;
    if (format_version < 3) continue;
    const size_t quarantine_offset = r.offset();
    uint8_t quarantined = 0;
    LEPTON_RETURN_IF_ERROR(
        r.Fixed(&quarantined, "a recent update's quarantined flag"));
    LEPTON_RETURN_IF_ERROR(r.Fixed(&result.quarantine_released,
                                   "a recent update's quarantine_released"));
    LEPTON_RETURN_IF_ERROR(r.Fixed(&result.quarantine_dropped,
                                   "a recent update's quarantine_dropped"));
    if (quarantined > 1 || result.quarantine_released < 0 ||
        result.quarantine_dropped < 0) {
      return Error(quarantine_offset,
                   "a recent update's quarantine fields are out of range");
    }
    result.quarantined = quarantined == 1;
  }
  return absl::OkStatus();
}

void EncodeSpec(const ModelSpec& spec, ByteWriter& w) {
  w.I32(static_cast<int32_t>(spec.type));
  w.I64(spec.num_features);
  w.I32(spec.num_classes);
  w.I32(static_cast<int32_t>(spec.optimizer.kind));
  w.F32(spec.optimizer.learning_rate);
  w.F32(spec.optimizer.power_t);
  w.F32(spec.optimizer.epsilon);
  w.F32(spec.optimizer.initial_accumulator);
  w.F32(spec.l2);
  w.I32(spec.minibatch_size);
  w.F32(spec.optimizer.beta);
  w.F32(spec.optimizer.l1);
  w.F32(spec.optimizer.beta1);
  w.F32(spec.optimizer.beta2);
  w.F32(spec.max_gradient_norm);
  w.F32(spec.max_step);
  EncodeAdaptationConfig(spec, w);
  // Format 2: named features.
  w.U32(spec.hash_seed);
  w.U32(static_cast<uint32_t>(spec.interactions.size()));
  for (const std::string& pair : spec.interactions) w.Bytes(pair);
}

}  // namespace

std::string EncodeModelState(const ModelState& state) {
  // The params dominate (up to 2 GiB): size the string once instead of
  // letting it double (and copy) its way there.
  size_t size = kHeaderBytes + 256 + state.name.size() +
                state.spec.interactions.size() * 8 +
                state.params.size() * sizeof(float) + kChecksumBytes;
  for (const RecentUpdate& u : state.recent_updates) {
    size += kMinRecentUpdateBytes + u.update_id.size();
  }
  std::string out;
  out.reserve(size);
  ByteWriter w(&out);
  w.Raw(kMagic.data(), kMagic.size());
  w.U32(kModelStateFormatVersion);
  w.U64(0);  // payload_size, filled in once the payload is written

  w.Bytes(state.name);
  EncodeSpec(state.spec, w);
  w.U64(state.version);
  const ModelCounters& c = state.counters;
  w.U64(c.examples_seen);
  w.U64(c.updates);
  w.U64(c.steps);
  w.F64(c.weight_seen);
  w.F64(c.loss_sum);
  w.F64(c.correct_weight);
  w.I64(absl::ToUnixMicros(state.created));
  w.I64(absl::ToUnixMicros(state.published));
  w.U32(static_cast<uint32_t>(ParamArrays(state.spec)));
  w.U64(state.params.size());
  w.Floats(state.params);
  w.U32(static_cast<uint32_t>(state.recent_updates.size()));
  for (const RecentUpdate& u : state.recent_updates) {
    w.Bytes(u.update_id);
    w.U64(u.result.version);
    w.I64(u.result.examples);
    w.F64(u.result.loss_before);
    w.U8(u.result.accuracy_before.has_value() ? 1 : 0);
    w.F64(u.result.accuracy_before.value_or(0.0));
    w.U8(u.result.quarantined ? 1 : 0);
    w.I32(u.result.quarantine_released);
    w.I32(u.result.quarantine_dropped);
  }
  std::string adaptation;
  EncodeAdaptationState(state.adaptation, &adaptation);
  w.Bytes(adaptation);

  const uint64_t payload_size = out.size() - kHeaderBytes;
  std::memcpy(&out[kPayloadSizeOffset], &payload_size, sizeof(payload_size));
  w.U32(Crc32c(out));
  return out;
}

absl::StatusOr<ModelState> DecodeModelState(absl::string_view bytes) {
  // The magic is compared over whatever is there, so that a short input that
  // is not a model is called that rather than "truncated".
  const absl::string_view magic = bytes.substr(0, kMagic.size());
  if (magic != kMagic.substr(0, magic.size())) {
    return Error(0, "not a Lepton model (bad magic)");
  }
  // A prefix of a valid encoding always ends up here, at the end of the input.
  const auto truncated = [&bytes](absl::string_view what) {
    return Error(bytes.size(), absl::StrCat("truncated: ", what));
  };
  // The version before anything else that could fail: another version's
  // layout may differ from here on, and "format version 3" is the error
  // that says what to do about it.
  uint32_t format_version = 0;
  if (bytes.size() >= kPayloadSizeOffset) {
    std::memcpy(&format_version, bytes.data() + kFormatVersionOffset, 4);
    if (format_version < kOldestModelStateFormatVersion ||
        format_version > kModelStateFormatVersion) {
      return Error(
          kFormatVersionOffset,
          absl::StrCat("format version ", format_version,
                       "; this server reads ", kOldestModelStateFormatVersion,
                       " to ", kModelStateFormatVersion));
    }
  }
  if (bytes.size() > kMaxModelStateBytes) {
    return Error(0, absl::StrCat(bytes.size(), " bytes, over the limit of ",
                                 kMaxModelStateBytes));
  }
  if (bytes.size() < kHeaderBytes) {
    return truncated(absl::StrCat("the input is ", bytes.size(),
                                  " bytes, shorter than the ", kHeaderBytes,
                                  "-byte header"));
  }
  uint64_t payload_size = 0;
  std::memcpy(&payload_size, bytes.data() + kPayloadSizeOffset, 8);
  const size_t after_header = bytes.size() - kHeaderBytes;
  if (after_header < kChecksumBytes ||
      payload_size > after_header - kChecksumBytes) {
    return truncated(absl::StrCat("payload_size is ", payload_size, " and ",
                                  after_header,
                                  " bytes follow the header, checksum "
                                  "included"));
  }
  const size_t checksum_offset = kHeaderBytes + payload_size;
  uint32_t checksum = 0;
  std::memcpy(&checksum, bytes.data() + checksum_offset, kChecksumBytes);
  if (checksum != Crc32c(bytes.substr(0, checksum_offset))) {
    return Error(checksum_offset, "checksum mismatch");
  }
  // After the checksum test: a payload_size that a bit flip made smaller is
  // reported as the checksum mismatch it also causes.
  if (const size_t end = checksum_offset + kChecksumBytes; bytes.size() > end) {
    return Error(end, absl::StrCat(bytes.size() - end,
                                   " trailing bytes after the checksum"));
  }

  // The bytes are the ones that were written; what follows catches an
  // encoder that wrote something the format does not allow.
  ModelState state;
  PayloadReader r(bytes.substr(kHeaderBytes, payload_size), kHeaderBytes);
  LEPTON_RETURN_IF_ERROR(r.Bytes(&state.name, "name"));
  LEPTON_RETURN_IF_ERROR(DecodeSpec(r, format_version, &state.spec));
  const size_t version_offset = r.offset();
  LEPTON_RETURN_IF_ERROR(r.Fixed(&state.version, "version"));
  if (state.version < 1) {
    return Error(version_offset, "version must be >= 1, got 0");
  }
  LEPTON_RETURN_IF_ERROR(DecodeCounters(r, &state.counters));
  int64_t created = 0, published = 0;
  LEPTON_RETURN_IF_ERROR(r.Fixed(&created, "created"));
  LEPTON_RETURN_IF_ERROR(r.Fixed(&published, "published"));
  state.created = absl::FromUnixMicros(created);
  state.published = absl::FromUnixMicros(published);
  LEPTON_RETURN_IF_ERROR(DecodeParams(r, state.spec, &state.params));
  LEPTON_RETURN_IF_ERROR(
      DecodeRecentUpdates(r, format_version, &state.recent_updates));
  if (format_version >= 2) {
    const size_t offset = r.offset();
    std::string adaptation;
    LEPTON_RETURN_IF_ERROR(r.Bytes(&adaptation, "adaptation"));
    absl::StatusOr<AdaptationState> decoded =
        DecodeAdaptationState(state.spec, adaptation);
    if (!decoded.ok()) return Error(offset, decoded.status().message());
    state.adaptation = *std::move(decoded);
  } else if (auto detector = DriftDetector::Create(state.spec.drift.detector)) {
    // Format 1 kept no adaptation state: a model starts it afresh.
    detector->Encode(&state.adaptation.detector);
  }
  if (r.remaining() > 0) {
    return Error(r.offset(),
                 absl::StrCat(r.remaining(), " trailing bytes in the payload"));
  }
  return state;
}

std::string EncodeModelSpec(const ModelSpec& spec) {
  std::string out;
  ByteWriter w(&out);
  w.U32(kModelStateFormatVersion);
  EncodeSpec(spec, w);
  return out;
}

absl::StatusOr<ModelSpec> DecodeModelSpec(absl::string_view bytes) {
  uint32_t format_version = 0;
  if (bytes.size() < 4) return Error(0, "truncated: no format version");
  std::memcpy(&format_version, bytes.data(), 4);
  if (format_version < kOldestModelStateFormatVersion ||
      format_version > kModelStateFormatVersion) {
    return Error(
        0, absl::StrCat("format version ", format_version,
                        "; this server reads ", kOldestModelStateFormatVersion,
                        " to ", kModelStateFormatVersion));
  }
  ModelSpec spec;
  PayloadReader r(bytes.substr(4), 4);
  LEPTON_RETURN_IF_ERROR(DecodeSpec(r, format_version, &spec));
  if (r.remaining() > 0) {
    return Error(r.offset(),
                 absl::StrCat(r.remaining(), " trailing bytes after the spec"));
  }
  return spec;
}

}  // namespace lepton
