// Conversions of the adaptation part of the wire contract (drift detection,
// guardrail, model events) between lepton.v1 and the core's types. Unset
// wire fields (0, UNSPECIFIED, absent optionals) take the core's defaults
// (adaptation_config.h); the core validates the values.
//
// Thread safety: free functions without state.
#ifndef LEPTON_SERVER_CONVERT_ADAPTATION_H_
#define LEPTON_SERVER_CONVERT_ADAPTATION_H_

#include "absl/status/status.h"
#include "core/store/store_types.h"
#include "lepton/v1/lepton.pb.h"

namespace lepton::server {

// Sets spec->drift and spec->guardrail from `proto`; INVALID_ARGUMENT for an
// enum value the proto does not define.
absl::Status AdaptationFromProto(const v1::ModelSpec& proto, ModelSpec* spec);
void AdaptationToProto(const ModelSpec& spec, v1::ModelSpec* proto);
void AdaptationInfoToProto(const ModelInfo& info, v1::ModelInfo* proto);
void EventToProto(absl::string_view model, const ModelEvent& event,
                  v1::ModelEvent* proto);

}  // namespace lepton::server

#endif  // LEPTON_SERVER_CONVERT_ADAPTATION_H_
