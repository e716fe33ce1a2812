#include "core/adaptation/model_adaptation.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/learning/added_classes.h"
#include "core/learning/example_codec.h"
#include "core/learning/validation.h"
#include "core/util/byte_io.h"
#include "core/util/status_macros.h"

namespace lepton {
namespace {

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("adaptation: ", what));
}

// What a holdout example keeps of `v`: features, label and weight (not its
// served outputs or flags, which only matter to the update that brought it).
Example CopyOf(const ExampleView& v) {
  Example e;
  e.features.dense.assign(v.features.dense.begin(), v.features.dense.end());
  e.features.indices.assign(v.features.indices.begin(),
                            v.features.indices.end());
  e.features.values.assign(v.features.values.begin(), v.features.values.end());
  e.label = v.label;
  e.weight = v.weight;
  return e;
}

bool DecodeFloats(ByteReader& r, std::vector<float>* v) {
  uint64_t n = 0;
  if (!r.U64(&n) || n > r.remaining() / 4) return false;
  v->resize(n);
  return r.Floats(n, v->data());
}

ModelEvent Event(ModelEvent::Kind kind, uint64_t example, std::string detail) {
  ModelEvent e;
  e.kind = kind;
  e.example = example;
  e.detail = std::move(detail);
  return e;
}

void EncodeFloats(absl::Span<const float> v, ByteWriter& w) {
  w.U64(v.size());
  w.Floats(v);
}

// A held update's example keeps its served outputs: its progressive loss,
// when it is learned, is computed from what was served.
Example CopyWithServedOutputs(const ExampleView& v) {
  Example e = CopyOf(v);
  e.served_outputs.assign(v.served_outputs.begin(), v.served_outputs.end());
  return e;
}

// The QUARANTINE section, after the validation metrics (format 3): u64
// holdout_added, u64 quarantined, u64 released, u64 dropped, u64 n, then n x
// (u64 version, u64 holdout_mark, u8 has_learning_rate, f32 learning_rate,
// i32 epochs, u64 m, m x (example, then its served outputs as u64 count +
// floats)).
void EncodeQuarantine(const AdaptationState& s, ByteWriter& w) {
  w.U64(s.counters.holdout_added);
  w.U64(s.counters.quarantined_updates);
  w.U64(s.counters.quarantine_released);
  w.U64(s.counters.quarantine_dropped);
  w.U64(s.quarantine.size());
  for (const QuarantinedUpdate& q : s.quarantine) {
    w.U64(q.version);
    w.U64(q.holdout_mark);
    w.U8(q.options.learning_rate.has_value() ? 1 : 0);
    w.F32(q.options.learning_rate.value_or(0));
    w.I32(q.options.epochs);
    w.U64(q.examples.size());
    for (const Example& e : q.examples) {
      EncodeExample(e.view(), w);
      EncodeFloats(e.served_outputs, w);
    }
  }
}

absl::Status DecodeQuarantine(const ModelSpec& spec, ByteReader& r,
                              AdaptationState* s) {
  uint64_t n = 0;
  if (!r.U64(&s->counters.holdout_added) ||
      !r.U64(&s->counters.quarantined_updates) ||
      !r.U64(&s->counters.quarantine_released) ||
      !r.U64(&s->counters.quarantine_dropped) || !r.U64(&n)) {
    return Invalid("truncated quarantine");
  }
  if (n > static_cast<uint64_t>(spec.guardrail.quarantine_capacity)) {
    return Invalid(absl::StrCat("quarantine count ", n, " is out of range"));
  }
  s->quarantine.resize(n);
  for (QuarantinedUpdate& q : s->quarantine) {
    uint8_t has_rate = 0;
    float rate = 0;
    uint64_t m = 0;
    if (!r.U64(&q.version) || !r.U64(&q.holdout_mark) || !r.U8(&has_rate) ||
        !r.F32(&rate) || !r.I32(&q.options.epochs) || !r.U64(&m) ||
        m > r.remaining() / 20) {
      return Invalid("truncated quarantined update");
    }
    if (has_rate > 1 || (has_rate == 1 && !(std::isfinite(rate) && rate > 0)) ||
        q.options.epochs < 1 || q.options.epochs > kMaxEpochs ||
        q.holdout_mark > s->counters.holdout_added) {
      return Invalid("quarantined update options out of range");
    }
    if (has_rate == 1) q.options.learning_rate = rate;
    q.examples.resize(m);
    for (Example& e : q.examples) {
      if (DecodeExample(r, &e).has_value() ||
          !DecodeFloats(r, &e.served_outputs)) {
        return Invalid("truncated quarantined example");
      }
      if (!e.served_outputs.empty() &&
          e.served_outputs.size() != static_cast<size_t>(spec.num_outputs())) {
        return Invalid(
            "a quarantined example's served outputs do not match "
            "the spec");
      }
    }
    if (absl::Status st = ValidateExamples(spec, Views(q.examples)); !st.ok()) {
      return Invalid(absl::StrCat("quarantined ", st.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::shared_ptr<const HoldoutSet> HoldoutSet::With(
    absl::Span<const ExampleView> added, int64_t capacity) const {
  auto next = std::make_shared<HoldoutSet>(*this);
  if (!added.empty() && capacity > 0) {
    auto batch = std::make_shared<std::vector<Example>>();
    // Only the newest `capacity` of a large batch can stay.
    const size_t first = added.size() > static_cast<size_t>(capacity)
                             ? added.size() - capacity
                             : 0;
    batch->reserve(added.size() - first);
    int64_t bytes = 0;
    for (size_t i = first; i < added.size(); ++i) {
      batch->push_back(CopyOf(added[i]));
      bytes += OwnedBytes(batch->back().view());
    }
    next->size_ += static_cast<int64_t>(batch->size());
    next->bytes_ += bytes;
    next->batches_.push_back({std::move(batch), bytes});
  }
  while (next->size_ > capacity) {
    const Batch& front = next->batches_.front();
    const int64_t in_first =
        static_cast<int64_t>(front.examples->size() - next->skip_);
    const int64_t drop = std::min(in_first, next->size_ - capacity);
    next->skip_ += drop;
    next->size_ -= drop;
    if (next->skip_ == front.examples->size()) {
      next->bytes_ -= front.bytes;
      next->batches_.erase(next->batches_.begin());
      next->skip_ = 0;
    }
  }
  return next;
}

std::vector<ExampleView> HoldoutSet::Views() const {
  std::vector<ExampleView> views;
  views.reserve(size_);
  for (size_t b = 0; b < batches_.size(); ++b) {
    const std::vector<Example>& batch = *batches_[b].examples;
    for (size_t i = b == 0 ? skip_ : 0; i < batch.size(); ++i) {
      views.push_back(batch[i].view());
    }
  }
  return views;
}

void EncodeAdaptationState(const AdaptationState& s, std::string* out) {
  ByteWriter w(out);
  w.Bytes(s.detector);
  const AdaptationCounters& c = s.counters;
  w.I32(static_cast<int32_t>(c.drift_state));
  w.U64(c.drifts);
  w.U64(c.change_example);
  w.F64(c.mean_loss_before);
  w.I64(c.boost_remaining);
  w.U8(s.has_challenger ? 1 : 0);
  if (s.has_challenger) {
    EncodeFloats(s.challenger_params, w);
    w.U64(s.challenger_steps);
    w.U64(s.challenger.started_at);
    w.I64(s.challenger.examples);
    EncodeFloats(s.challenger.champion_window, w);
    EncodeFloats(s.challenger.challenger_window, w);
    w.F64(s.challenger.champion_sum);
    w.F64(s.challenger.challenger_sum);
  }
  w.U64(c.promotions);
  w.U64(s.holdout.size());
  for (const Example& e : s.holdout) EncodeExample(e.view(), w);
  w.F64(c.validation_loss);
  w.F64(c.validation_accuracy);
  EncodeQuarantine(s, w);
}

absl::StatusOr<AdaptationState> DecodeAdaptationState(const ModelSpec& spec,
                                                      absl::string_view bytes) {
  AdaptationState s;
  AdaptationCounters& c = s.counters;
  ByteReader r(bytes);
  absl::string_view detector;
  int32_t drift_state = 0;
  uint8_t has_challenger = 0;
  if (!r.Bytes(&detector) || !r.I32(&drift_state) || !r.U64(&c.drifts) ||
      !r.U64(&c.change_example) || !r.F64(&c.mean_loss_before) ||
      !r.I64(&c.boost_remaining) || !r.U8(&has_challenger)) {
    return Invalid("truncated drift state");
  }
  s.detector = std::string(detector);
  if (drift_state < 0 || drift_state > 2 || has_challenger > 1 ||
      c.boost_remaining < 0 || !std::isfinite(c.mean_loss_before)) {
    return Invalid("drift state out of range");
  }
  c.drift_state = static_cast<DriftState>(drift_state);
  const bool want_detector =
      spec.drift.detector.kind != DriftDetectorKind::kNone;
  if (want_detector != !s.detector.empty()) {
    return Invalid("the detector state does not match the spec");
  }
  if (want_detector) {
    absl::StatusOr<std::unique_ptr<DriftDetector>> d =
        DriftDetector::Decode(spec.drift.detector, s.detector);
    if (!d.ok()) return Invalid(d.status().message());
  }
  s.has_challenger = has_challenger == 1;
  if (s.has_challenger) {
    if (!DecodeFloats(r, &s.challenger_params) || !r.U64(&s.challenger_steps) ||
        !r.U64(&s.challenger.started_at) || !r.I64(&s.challenger.examples) ||
        !DecodeFloats(r, &s.challenger.champion_window) ||
        !DecodeFloats(r, &s.challenger.challenger_window) ||
        !r.F64(&s.challenger.champion_sum) ||
        !r.F64(&s.challenger.challenger_sum)) {
      return Invalid("truncated challenger");
    }
    const uint64_t want = static_cast<uint64_t>(ParamArrays(spec)) *
                          static_cast<uint64_t>(spec.num_features + 1) *
                          static_cast<uint64_t>(spec.num_outputs());
    const size_t window = static_cast<size_t>(spec.drift.challenger_window);
    if (s.challenger_params.size() != want ||
        s.challenger.champion_window.size() != window ||
        s.challenger.challenger_window.size() != window ||
        s.challenger.examples < 0) {
      return Invalid("the challenger does not match the spec");
    }
    for (float p : s.challenger_params) {
      if (!std::isfinite(p))
        return Invalid("a challenger weight is not finite");
    }
  }
  uint64_t holdout = 0;
  if (!r.U64(&c.promotions) || !r.U64(&holdout)) {
    return Invalid("truncated holdout set");
  }
  if (holdout > static_cast<uint64_t>(spec.guardrail.holdout_capacity) ||
      holdout > r.remaining() / 20) {
    return Invalid(absl::StrCat("holdout count ", holdout, " is out of range"));
  }
  s.holdout.resize(holdout);
  for (Example& e : s.holdout) {
    if (DecodeExample(r, &e).has_value()) {
      return Invalid("truncated holdout example");
    }
  }
  if (!r.F64(&c.validation_loss) || !r.F64(&c.validation_accuracy)) {
    return Invalid("truncated validation metrics");
  }
  // Format 2 encodings end here; format 3 ones have the quarantine section.
  if (r.remaining() != 0) {
    LEPTON_RETURN_IF_ERROR(DecodeQuarantine(spec, r, &s));
  }
  if (r.remaining() != 0) return Invalid("trailing bytes");
  if (absl::Status st = ValidateExamples(spec, Views(s.holdout));
      !st.ok() && !s.holdout.empty()) {
    return Invalid(absl::StrCat("holdout ", st.message()));
  }
  return s;
}

AdaptationState CaptureAdaptation(const AdaptationSnapshot& snap) {
  AdaptationState s;
  if (snap.detector != nullptr) snap.detector->Encode(&s.detector);
  s.counters = snap.counters;
  if (const ChallengerSnapshot* c = snap.challenger.get(); c != nullptr) {
    s.has_challenger = true;
    s.challenger_params = c->params->params();
    s.challenger_steps = c->params->counters().steps;
    s.challenger = c->stats;
  }
  for (const ExampleView& v : snap.holdout->Views()) {
    s.holdout.push_back(CopyOf(v));
  }
  for (const std::shared_ptr<const QuarantinedUpdate>& q : snap.quarantine) {
    s.quarantine.push_back(*q);
  }
  return s;
}

namespace {

void PadHeldExamples(int32_t num_outputs, std::vector<Example>* examples) {
  for (Example& e : *examples) {
    e.served_outputs = PadServedOutputs(e.served_outputs, num_outputs);
  }
}

}  // namespace

AdaptationState ClassesAddedState(AdaptationState state, int32_t num_outputs) {
  const AdaptationState fresh;
  state.has_challenger = false;
  state.challenger_params = fresh.challenger_params;
  state.challenger_steps = fresh.challenger_steps;
  state.challenger = fresh.challenger;
  for (QuarantinedUpdate& q : state.quarantine) {
    PadHeldExamples(num_outputs, &q.examples);
  }
  return state;
}

ModelAdaptation::ModelAdaptation(std::shared_ptr<const ModelSpec> spec)
    : spec_(std::move(spec)),
      detector_(DriftDetector::Create(spec_->drift.detector)),
      holdout_(std::make_shared<const HoldoutSet>()) {}

absl::Status ModelAdaptation::Load(const AdaptationState& s) {
  if (!s.detector.empty()) {
    absl::StatusOr<std::unique_ptr<DriftDetector>> d =
        DriftDetector::Decode(spec_->drift.detector, s.detector);
    if (!d.ok()) return d.status();
    detector_ = *std::move(d);
  }
  counters_ = s.counters;
  challenger_.reset();
  if (s.has_challenger) {
    StartChallenger(s.challenger.started_at);
    Challenger& c = *challenger_;
    c.learner->Load(s.challenger_params);
    c.steps = s.challenger_steps;
    c.stats = s.challenger;
  }
  promotion_due_ = false;
  holdout_ = HoldoutSet().With(Views(s.holdout),
                               static_cast<int64_t>(s.holdout.size()));
  quarantine_.clear();
  for (const QuarantinedUpdate& q : s.quarantine) {
    quarantine_.push_back(std::make_shared<const QuarantinedUpdate>(q));
  }
  return absl::OkStatus();
}

void ModelAdaptation::Reset(const AdaptationSnapshot& snap) {
  detector_ = snap.detector != nullptr ? snap.detector->Clone() : nullptr;
  counters_ = snap.counters;
  promotion_due_ = false;
  holdout_ = snap.holdout;
  quarantine_ = snap.quarantine;
  const ChallengerSnapshot* c = snap.challenger.get();
  if (c == nullptr) {
    challenger_.reset();
    return;
  }
  if (challenger_ != nullptr &&
      challenger_->learner->published() == c->params->stored_params().owner()) {
    // The same learner, whose last commit the snapshot is: only the rows
    // changed since go back.
    challenger_->learner->Restore();
  } else {
    StartChallenger(c->stats.started_at);
    challenger_->learner->Load(c->params->params());
  }
  Challenger& w = *challenger_;
  w.published = c->params;
  w.steps = c->params->counters().steps;
  w.stats = c->stats;
}

std::shared_ptr<const AdaptationSnapshot> ModelAdaptation::Commit(
    uint64_t version) {
  auto snap = std::make_shared<AdaptationSnapshot>();
  if (detector_ != nullptr) snap->detector = detector_->Clone();
  snap->counters = counters_;
  if (challenger_ != nullptr) {
    Challenger& c = *challenger_;
    ModelCounters counters;
    counters.steps = c.steps;
    c.published = std::make_shared<const ModelVersion>(
        c.learner->Commit(version), spec_, counters, absl::UnixEpoch());
    // Nothing waits for a challenger's version to be durable: read at once.
    c.published->stored_params().Show();
    auto cs = std::make_shared<ChallengerSnapshot>();
    cs->params = c.published;
    cs->stats = c.stats;
    snap->challenger = std::move(cs);
  }
  snap->holdout = holdout_;
  snap->quarantine = quarantine_;
  return snap;
}

float ModelAdaptation::learning_rate_scale() const {
  return counters_.boost_remaining > 0 ? spec_->drift.boost_factor : 1.0f;
}

void ModelAdaptation::StartChallenger(uint64_t at) {
  auto c = std::make_unique<Challenger>();
  c->learner = std::make_unique<Learner>(*spec_);
  c->stats.started_at = at;
  const size_t window = static_cast<size_t>(spec_->drift.challenger_window);
  c->stats.champion_window.assign(window, 0.0f);
  c->stats.challenger_window.assign(window, 0.0f);
  challenger_ = std::move(c);
}

bool ModelAdaptation::TrainChallenger(absl::Span<const ExampleView> examples,
                                      absl::Span<const float> losses,
                                      int32_t epochs, float learning_rate) {
  if (examples.empty()) return true;
  Challenger& c = *challenger_;
  BatchMetrics metrics;
  if (!c.learner->Learn(examples, epochs, learning_rate, &c.steps, &metrics)) {
    return false;
  }
  const absl::Span<const float> own = c.learner->example_losses();
  ChallengerStats& w = c.stats;
  const size_t window = w.champion_window.size();
  for (size_t i = 0; i < examples.size(); ++i) {
    if (!(examples[i].weight > 0)) continue;
    const size_t slot = static_cast<size_t>(w.examples) % window;
    w.champion_sum += losses[i] - w.champion_window[slot];
    w.challenger_sum += own[i] - w.challenger_window[slot];
    w.champion_window[slot] = losses[i];
    w.challenger_window[slot] = own[i];
    ++w.examples;
  }
  return true;
}

void ModelAdaptation::Observe(absl::Span<const ExampleView> trained,
                              absl::Span<const float> losses,
                              uint64_t examples_before, int32_t epochs,
                              float learning_rate,
                              std::vector<ModelEvent>* events) {
  using Kind = ModelEvent::Kind;
  const int64_t n = static_cast<int64_t>(trained.size());
  // The challenger learns what follows the newest change point of this
  // batch; one that was already running learns all of it.
  int64_t challenger_from = challenger_ != nullptr ? 0 : n;
  // This update learned at the boosted rate (if any); a drift below starts
  // a new boost for the examples after it.
  counters_.boost_remaining =
      std::max<int64_t>(0, counters_.boost_remaining - n);
  if (detector_ != nullptr) {
    for (int64_t i = 0; i < n; ++i) {
      if (!(trained[i].weight > 0)) continue;
      const DriftState before = counters_.drift_state;
      counters_.drift_state = detector_->Add(losses[i]);
      const uint64_t at = examples_before + i + 1;
      if (counters_.drift_state == DriftState::kWarning &&
          before == DriftState::kStable) {
        events->push_back(Event(Kind::kDriftWarning, at, ""));
      }
      if (counters_.drift_state != DriftState::kDrift) continue;
      ++counters_.drifts;
      counters_.change_example = at;
      const std::optional<DriftChange> change = detector_->last_change();
      counters_.mean_loss_before = change.has_value() ? change->mean_before : 0;
      events->push_back(
          Event(Kind::kDrift, at,
                absl::StrFormat("mean loss %.6g before the change, %.6g after",
                                counters_.mean_loss_before,
                                change.has_value() ? change->mean_after : 0)));
      switch (spec_->drift.policy) {
        case DriftPolicy::kBoost:
          counters_.boost_remaining = spec_->drift.boost_examples;
          events->push_back(Event(
              Kind::kBoostStarted, at,
              absl::StrCat("learning rate x", spec_->drift.boost_factor,
                           " for ", counters_.boost_remaining, " examples")));
          break;
        case DriftPolicy::kChallenger:
          StartChallenger(at);
          challenger_from = i + 1;
          promotion_due_ = false;
          events->push_back(Event(Kind::kChallengerStarted, at, ""));
          break;
        default:
          break;
      }
    }
  }
  if (challenger_ == nullptr || challenger_from >= n) return;
  const uint64_t end = examples_before + n;
  if (!TrainChallenger(trained.subspan(challenger_from),
                       losses.subspan(challenger_from), epochs,
                       learning_rate)) {
    DropChallenger();
    events->push_back(Event(Kind::kChallengerDropped, end,
                            "its weights overflowed (non-finite)"));
    return;
  }
  const ChallengerStats& c = challenger_->stats;
  const int64_t window = static_cast<int64_t>(c.champion_window.size());
  if (c.examples >= window && c.challenger_sum < c.champion_sum) {
    promotion_due_ = true;
    events->push_back(
        Event(Kind::kChallengerPromoted, end,
              absl::StrFormat("mean loss over the last %d examples: challenger "
                              "%.6g, current model %.6g",
                              window, c.challenger_sum / window,
                              c.champion_sum / window)));
  } else if (c.examples >= spec_->drift.challenger_max_examples) {
    events->push_back(
        Event(Kind::kChallengerDropped, end,
              absl::StrCat("not better after ", c.examples, " examples")));
    DropChallenger();
  }
}

std::vector<float> ModelAdaptation::challenger_params() const {
  return challenger_->learner->params();
}

void ModelAdaptation::Promoted() {
  promotion_due_ = false;
  ++counters_.promotions;
  DropChallenger();
}

void ModelAdaptation::AddHoldout(absl::Span<const ExampleView> examples) {
  if (examples.empty()) return;
  holdout_ = holdout_->With(examples, spec_->guardrail.holdout_capacity);
  counters_.holdout_added += examples.size();
}

void ModelAdaptation::Quarantine(uint64_t version,
                                 absl::Span<const ExampleView> examples,
                                 const UpdateOptions& options,
                                 uint64_t example_count,
                                 std::vector<ModelEvent>* events) {
  auto q = std::make_shared<QuarantinedUpdate>();
  q->version = version;
  q->holdout_mark = counters_.holdout_added;
  q->options = options;
  q->examples.reserve(examples.size());
  for (const ExampleView& v : examples) {
    q->examples.push_back(CopyWithServedOutputs(v));
  }
  quarantine_.push_back(std::move(q));
  ++counters_.quarantined_updates;
  while (quarantine_.size() >
         static_cast<size_t>(spec_->guardrail.quarantine_capacity)) {
    events->push_back(Event(
        ModelEvent::Kind::kQuarantineDropped, example_count,
        absl::StrCat("the update of version ", quarantine_.front()->version,
                     " was displaced unchecked: more than ",
                     spec_->guardrail.quarantine_capacity, " held back")));
    quarantine_.erase(quarantine_.begin());
    ++counters_.quarantine_dropped;
  }
}

void ModelAdaptation::EndQuarantine(absl::Span<const size_t> released,
                                    absl::Span<const size_t> dropped) {
  QuarantineList kept;
  for (size_t i = 0; i < quarantine_.size(); ++i) {
    if (std::find(released.begin(), released.end(), i) == released.end() &&
        std::find(dropped.begin(), dropped.end(), i) == dropped.end()) {
      kept.push_back(quarantine_[i]);
    }
  }
  quarantine_ = std::move(kept);
  counters_.quarantine_released += released.size();
  counters_.quarantine_dropped += dropped.size();
}

void ModelAdaptation::SetValidation(double loss, double accuracy) {
  counters_.validation_loss = loss;
  counters_.validation_accuracy = accuracy;
}

void ModelAdaptation::ClassesAdded(std::shared_ptr<const ModelSpec> spec,
                                   uint64_t at,
                                   std::vector<ModelEvent>* events) {
  spec_ = std::move(spec);
  promotion_due_ = false;
  for (std::shared_ptr<const QuarantinedUpdate>& held : quarantine_) {
    auto padded = std::make_shared<QuarantinedUpdate>(*held);
    PadHeldExamples(spec_->num_outputs(), &padded->examples);
    held = std::move(padded);
  }
  if (challenger_ == nullptr) return;
  events->push_back(
      Event(ModelEvent::Kind::kChallengerDropped, at,
            absl::StrCat("classes were added (num_classes now ",
                         spec_->num_classes, "); it learned fewer")));
  DropChallenger();
}

}  // namespace lepton
