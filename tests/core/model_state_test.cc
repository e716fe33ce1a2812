// Tests of the model-state encoding (core/storage/model_state.h), the content
// of checkpoints and exported models: the bytes follow the documented layout,
// every field round-trips bit for bit, and anything that is not an intact
// encoding of a valid state (a flipped bit anywhere, a truncation at any
// length, another format version, a checksummed but inconsistent payload)
// is INVALID_ARGUMENT naming the offset, never a crash or a huge allocation.
#include "core/storage/model_state.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/adaptation/drift_detector.h"
#include "core/learning/model_spec.h"
#include "core/learning/model_version.h"
#include "core/learning/update_types.h"
#include "core/util/byte_io.h"
#include "core/util/crc32c.h"
#include "tests/core/test_support.h"

namespace lepton {
namespace {

ModelSpec MakeSpec(ModelType type, int64_t num_features, int32_t num_classes,
                   OptimizerKind kind) {
  ModelSpec spec;
  spec.type = type;
  spec.num_features = num_features;
  spec.num_classes = num_classes;
  spec.optimizer.kind = kind;
  spec.optimizer.learning_rate = 0.125f;
  spec.optimizer.power_t = kind == OptimizerKind::kSgd ? 0.5f : 0.0f;
  spec.optimizer.epsilon = 1e-7f;
  spec.optimizer.initial_accumulator =
      kind == OptimizerKind::kAdagrad ? 0.1f : 0.0f;
  spec.l2 = 1e-4f;
  spec.minibatch_size = 8;
  // Not the defaults, so that a decoder that drops them is caught.
  spec.optimizer.beta = 1.5f;
  spec.optimizer.l1 = kind == OptimizerKind::kFtrl ? 0.25f : 0.0f;
  spec.optimizer.beta1 = 0.8f;
  spec.optimizer.beta2 = 0.99f;
  spec.max_gradient_norm = 10.0f;
  spec.max_step = 0.5f;
  spec.hash_seed = 0xC0FFEE01u;
  spec.interactions = {"ua", "uu"};
  return spec;
}

// Floats whose bits a careless encoding (a text format, a cast through
// double, a "normalization" of -0) would change.
const float kTrickyFloats[] = {
    -0.0f,
    0.0f,
    std::numeric_limits<float>::denorm_min(),
    -std::numeric_limits<float>::denorm_min(),
    std::numeric_limits<float>::min(),
    std::numeric_limits<float>::max(),
    std::numeric_limits<float>::lowest(),
    0.1f,
    -1.0f / 3.0f,
    1e-30f,
};

ModelState MakeState(const ModelSpec& spec, bool with_recent_updates) {
  ModelState state;
  state.name = "fashion-mnist.v2";
  state.spec = spec;
  state.version = 1234567;
  state.counters.examples_seen = 9876543210ull;
  state.counters.updates = 4321;
  state.counters.steps = 55555;
  state.counters.weight_seen = 12345.25;
  state.counters.loss_sum = -0.0;
  state.counters.correct_weight = std::numeric_limits<double>::denorm_min();
  state.created = absl::FromUnixMicros(1700000000123456);
  state.published = absl::FromUnixMicros(1700000999654321);
  const size_t n = static_cast<size_t>(ParamArrays(spec)) *
                   static_cast<size_t>(spec.num_features + 1) *
                   static_cast<size_t>(spec.num_outputs());
  for (size_t i = 0; i < n; ++i) {
    state.params.push_back(i < std::size(kTrickyFloats)
                               ? kTrickyFloats[i]
                               : static_cast<float>(i) * 0.37f - 2.0f);
  }
  // A fresh detector's state: what a model of this spec starts with.
  if (auto detector = DriftDetector::Create(spec.drift.detector)) {
    detector->Encode(&state.adaptation.detector);
  }
  if (with_recent_updates) {
    RecentUpdate a;
    a.update_id = "client-7/batch-0001";
    a.result = {1234565, 64, 0.6931471805599453, 0.5};
    RecentUpdate b;
    b.update_id = "";
    b.result = {1234566, 1, -0.0, std::nullopt};
    RecentUpdate c;
    c.update_id = std::string("id\0with\xFFnul", 11);
    c.result = {1234567, 1000000, 1e300, -0.0};
    state.recent_updates = {a, b, c};
  }
  return state;
}

bool BitEqualDouble(double a, double b) {
  return std::memcmp(&a, &b, sizeof(double)) == 0;
}

void ExpectSameState(const ModelState& got, const ModelState& want) {
  EXPECT_EQ(got.name, want.name);
  EXPECT_EQ(got.spec.type, want.spec.type);
  EXPECT_EQ(got.spec.num_features, want.spec.num_features);
  EXPECT_EQ(got.spec.num_classes, want.spec.num_classes);
  EXPECT_EQ(got.spec.optimizer.kind, want.spec.optimizer.kind);
  EXPECT_EQ(got.spec.optimizer.learning_rate,
            want.spec.optimizer.learning_rate);
  EXPECT_EQ(got.spec.optimizer.power_t, want.spec.optimizer.power_t);
  EXPECT_EQ(got.spec.optimizer.epsilon, want.spec.optimizer.epsilon);
  EXPECT_EQ(got.spec.optimizer.initial_accumulator,
            want.spec.optimizer.initial_accumulator);
  EXPECT_EQ(got.spec.l2, want.spec.l2);
  EXPECT_EQ(got.spec.minibatch_size, want.spec.minibatch_size);
  EXPECT_EQ(got.spec.optimizer.beta, want.spec.optimizer.beta);
  EXPECT_EQ(got.spec.optimizer.l1, want.spec.optimizer.l1);
  EXPECT_EQ(got.spec.optimizer.beta1, want.spec.optimizer.beta1);
  EXPECT_EQ(got.spec.optimizer.beta2, want.spec.optimizer.beta2);
  EXPECT_EQ(got.spec.max_gradient_norm, want.spec.max_gradient_norm);
  EXPECT_EQ(got.spec.max_step, want.spec.max_step);
  EXPECT_EQ(got.spec.hash_seed, want.spec.hash_seed);
  EXPECT_EQ(got.spec.interactions, want.spec.interactions);
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.counters.examples_seen, want.counters.examples_seen);
  EXPECT_EQ(got.counters.updates, want.counters.updates);
  EXPECT_EQ(got.counters.steps, want.counters.steps);
  EXPECT_TRUE(
      BitEqualDouble(got.counters.weight_seen, want.counters.weight_seen));
  EXPECT_TRUE(BitEqualDouble(got.counters.loss_sum, want.counters.loss_sum));
  EXPECT_TRUE(BitEqualDouble(got.counters.correct_weight,
                             want.counters.correct_weight));
  EXPECT_EQ(got.created, want.created);
  EXPECT_EQ(got.published, want.published);
  EXPECT_TRUE(BitEqual(got.params, want.params));
  ASSERT_EQ(got.recent_updates.size(), want.recent_updates.size());
  for (size_t i = 0; i < got.recent_updates.size(); ++i) {
    const RecentUpdate& g = got.recent_updates[i];
    const RecentUpdate& w = want.recent_updates[i];
    EXPECT_EQ(g.update_id, w.update_id) << "recent update " << i;
    EXPECT_EQ(g.result.version, w.result.version) << "recent update " << i;
    EXPECT_EQ(g.result.examples, w.result.examples) << "recent update " << i;
    EXPECT_TRUE(BitEqualDouble(g.result.loss_before, w.result.loss_before))
        << "recent update " << i;
    ASSERT_EQ(g.result.accuracy_before.has_value(),
              w.result.accuracy_before.has_value())
        << "recent update " << i;
    if (w.result.accuracy_before.has_value()) {
      EXPECT_TRUE(
          BitEqualDouble(*g.result.accuracy_before, *w.result.accuracy_before))
          << "recent update " << i;
    }
  }
}

// Where HandEncode put each field (offsets from the start of the encoding).
struct Layout {
  size_t spec = 0;
  size_t version = 0;
  size_t weight_seen = 0;
  size_t arrays = 0;
  size_t param_count = 0;
  size_t params = 0;
  size_t recent_count = 0;
  size_t payload_end = 0;
  size_t checksum = 0;
};

// Ways to make HandEncode write something EncodeModelState never would; the
// checksum is always right, so only the decoder's consistency checks stand
// in the way.
struct Tweaks {
  uint32_t format_version = kModelStateFormatVersion;
  std::optional<uint32_t> name_length;
  std::optional<uint32_t> arrays;
  std::optional<uint64_t> param_count;
  std::optional<uint32_t> recent_count;
  std::optional<uint8_t> has_accuracy;
  std::string payload_suffix;
};

// The layout in model_state.h's comment, written out field by field: an
// encoder independent of EncodeModelState's code. t.format_version 1 writes
// the format-1 layout (no FTRL, Adam, clipping or max_step fields).
std::string HandEncode(const ModelState& s, const Tweaks& t = {},
                       Layout* layout = nullptr) {
  Layout l;
  std::string payload;
  ByteWriter p(&payload);
  const auto at = [&payload] { return 20 + payload.size(); };
  p.U32(t.name_length.value_or(static_cast<uint32_t>(s.name.size())));
  p.Raw(s.name.data(), s.name.size());
  l.spec = at();
  p.I32(static_cast<int32_t>(s.spec.type));
  p.I64(s.spec.num_features);
  p.I32(s.spec.num_classes);
  p.I32(static_cast<int32_t>(s.spec.optimizer.kind));
  p.F32(s.spec.optimizer.learning_rate);
  p.F32(s.spec.optimizer.power_t);
  p.F32(s.spec.optimizer.epsilon);
  p.F32(s.spec.optimizer.initial_accumulator);
  p.F32(s.spec.l2);
  p.I32(s.spec.minibatch_size);
  if (t.format_version >= 2) {
    p.F32(s.spec.optimizer.beta);
    p.F32(s.spec.optimizer.l1);
    p.F32(s.spec.optimizer.beta1);
    p.F32(s.spec.optimizer.beta2);
    p.F32(s.spec.max_gradient_norm);
    p.F32(s.spec.max_step);
    const DriftConfig& d = s.spec.drift;
    p.I32(static_cast<int32_t>(d.detector.kind));
    p.F64(d.detector.adwin_delta);
    p.F64(d.detector.adwin_warning_delta);
    p.I32(d.detector.adwin_clock);
    p.I32(d.detector.adwin_max_buckets);
    p.F64(d.detector.ph_delta);
    p.F64(d.detector.ph_lambda);
    p.F64(d.detector.ph_warning_lambda);
    p.F64(d.detector.ph_alpha);
    p.I32(d.detector.min_observations);
    p.I32(static_cast<int32_t>(d.policy));
    p.F32(d.boost_factor);
    p.I64(d.boost_examples);
    p.I32(d.challenger_window);
    p.I64(d.challenger_max_examples);
    const GuardrailConfig& g = s.spec.guardrail;
    p.I32(static_cast<int32_t>(g.policy));
    p.I32(g.holdout_capacity);
    p.F32(g.tolerance);
    p.I32(g.min_holdout);
    if (t.format_version >= 3) {
      p.I32(g.quarantine_capacity);
      p.I32(g.recheck_holdout);
    }
    p.U32(s.spec.hash_seed);
    p.U32(static_cast<uint32_t>(s.spec.interactions.size()));
    for (const std::string& pair : s.spec.interactions) p.Bytes(pair);
  }
  l.version = at();
  p.U64(s.version);
  p.U64(s.counters.examples_seen);
  p.U64(s.counters.updates);
  p.U64(s.counters.steps);
  l.weight_seen = at();
  p.F64(s.counters.weight_seen);
  p.F64(s.counters.loss_sum);
  p.F64(s.counters.correct_weight);
  p.I64(absl::ToUnixMicros(s.created));
  p.I64(absl::ToUnixMicros(s.published));
  l.arrays = at();
  p.U32(t.arrays.value_or(static_cast<uint32_t>(ParamArrays(s.spec))));
  l.param_count = at();
  p.U64(t.param_count.value_or(s.params.size()));
  l.params = at();
  for (float f : s.params) p.F32(f);
  l.recent_count = at();
  p.U32(
      t.recent_count.value_or(static_cast<uint32_t>(s.recent_updates.size())));
  for (const RecentUpdate& u : s.recent_updates) {
    p.Bytes(u.update_id);
    p.U64(u.result.version);
    p.I64(u.result.examples);
    p.F64(u.result.loss_before);
    p.U8(t.has_accuracy.value_or(u.result.accuracy_before.has_value()));
    p.F64(u.result.accuracy_before.value_or(0));
    if (t.format_version >= 3) {
      p.U8(u.result.quarantined ? 1 : 0);
      p.I32(u.result.quarantine_released);
      p.I32(u.result.quarantine_dropped);
    }
  }
  if (t.format_version >= 2) {
    std::string adaptation;
    EncodeAdaptationState(s.adaptation, &adaptation);
    if (t.format_version == 2) {
      // Format 2 ends before the QUARANTINE section: five u64 when nothing
      // is held back.
      EXPECT_TRUE(s.adaptation.quarantine.empty());
      adaptation.resize(adaptation.size() - 5 * 8);
    }
    p.Bytes(adaptation);
  }
  l.payload_end = at();
  payload += t.payload_suffix;

  std::string out = "LEPTNMDL";
  ByteWriter w(&out);
  w.U32(t.format_version);
  w.U64(payload.size());
  out += payload;
  l.checksum = out.size();
  w.U32(Crc32c(out));
  if (layout != nullptr) *layout = l;
  return out;
}

ModelState SmallState() {
  return MakeState(
      MakeSpec(ModelType::kLinearRegression, 2, 0, OptimizerKind::kSgd),
      /*with_recent_updates=*/true);
}

TEST(ParamArraysTest, ThreeForFtrlAndAdamTwoForAdagradOneForSgd) {
  EXPECT_EQ(ParamArrays(MakeSpec(ModelType::kLogisticRegression, 3, 0,
                                 OptimizerKind::kFtrl)),
            3);
  EXPECT_EQ(ParamArrays(MakeSpec(ModelType::kSoftmaxRegression, 3, 2,
                                 OptimizerKind::kAdam)),
            3);
  EXPECT_EQ(ParamArrays(MakeSpec(ModelType::kLogisticRegression, 3, 0,
                                 OptimizerKind::kAdagrad)),
            2);
  EXPECT_EQ(ParamArrays(MakeSpec(ModelType::kLogisticRegression, 3, 0,
                                 OptimizerKind::kSgd)),
            1);
}

TEST(ModelStateTest, EncodingFollowsTheDocumentedLayout) {
  for (OptimizerKind kind :
       {OptimizerKind::kAdagrad, OptimizerKind::kFtrl, OptimizerKind::kAdam}) {
    for (bool recent : {false, true}) {
      const ModelState state = MakeState(
          MakeSpec(ModelType::kSoftmaxRegression, 3, 4, kind), recent);
      EXPECT_EQ(EncodeModelState(state), HandEncode(state))
          << OptimizerKindName(kind) << ", recent updates: " << recent;
    }
  }
}

TEST(ModelStateTest, FormatOneBlobsStillDecodeWithDefaults) {
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kAdagrad}) {
    SCOPED_TRACE(OptimizerKindName(kind));
    // What a format-1 server wrote: its specs had only the old fields, so
    // the new ones are the defaults.
    ModelSpec spec = MakeSpec(ModelType::kSoftmaxRegression, 4, 3, kind);
    const ModelSpec defaults;
    spec.optimizer.beta = defaults.optimizer.beta;
    spec.optimizer.l1 = defaults.optimizer.l1;
    spec.optimizer.beta1 = defaults.optimizer.beta1;
    spec.optimizer.beta2 = defaults.optimizer.beta2;
    spec.max_gradient_norm = defaults.max_gradient_norm;
    spec.max_step = defaults.max_step;
    spec.hash_seed = defaults.hash_seed;
    spec.interactions.clear();
    const ModelState state = MakeState(spec, /*with_recent_updates=*/true);
    Tweaks t;
    t.format_version = 1;
    const std::string v1 = HandEncode(state, t);
    ASSERT_LT(v1.size(), EncodeModelState(state).size());
    absl::StatusOr<ModelState> decoded = DecodeModelState(v1);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->spec.optimizer.beta, 1.0f);
    EXPECT_EQ(decoded->spec.optimizer.l1, 0.0f);
    EXPECT_EQ(decoded->spec.optimizer.beta1, 0.9f);
    EXPECT_EQ(decoded->spec.optimizer.beta2, 0.999f);
    EXPECT_EQ(decoded->spec.max_gradient_norm, 0.0f);
    EXPECT_EQ(decoded->spec.max_step, 0.0f);
    ExpectSameState(*decoded, state);
    // Written again, it is in the current format.
    EXPECT_EQ(EncodeModelState(*decoded), HandEncode(state));
    // Every truncation of a format-1 blob is still caught.
    for (size_t n = 0; n < v1.size(); n += 7) {
      EXPECT_TRUE(IsInvalid(DecodeModelState(v1.substr(0, n)).status(),
                            absl::StrCat("offset ", n, ": truncated")))
          << "length " << n;
    }
  }
}

TEST(ModelStateTest, NewSpecFieldsAreValidatedOnDecode) {
  Layout l;
  HandEncode(SmallState(), {}, &l);
  ModelState state = SmallState();
  state.spec.optimizer.beta1 = 1.0f;
  EXPECT_TRUE(IsInvalid(
      DecodeModelState(EncodeModelState(state)).status(),
      absl::StrCat("offset ", l.spec, ": spec.optimizer.beta1: must be in")));
  state = SmallState();
  state.spec.max_gradient_norm = -1.0f;
  EXPECT_TRUE(
      IsInvalid(DecodeModelState(EncodeModelState(state)).status(),
                absl::StrCat("offset ", l.spec, ": spec.max_gradient_norm: ")));
}

TEST(ModelStateTest, RoundTripsEveryFieldBitForBit) {
  struct Case {
    const char* label;
    ModelSpec spec;
    bool recent;
  };
  const Case cases[] = {
      {"softmax adagrad, recent updates",
       MakeSpec(ModelType::kSoftmaxRegression, 5, 3, OptimizerKind::kAdagrad),
       true},
      {"softmax sgd, none",
       MakeSpec(ModelType::kSoftmaxRegression, 2, 10, OptimizerKind::kSgd),
       false},
      {"logistic adagrad, none",
       MakeSpec(ModelType::kLogisticRegression, 7, 0, OptimizerKind::kAdagrad),
       false},
      {"logistic sgd, recent updates",
       MakeSpec(ModelType::kLogisticRegression, 4, 0, OptimizerKind::kSgd),
       true},
      {"linear sgd, recent updates",
       MakeSpec(ModelType::kLinearRegression, 1, 0, OptimizerKind::kSgd), true},
      {"linear adagrad, none",
       MakeSpec(ModelType::kLinearRegression, 3, 0, OptimizerKind::kAdagrad),
       false},
      {"logistic ftrl, recent updates",
       MakeSpec(ModelType::kLogisticRegression, 6, 0, OptimizerKind::kFtrl),
       true},
      {"softmax ftrl, none",
       MakeSpec(ModelType::kSoftmaxRegression, 3, 4, OptimizerKind::kFtrl),
       false},
      {"linear adam, recent updates",
       MakeSpec(ModelType::kLinearRegression, 5, 0, OptimizerKind::kAdam),
       true},
      {"softmax adam, none",
       MakeSpec(ModelType::kSoftmaxRegression, 2, 3, OptimizerKind::kAdam),
       false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    const ModelState state = MakeState(c.spec, c.recent);
    const std::string bytes = EncodeModelState(state);
    absl::StatusOr<ModelState> decoded = DecodeModelState(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    ExpectSameState(*decoded, state);
    // Decoding loses nothing: the state encodes to the same bytes again.
    EXPECT_EQ(EncodeModelState(*decoded), bytes);
  }
}

TEST(ModelStateTest, RoundTripsTimesBeforeTheEpochAndEmptyName) {
  ModelState state = SmallState();
  state.name = "";
  state.created = absl::FromUnixMicros(-1234567890123);
  state.published = absl::UnixEpoch();
  absl::StatusOr<ModelState> decoded =
      DecodeModelState(EncodeModelState(state));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameState(*decoded, state);
}

TEST(ModelStateTest, NegativeZeroKeepsItsSign) {
  ModelState state = SmallState();
  state.params = {-0.0f, 0.0f, -0.0f};
  absl::StatusOr<ModelState> decoded =
      DecodeModelState(EncodeModelState(state));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->params.size(), 3u);
  EXPECT_TRUE(std::signbit(decoded->params[0]));
  EXPECT_FALSE(std::signbit(decoded->params[1]));
  EXPECT_TRUE(std::signbit(decoded->params[2]));
}

TEST(ModelStateTest, EverySingleBitFlipIsRejectedWithItsOffset) {
  Layout l;
  const std::string good = HandEncode(SmallState(), {}, &l);
  ASSERT_EQ(good, EncodeModelState(SmallState()));
  const std::string checksum_error =
      absl::StrCat("offset ", l.checksum, ": checksum mismatch");
  for (size_t bit = 0; bit < good.size() * 8; ++bit) {
    const size_t byte = bit / 8;
    std::string bad = good;
    bad[byte] ^= static_cast<char>(1 << (bit % 8));
    const absl::Status s = DecodeModelState(bad).status();
    SCOPED_TRACE(
        absl::StrCat("byte ", byte, " bit ", bit % 8, ": ", s.ToString()));
    ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    if (byte < 8) {
      EXPECT_EQ(s.message(), "offset 0: not a Lepton model (bad magic)");
    } else if (byte < 12) {
      // Another version this server reads fails on the checksum instead.
      EXPECT_TRUE(IsInvalid(s, "offset 8: format version ") ||
                  s.message() == checksum_error);
    } else if (byte < 20) {
      // A larger payload_size runs past the end; a smaller one moves the
      // checksum onto bytes of the payload.
      EXPECT_TRUE(absl::StrContains(s.message(), ": truncated") ||
                  absl::StrContains(s.message(), ": checksum mismatch"));
    } else {
      // Payload or checksum.
      EXPECT_EQ(s.message(), checksum_error);
    }
  }
}

TEST(ModelStateTest, EveryTruncationIsRejected) {
  const std::string good = EncodeModelState(SmallState());
  ASSERT_TRUE(DecodeModelState(good).ok());
  for (size_t n = 0; n < good.size(); ++n) {
    const absl::Status s = DecodeModelState(good.substr(0, n)).status();
    EXPECT_TRUE(IsInvalid(s, absl::StrCat("offset ", n, ": truncated")))
        << "length " << n;
  }
}

TEST(ModelStateTest, OtherInputIsNotAModel) {
  for (absl::string_view bytes :
       {absl::string_view("x"), absl::string_view("LEPTNWAL\x01\0\0\0", 12),
        absl::string_view("{\"name\": \"a model\"}")}) {
    EXPECT_EQ(
        DecodeModelState(bytes).status(),
        absl::InvalidArgumentError("offset 0: not a Lepton model (bad magic)"))
        << bytes;
  }
}

TEST(ModelStateTest, AnotherFormatVersionSaysSo) {
  Tweaks t;
  t.format_version = 7;
  const std::string bytes = HandEncode(SmallState(), t);
  const absl::Status want = absl::InvalidArgumentError(
      "offset 8: format version 7; this server reads 1 to 3");
  EXPECT_EQ(DecodeModelState(bytes).status(), want);
  // From the first 12 bytes on, whatever a newer version put after them.
  EXPECT_EQ(DecodeModelState(bytes.substr(0, 12)).status(), want);
  t.format_version = 0;
  EXPECT_EQ(DecodeModelState(HandEncode(SmallState(), t)).status(),
            absl::InvalidArgumentError(
                "offset 8: format version 0; this server reads 1 to 3"));
}

TEST(ModelStateTest, FormatOneDecodesWithoutNamedFeatures) {
  // A format-1 blob has no named-features block: seed 0, no interactions.
  ModelState old = SmallState();
  Tweaks t;
  t.format_version = 1;
  const std::string bytes = HandEncode(old, t);
  absl::StatusOr<ModelState> decoded = DecodeModelState(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  old.spec.hash_seed = 0;
  old.spec.interactions.clear();
  // Nor FTRL's and Adam's fields, nor clipping: their defaults.
  const ModelSpec defaults;
  old.spec.optimizer.beta = defaults.optimizer.beta;
  old.spec.optimizer.l1 = defaults.optimizer.l1;
  old.spec.optimizer.beta1 = defaults.optimizer.beta1;
  old.spec.optimizer.beta2 = defaults.optimizer.beta2;
  old.spec.max_gradient_norm = defaults.max_gradient_norm;
  old.spec.max_step = defaults.max_step;
  ExpectSameState(*decoded, old);
  // A fresh detector's state, as a new model of the spec has.
  EXPECT_EQ(decoded->adaptation.detector, old.adaptation.detector);
  // Encoding it again writes format 3.
  EXPECT_EQ(EncodeModelState(*decoded), HandEncode(old));
  EXPECT_EQ(Tweaks().format_version, 3u);
  Tweaks zero;
  zero.format_version = 0;
  EXPECT_TRUE(
      IsInvalid(DecodeModelState(HandEncode(old, zero)).status(),
                "offset 8: format version 0; this server reads 1 to 3"));
}

TEST(ModelStateTest, FormatTwoDecodesWithQuarantineDefaults) {
  // Format 2 has no QUARANTINE settings, no quarantine section and no
  // quarantine fields in the recent updates.
  ModelState old = SmallState();
  old.spec.guardrail.quarantine_capacity = 3;
  old.spec.guardrail.recheck_holdout = 7;
  Tweaks t;
  t.format_version = 2;
  absl::StatusOr<ModelState> decoded = DecodeModelState(HandEncode(old, t));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  const GuardrailConfig defaults;
  EXPECT_EQ(decoded->spec.guardrail.quarantine_capacity,
            defaults.quarantine_capacity);
  EXPECT_EQ(decoded->spec.guardrail.recheck_holdout, defaults.recheck_holdout);
  EXPECT_TRUE(decoded->adaptation.quarantine.empty());
  EXPECT_EQ(decoded->adaptation.counters.holdout_added, 0u);
  old.spec.guardrail.quarantine_capacity = defaults.quarantine_capacity;
  old.spec.guardrail.recheck_holdout = defaults.recheck_holdout;
  ExpectSameState(*decoded, old);
}

TEST(ModelStateTest, AnInvalidInteractionIsRejected) {
  ModelState state = SmallState();
  state.spec.interactions = {"ua", "abc"};
  Layout l;
  const std::string bytes = HandEncode(state, {}, &l);
  EXPECT_EQ(DecodeModelState(bytes).status(),
            absl::InvalidArgumentError(absl::StrCat(
                "offset ", l.spec,
                ": spec.interactions[1]: must be 2 printable ASCII characters "
                "(namespace initials, e.g. \"ua\"), got \"abc\"")));
}

TEST(ModelStateTest, TrailingBytesAfterTheChecksumAreRejected) {
  const std::string good = EncodeModelState(SmallState());
  const absl::Status s = DecodeModelState(good + "junk").status();
  EXPECT_EQ(
      s, absl::InvalidArgumentError(absl::StrCat(
             "offset ", good.size(), ": 4 trailing bytes after the checksum")));
}

TEST(ModelStateTest, ChecksummedTrailingPayloadBytesAreRejected) {
  Tweaks t;
  t.payload_suffix = "abc";
  Layout l;
  const std::string bytes = HandEncode(SmallState(), t, &l);
  EXPECT_EQ(
      DecodeModelState(bytes).status(),
      absl::InvalidArgumentError(absl::StrCat(
          "offset ", l.payload_end, ": 3 trailing bytes in the payload")));
}

TEST(ModelStateTest, ChecksummedParamCountThatDisagreesWithSpecIsRejected) {
  // One float too many, counted and checksummed as if it belonged.
  ModelState state = SmallState();
  state.params.push_back(1.0f);
  Layout l;
  const std::string bytes = HandEncode(state, {}, &l);
  const absl::Status s = DecodeModelState(bytes).status();
  EXPECT_TRUE(IsInvalid(s, absl::StrCat("offset ", l.param_count,
                                        ": param_count is 4; the spec has 3")))
      << s;

  // One too few.
  state.params.resize(2);
  EXPECT_TRUE(IsInvalid(DecodeModelState(HandEncode(state, {}, &l)).status(),
                        absl::StrCat("offset ", l.param_count,
                                     ": param_count is 2; the spec has 3")));
}

TEST(ModelStateTest, ChecksummedArraysThatDisagreeWithOptimizerAreRejected) {
  // An SGD spec with AdaGrad's two arrays (and enough params for them).
  ModelState state = SmallState();
  state.params.resize(6, 0.0f);
  Tweaks t;
  t.arrays = 2;
  Layout l;
  const std::string bytes = HandEncode(state, t, &l);
  EXPECT_TRUE(IsInvalid(DecodeModelState(bytes).status(),
                        absl::StrCat("offset ", l.arrays, ": arrays is 2")));
}

TEST(ModelStateTest, HugeCountsAreBoundedByTheInputNotAllocated) {
  const ModelState state = SmallState();
  {
    Tweaks t;
    t.name_length = 0xFFFFFFF0u;
    const absl::Status s = DecodeModelState(HandEncode(state, t)).status();
    EXPECT_TRUE(IsInvalid(s, "offset 20: truncated")) << s;
  }
  {
    Tweaks t;
    t.recent_count = 0xFFFFFFFFu;
    Layout l;
    const absl::Status s = DecodeModelState(HandEncode(state, t, &l)).status();
    EXPECT_TRUE(IsInvalid(
        s, absl::StrCat("offset ", l.recent_count + 4, ": truncated")))
        << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "4294967295 recent updates"));
  }
  {
    // The largest valid linear model (2^26 + 1 weights, 256 MiB), claimed by
    // a blob holding three of them: the count agrees with the spec, so only
    // the bound by the remaining bytes stops the allocation.
    ModelState big = state;
    big.spec.num_features = kMaxFeatures;
    Tweaks t;
    t.param_count = static_cast<uint64_t>(kMaxFeatures) + 1;
    Layout l;
    const absl::Status s = DecodeModelState(HandEncode(big, t, &l)).status();
    EXPECT_TRUE(IsInvalid(s, absl::StrCat("offset ", l.params, ": truncated")))
        << s;
  }
}

TEST(ModelStateTest, NonFiniteParamsAreRejected) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    ModelState state = SmallState();
    state.params[1] = bad;
    Layout l;
    ASSERT_EQ(EncodeModelState(state), HandEncode(state, {}, &l));
    const absl::Status s = DecodeModelState(EncodeModelState(state)).status();
    EXPECT_TRUE(IsInvalid(s, absl::StrCat("offset ", l.params + 4,
                                          ": parameter 1 is not finite")))
        << s;
  }
}

TEST(ModelStateTest, NonFiniteCountersAreRejected) {
  ModelState state = SmallState();
  state.counters.weight_seen = std::numeric_limits<double>::infinity();
  Layout l;
  HandEncode(state, {}, &l);
  const absl::Status s = DecodeModelState(EncodeModelState(state)).status();
  EXPECT_TRUE(IsInvalid(
      s, absl::StrCat("offset ", l.weight_seen, ": weight_seen is not finite")))
      << s;

  state = SmallState();
  state.counters.correct_weight = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(IsInvalid(DecodeModelState(EncodeModelState(state)).status(),
                        absl::StrCat("offset ", l.weight_seen + 16,
                                     ": correct_weight is not finite")));
}

TEST(ModelStateTest, InvalidSpecIsRejectedWithItsOffsetAndField) {
  Layout l;
  HandEncode(SmallState(), {}, &l);
  {
    ModelState state = SmallState();
    state.spec.type = static_cast<ModelType>(9);
    EXPECT_TRUE(IsInvalid(DecodeModelState(EncodeModelState(state)).status(),
                          absl::StrCat("offset ", l.spec, ": spec.type: ")));
  }
  {
    ModelState state = SmallState();
    state.spec.optimizer.learning_rate = -1.0f;
    EXPECT_TRUE(IsInvalid(
        DecodeModelState(EncodeModelState(state)).status(),
        absl::StrCat("offset ", l.spec, ": spec.optimizer.learning_rate: ")));
  }
  {
    ModelState state = SmallState();
    state.spec.minibatch_size = 0;
    EXPECT_TRUE(
        IsInvalid(DecodeModelState(EncodeModelState(state)).status(),
                  absl::StrCat("offset ", l.spec, ": spec.minibatch_size: ")));
  }
}

TEST(ModelStateTest, VersionZeroIsRejected) {
  ModelState state = SmallState();
  state.version = 0;
  Layout l;
  HandEncode(state, {}, &l);
  EXPECT_EQ(DecodeModelState(EncodeModelState(state)).status(),
            absl::InvalidArgumentError(absl::StrCat(
                "offset ", l.version, ": version must be >= 1, got 0")));
}

TEST(ModelStateTest, HasAccuracyOtherThanZeroOrOneIsRejected) {
  Tweaks t;
  t.has_accuracy = 2;
  const absl::Status s = DecodeModelState(HandEncode(SmallState(), t)).status();
  ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(s.message(), "offset "));
  EXPECT_TRUE(
      absl::StrContains(s.message(), ": has_accuracy must be 0 or 1, got 2"))
      << s;
}

}  // namespace
}  // namespace lepton
