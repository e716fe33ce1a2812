#include "server/convert_adaptation.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace lepton::server {
namespace {

absl::Status UnknownValue(absl::string_view field, int value) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": unknown value ", value));
}

// Sets *core to `wire` unless the wire holds 0 (unset).
template <typename Core, typename Wire>
void SetUnlessZero(Wire wire, Core* core) {
  if (wire != 0) *core = static_cast<Core>(wire);
}

}  // namespace

absl::Status AdaptationFromProto(const v1::ModelSpec& proto, ModelSpec* spec) {
  const v1::DriftConfig& d = proto.drift();
  DriftDetectorConfig& detector = spec->drift.detector;
  switch (d.detector()) {
    case v1::DRIFT_DETECTOR_KIND_UNSPECIFIED:
      break;
    case v1::ADWIN:
      detector.kind = DriftDetectorKind::kAdwin;
      break;
    case v1::PAGE_HINKLEY:
      detector.kind = DriftDetectorKind::kPageHinkley;
      break;
    case v1::NO_DRIFT_DETECTOR:
      detector.kind = DriftDetectorKind::kNone;
      break;
    default:
      return UnknownValue("spec.drift.detector", d.detector());
  }
  if (!v1::DriftPolicy_IsValid(d.policy())) {
    return UnknownValue("spec.drift.policy", d.policy());
  }
  SetUnlessZero(d.adwin_delta(), &detector.adwin_delta);
  SetUnlessZero(d.adwin_warning_delta(), &detector.adwin_warning_delta);
  SetUnlessZero(d.adwin_clock(), &detector.adwin_clock);
  SetUnlessZero(d.adwin_max_buckets(), &detector.adwin_max_buckets);
  SetUnlessZero(d.ph_delta(), &detector.ph_delta);
  SetUnlessZero(d.ph_lambda(), &detector.ph_lambda);
  SetUnlessZero(d.ph_warning_lambda(), &detector.ph_warning_lambda);
  SetUnlessZero(d.ph_alpha(), &detector.ph_alpha);
  if (d.has_min_observations()) {
    detector.min_observations = d.min_observations();
  }
  SetUnlessZero(d.policy(), &spec->drift.policy);
  SetUnlessZero(d.boost_factor(), &spec->drift.boost_factor);
  SetUnlessZero(d.boost_examples(), &spec->drift.boost_examples);
  SetUnlessZero(d.challenger_window(), &spec->drift.challenger_window);
  SetUnlessZero(d.challenger_max_examples(),
                &spec->drift.challenger_max_examples);

  const v1::GuardrailConfig& g = proto.guardrail();
  GuardrailConfig& guardrail = spec->guardrail;
  switch (g.policy()) {
    case v1::GUARDRAIL_POLICY_UNSPECIFIED:
    case v1::GUARDRAIL_OFF:
      guardrail.policy = GuardrailPolicy::kOff;
      break;
    case v1::GUARDRAIL_REJECT:
      guardrail.policy = GuardrailPolicy::kReject;
      break;
    case v1::GUARDRAIL_QUARANTINE:
      guardrail.policy = GuardrailPolicy::kQuarantine;
      break;
    default:
      return UnknownValue("spec.guardrail.policy", g.policy());
  }
  if (g.has_holdout_capacity()) {
    guardrail.holdout_capacity = g.holdout_capacity();
  }
  if (g.has_tolerance()) guardrail.tolerance = g.tolerance();
  SetUnlessZero(g.min_holdout(), &guardrail.min_holdout);
  if (g.has_quarantine_capacity()) {
    guardrail.quarantine_capacity = g.quarantine_capacity();
  }
  if (g.has_recheck_holdout()) guardrail.recheck_holdout = g.recheck_holdout();
  return absl::OkStatus();
}

void AdaptationToProto(const ModelSpec& spec, v1::ModelSpec* proto) {
  v1::DriftConfig* d = proto->mutable_drift();
  const DriftDetectorConfig& detector = spec.drift.detector;
  switch (detector.kind) {
    case DriftDetectorKind::kAdwin:
      d->set_detector(v1::ADWIN);
      break;
    case DriftDetectorKind::kPageHinkley:
      d->set_detector(v1::PAGE_HINKLEY);
      break;
    default:
      d->set_detector(v1::NO_DRIFT_DETECTOR);
      break;
  }
  d->set_adwin_delta(detector.adwin_delta);
  d->set_adwin_warning_delta(detector.adwin_warning_delta);
  d->set_adwin_clock(detector.adwin_clock);
  d->set_adwin_max_buckets(detector.adwin_max_buckets);
  d->set_ph_delta(detector.ph_delta);
  d->set_ph_lambda(detector.ph_lambda);
  d->set_ph_warning_lambda(detector.ph_warning_lambda);
  d->set_ph_alpha(detector.ph_alpha);
  d->set_min_observations(detector.min_observations);
  d->set_policy(static_cast<v1::DriftPolicy>(spec.drift.policy));
  d->set_boost_factor(spec.drift.boost_factor);
  d->set_boost_examples(spec.drift.boost_examples);
  d->set_challenger_window(spec.drift.challenger_window);
  d->set_challenger_max_examples(spec.drift.challenger_max_examples);
  v1::GuardrailConfig* g = proto->mutable_guardrail();
  switch (spec.guardrail.policy) {
    case GuardrailPolicy::kReject:
      g->set_policy(v1::GUARDRAIL_REJECT);
      break;
    case GuardrailPolicy::kQuarantine:
      g->set_policy(v1::GUARDRAIL_QUARANTINE);
      break;
    default:
      g->set_policy(v1::GUARDRAIL_OFF);
      break;
  }
  g->set_holdout_capacity(spec.guardrail.holdout_capacity);
  g->set_tolerance(spec.guardrail.tolerance);
  g->set_min_holdout(spec.guardrail.min_holdout);
  g->set_quarantine_capacity(spec.guardrail.quarantine_capacity);
  g->set_recheck_holdout(spec.guardrail.recheck_holdout);
}

void AdaptationInfoToProto(const ModelInfo& info, v1::ModelInfo* proto) {
  const ModelInfo::Adaptation& a = info.adaptation;
  v1::DriftStatus* d = proto->mutable_drift();
  switch (a.drift_state) {
    case DriftState::kStable:
      d->set_state(v1::STABLE);
      break;
    case DriftState::kWarning:
      d->set_state(v1::WARNING);
      break;
    case DriftState::kDrift:
      d->set_state(v1::DRIFT);
      break;
  }
  d->set_drifts(a.drifts);
  d->set_change_example(a.change_example);
  d->set_mean_loss_before(a.mean_loss_before);
  d->set_mean_loss_after(a.mean_loss_after);
  d->set_boost_remaining(a.boost_remaining);
  d->set_challenger_active(a.challenger_active);
  d->set_challenger_started_at(a.challenger_started_at);
  d->set_challenger_examples(a.challenger_examples);
  d->set_promotions(a.promotions);
  v1::ValidationStatus* v = proto->mutable_validation();
  v->set_holdout_examples(a.holdout_examples);
  v->set_validation_loss(a.validation_loss);
  v->set_validation_accuracy(a.validation_accuracy);
  v->set_refused_updates(a.refused_updates);
  v->set_quarantine_held(a.quarantine_held);
  v->set_quarantined_updates(a.quarantined_updates);
  v->set_quarantine_released(a.quarantine_released);
  v->set_quarantine_dropped(a.quarantine_dropped);
}

void EventToProto(absl::string_view model, const ModelEvent& event,
                  v1::ModelEvent* proto) {
  v1::ModelEventKind kind = v1::MODEL_EVENT_KIND_UNSPECIFIED;
  switch (event.kind) {
    case ModelEvent::Kind::kVersion:
      kind = v1::VERSION_PUBLISHED;
      break;
    case ModelEvent::Kind::kDriftWarning:
      kind = v1::DRIFT_WARNING;
      break;
    case ModelEvent::Kind::kDrift:
      kind = v1::DRIFT_DETECTED;
      break;
    case ModelEvent::Kind::kBoostStarted:
      kind = v1::BOOST_STARTED;
      break;
    case ModelEvent::Kind::kChallengerStarted:
      kind = v1::CHALLENGER_STARTED;
      break;
    case ModelEvent::Kind::kChallengerPromoted:
      kind = v1::CHALLENGER_PROMOTED;
      break;
    case ModelEvent::Kind::kChallengerDropped:
      kind = v1::CHALLENGER_DROPPED;
      break;
    case ModelEvent::Kind::kUpdateRefused:
      kind = v1::UPDATE_REFUSED;
      break;
    case ModelEvent::Kind::kUpdateQuarantined:
      kind = v1::UPDATE_QUARANTINED;
      break;
    case ModelEvent::Kind::kQuarantineReleased:
      kind = v1::QUARANTINE_RELEASED;
      break;
    case ModelEvent::Kind::kQuarantineDropped:
      kind = v1::QUARANTINE_DROPPED;
      break;
    case ModelEvent::Kind::kDeleted:
      kind = v1::MODEL_DELETED;
      break;
    case ModelEvent::Kind::kClassesAdded:
      kind = v1::CLASSES_ADDED;
      break;
  }
  proto->set_kind(kind);
  proto->set_model(std::string(model));
  proto->set_version(event.version);
  proto->set_example(event.example);
  proto->set_detail(event.detail);
  const int64_t seconds = absl::ToUnixSeconds(event.time);
  proto->mutable_time()->set_seconds(seconds);
  proto->mutable_time()->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(event.time - absl::FromUnixSeconds(seconds))));
}

}  // namespace lepton::server
