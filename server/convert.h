// Conversions between the wire messages (lepton.v1) and the core's types.
//
// Requests are not copied: the views returned here borrow the arrays of the
// request message, which must outlive them. Wire-only rules are checked here
// (an enum value the proto does not define, a negative epoch count, the
// meaning of 0 as "default"); everything about the data itself (feature
// lengths, ranges, labels, finiteness) is the core's validation, so there is
// one rule book and one set of error messages.
//
// Thread safety: free functions without state.
#ifndef LEPTON_SERVER_CONVERT_H_
#define LEPTON_SERVER_CONVERT_H_

#include <vector>

#include "absl/status/statusor.h"
#include "core/example.h"
#include "core/model.h"
#include "core/model_spec.h"
#include "core/model_version.h"
#include "lepton/v1/lepton.pb.h"

namespace lepton::server {

// The core spec for a CreateModel request: unset fields (0, UNSPECIFIED
// optimizer) take the documented defaults. INVALID_ARGUMENT "spec.type: ..."
// for an enum value the proto does not define; the core validates the rest.
absl::StatusOr<ModelSpec> SpecFromProto(const v1::ModelSpec& proto);
void SpecToProto(const ModelSpec& spec, v1::ModelSpec* proto);
void InfoToProto(const ModelInfo& info, v1::ModelInfo* proto);

FeaturesView FeaturesOf(const v1::Features& proto);
std::vector<FeaturesView> InstancesOf(const v1::PredictRequest& request);
// prediction_id and holdout are passed on as they are; the core resolves
// the id and checks that `features` is empty with it.
std::vector<ExampleView> ExamplesOf(const v1::UpdateRequest& request);
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
