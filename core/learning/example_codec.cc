#include "core/learning/example_codec.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace lepton {

void EncodeExample(const ExampleView& e, ByteWriter& w) {
  w.F32(e.label);
  w.F32(e.weight);
  w.U32(static_cast<uint32_t>(e.features.dense.size()));
  w.Floats(e.features.dense);
  w.U32(static_cast<uint32_t>(e.features.indices.size()));
  w.U32s(e.features.indices);
  w.Floats(e.features.values);
}

std::optional<std::string> DecodeExample(ByteReader& r, Example* e) {
  if (!r.F32(&e->label)) return "an example's label";
  if (!r.F32(&e->weight)) return "an example's weight";
  uint32_t d = 0;
  if (!r.U32(&d)) return "an example's dense length";
  if (d > r.remaining() / sizeof(float)) {
    return absl::StrCat(d, " dense features");
  }
  e->features.dense.resize(d);
  if (!r.Floats(d, e->features.dense.data())) return "the dense features";
  uint32_t s = 0;
  if (!r.U32(&s)) return "an example's sparse length";
  if (s > r.remaining() / (sizeof(uint32_t) + sizeof(float))) {
    return absl::StrCat(s, " sparse features");
  }
  e->features.indices.resize(s);
  e->features.values.resize(s);
  if (!r.U32s(s, e->features.indices.data()) ||
      !r.Floats(s, e->features.values.data())) {
    return "the sparse features";
  }
  return std::nullopt;
}

}  // namespace lepton
