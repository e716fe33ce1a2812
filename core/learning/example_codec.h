// The one binary encoding of an example's features, label and weight, shared
// by the update log (core/storage/update_log_format.h), which adds each
// example's served outputs and holdout flag, and the model state's holdout
// and quarantine sections (core/adaptation/model_adaptation.cc):
//
//   f32 label | f32 weight | u32 d | d x f32 dense
//   | u32 s | s x u32 indices | s x f32 values          (little-endian)
//
// Only the framing is checked when decoding: whether the features suit a
// model is its validation's call (validation.h).
//
// Thread safety: pure functions.
#ifndef LEPTON_CORE_LEARNING_EXAMPLE_CODEC_H_
#define LEPTON_CORE_LEARNING_EXAMPLE_CODEC_H_

#include <optional>
#include <string>

#include "core/learning/example.h"
#include "core/util/byte_io.h"

namespace lepton {

// Appends the encoding of `e`'s label, weight and features (a sparse instance
// must have as many values as indices).
void EncodeExample(const ExampleView& e, ByteWriter& w);

// Reads one encoding into e's label, weight and features. On failure, what
// the input ended inside of ("an example's label", "10 dense features", ...),
// with `r` at the field at fault.
std::optional<std::string> DecodeExample(ByteReader& r, Example* e);

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_EXAMPLE_CODEC_H_
