// Conversions between the wire messages (lepton.v1) and the core's types.
//
// Requests are not copied: the views returned here borrow the arrays of the
// request message, which must outlive them. The exception is an instance with
// named features (Features.namespaces): the server hashes it into sparse
// indices/values (core/feature_hashing.h) held in a HashedFeatures that the
// caller keeps alive, with the request, for the duration of the core call.
// Requests without namespaces take the borrowing path only. Wire-only rules are
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
// Named features. HashedFeatures owns the arrays of hashed instances (a deque:
// those already lent out to views never move).
using HashedFeatures = std::deque<Features>;
// Entries (before collisions are summed) that hashing may generate for one
// request, all instances together: with interactions a small message can
// expand quadratically, and this bounds the memory and time it may take.
inline constexpr int64_t kMaxHashedEntriesPerRequest = int64_t{1} << 24;

// Whether any instance (example) carries namespaces, i.e. whether the
// request needs the model's spec and HashNamed*().
bool HasNamespaces(const v1::PredictRequest& request);
bool HasNamespaces(const v1::UpdateRequest& request);

// For every instance (example) with namespaces: hashes them with its explicit
// indices/values under `spec` (the model's) into a Features appended to
// *hashed, and points (*views)[i] (from InstancesOf / ExamplesOf) at it.
// INVALID_ARGUMENT naming the field ("instances[2].namespaces: cannot be
// combined with dense", "examples[3].features.namespaces[1].features[0].name:
// must not be empty"); RESOURCE_EXHAUSTED ("instances: ...") past
// kMaxHashedEntriesPerRequest.
absl::Status HashNamedInstances(const ModelSpec& spec,
                                const v1::PredictRequest& request,
                                std::vector<FeaturesView>* views,
                                HashedFeatures* hashed);
absl::Status HashNamedExamples(const ModelSpec& spec,
                               const v1::UpdateRequest& request,
                               std::vector<ExampleView>* views,
                               HashedFeatures* hashed);

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
