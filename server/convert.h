// Conversions between the wire messages (lepton.v1) and the core's types.
//
// Requests are not copied: the views returned here borrow the arrays and
// strings of the request message, which must outlive them; the views of named
// features (Features.namespaces) are held in a NamedFeatureViews that the
// caller keeps alive with the request for the duration of the core call (the
// core hashes them, core/learning/feature_hashing.h). Wire-only rules are
// checked here (an enum value the proto does not define, a negative epoch
// count, the meaning of 0 as "default"); everything about the data itself
// (feature lengths, ranges, labels, finiteness) is the core's validation, so
// there is one rule book and one set of error messages.
//
// Thread safety: free functions without state.
#ifndef LEPTON_SERVER_CONVERT_H_
#define LEPTON_SERVER_CONVERT_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/store/store_types.h"
#include "lepton/v1/lepton.pb.h"

namespace lepton::server {

// The core spec for a CreateModel request: unset fields (0, UNSPECIFIED
// optimizer) take the documented defaults. INVALID_ARGUMENT "spec.type: ..."
// for an enum value the proto does not define; the core validates the rest.
absl::StatusOr<ModelSpec> SpecFromProto(const v1::ModelSpec& proto);
void SpecToProto(const ModelSpec& spec, v1::ModelSpec* proto);
void InfoToProto(const ModelInfo& info, v1::ModelInfo* proto);

// The views of a request's named features. A deque: those already lent out
// never move.
class NamedFeatureViews {
 public:
  // Views of `proto`'s namespaces (empty if it has none).
  absl::Span<const NamespaceView> Add(const v1::Features& proto);

 private:
  std::deque<std::vector<NamedFeatureView>> features_;
  std::deque<std::vector<NamespaceView>> namespaces_;
};

FeaturesView FeaturesOf(const v1::Features& proto, NamedFeatureViews* named);
std::vector<FeaturesView> InstancesOf(const v1::PredictRequest& request,
                                      NamedFeatureViews* named);
// prediction_id and holdout are passed on as they are; the core resolves
// the id and checks that `features` is empty with it.
std::vector<ExampleView> ExamplesOf(const v1::UpdateRequest& request,
                                    NamedFeatureViews* named);

// return_prediction_ids becomes PredictOptions::remember.
PredictOptions PredictOptionsOf(const v1::PredictRequest& request);
// learning_rate 0 = the model's own, epochs 0 = 1; other values go to the
// core as they are (it rejects them naming `learning_rate` or `epochs`).
UpdateOptions UpdateOptionsOf(const v1::UpdateRequest& request);

// Softmax (more than one output) fills `probabilities`; `value` is then the
// probability of the predicted label.
void PredictionsToProto(const Predictions& predictions,
                        v1::PredictResponse* proto);
void UpdateResultToProto(const UpdateResult& result, v1::UpdateResponse* proto);

}  // namespace lepton::server

#endif  // LEPTON_SERVER_CONVERT_H_
