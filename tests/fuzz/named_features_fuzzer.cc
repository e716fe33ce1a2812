// Fuzz target: the named-feature and interaction hashing path
// (core/learning/feature_hashing.h): HashNamedBatch over a batch of up to
// three instances, under a spec whose hash seed, num_features and
// interactions come from the input.
//
// Input:
//   u32 hash_seed | u32 d | u8 n, then n two-byte interactions
//   then up to 3 instances, each
//     u8 namespaces (at most 16), each: u8 length + name, u8 features,
//       each: u8 length + name, u8 has_value, f32 value
//     u8 explicit pairs, each: u32 index, f32 value
// d's low bit picks a tiny index space (1 to 16: collisions everywhere) or
// any up to kMaxFeatures. A spec that ValidateModelSpec refuses (a repeated
// or malformed interaction) ends the input.
//
// Properties, beyond no crash, no sanitizer report and no allocation over
// libFuzzer's -malloc_limit_mb:
//   - the answer is OK, INVALID_ARGUMENT or RESOURCE_EXHAUSTED;
//   - a hashed instance is a valid sparse instance of the model: indices
//     ascending, each once and below num_features, values finite, no more
//     entries than CountHashedEntries says;
//   - the result is canonical, as the header promises: the namespaces, the
//     features in each and the explicit pairs in reverse order give the
//     same answer, bit for bit.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/learning/feature_hashing.h"
#include "core/learning/model_spec.h"
#include "core/learning/validation.h"
#include "tests/fuzz/fuzz_support.h"

namespace lepton::fuzz {
namespace {

// One instance's arrays, owned; views lent out per run.
struct Instance {
  struct Namespace {
    std::string name;
    std::vector<NamedFeatureView> features;  // names point into `names`
  };
  std::deque<std::string> names;
  std::vector<Namespace> namespaces;
  std::vector<uint32_t> indices;
  std::vector<float> values;

  void Reverse() {
    std::reverse(namespaces.begin(), namespaces.end());
    for (Namespace& ns : namespaces) {
      std::reverse(ns.features.begin(), ns.features.end());
    }
    std::reverse(indices.begin(), indices.end());
    std::reverse(values.begin(), values.end());
  }
};

std::string Name(FuzzInput& in) {
  const uint8_t n = in.U8();
  std::string name;
  for (uint8_t i = 0; i < n && !in.empty(); ++i) {
    name.push_back(static_cast<char>(in.U8()));
  }
  return name;
}

Instance ReadInstance(FuzzInput& in) {
  Instance x;
  const int namespaces = in.U8() % 17;
  for (int i = 0; i < namespaces; ++i) {
    Instance::Namespace& ns = x.namespaces.emplace_back();
    ns.name = Name(in);
    const int features = in.U8();
    for (int j = 0; j < features && !in.empty(); ++j) {
      const std::string& name = x.names.emplace_back(Name(in));
      const bool has_value = in.U8() & 1;
      const uint32_t bits = in.U32();
      float value = 1;
      if (has_value) std::memcpy(&value, &bits, 4);
      ns.features.push_back({name, value});
    }
  }
  const int pairs = in.U8();
  for (int i = 0; i < pairs && !in.empty(); ++i) {
    x.indices.push_back(in.U32());
    const uint32_t bits = in.U32();
    float value;
    std::memcpy(&value, &bits, 4);
    x.values.push_back(value);
  }
  return x;
}

struct Outcome {
  absl::Status status;
  std::vector<Features> hashed;
};

Outcome Hash(const ModelSpec& spec, const std::vector<Instance>& batch) {
  // Views of the namespaces, kept alive during the call.
  std::vector<std::vector<NamespaceView>> namespaces(batch.size());
  std::vector<FeaturesView> views(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    for (const Instance::Namespace& ns : batch[i].namespaces) {
      namespaces[i].push_back({ns.name, ns.features});
    }
    views[i] = {{}, batch[i].indices, batch[i].values, namespaces[i]};
  }
  HashedFeatures hashed;
  Outcome outcome;
  outcome.status = HashNamedBatch(
      spec, static_cast<int>(views.size()), "instances",
      [&](int i) -> FeaturesView& { return views[i]; },
      [](int i) { return absl::StrCat("instances[", i, "]"); }, &hashed);
  if (!outcome.status.ok()) return outcome;
  for (size_t i = 0; i < batch.size(); ++i) {
    const FeaturesView& v = views[i];
    FUZZ_CHECK(v.namespaces.empty() || batch[i].namespaces.empty());
    Features f;
    f.indices.assign(v.indices.begin(), v.indices.end());
    f.values.assign(v.values.begin(), v.values.end());
    outcome.hashed.push_back(std::move(f));
  }
  return outcome;
}

bool SameBits(const Features& a, const Features& b) {
  return a.indices == b.indices && a.values.size() == b.values.size() &&
         (a.values.empty() ||
          std::memcmp(a.values.data(), b.values.data(),
                      a.values.size() * sizeof(float)) == 0);
}

void OneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  ModelSpec spec;
  spec.type = ModelType::kLogisticRegression;
  spec.hash_seed = in.U32();
  const uint32_t d = in.U32();
  spec.num_features = (d & 1) ? 1 + (d >> 1) % 16 : 1 + (d >> 1) % kMaxFeatures;
  const int interactions = in.U8() % 8;
  for (int i = 0; i < interactions; ++i) {
    std::string pair;
    pair.push_back(static_cast<char>(in.U8()));
    pair.push_back(static_cast<char>(in.U8()));
    spec.interactions.push_back(pair);
  }
  if (!ValidateModelSpec(spec).ok()) return;
  std::vector<Instance> batch;
  for (int i = 0; i < 3 && !in.empty(); ++i) batch.push_back(ReadInstance(in));
  if (batch.empty()) return;

  const Outcome first = Hash(spec, batch);
  const absl::Status& s = first.status;
  FUZZ_CHECK(
      s.ok() || absl::IsInvalidArgument(s) || absl::IsResourceExhausted(s),
      "%s", s.ToString().c_str());
  for (size_t i = 0; i < first.hashed.size(); ++i) {
    const Features& f = first.hashed[i];
    if (batch[i].namespaces.empty()) continue;  // not hashed: not ours
    std::vector<NamespaceView> ns;
    for (const Instance::Namespace& n : batch[i].namespaces) {
      ns.push_back({n.name, n.features});
    }
    FUZZ_CHECK(static_cast<int64_t>(f.indices.size()) <=
               static_cast<int64_t>(batch[i].indices.size()) +
                   CountHashedEntries(spec, ns));
    for (size_t k = 0; k < f.indices.size(); ++k) {
      FUZZ_CHECK(k == 0 || f.indices[k] > f.indices[k - 1]);
    }
    const absl::Status valid =
        ValidateFeatures(spec, f.view(), [] { return std::string("x"); });
    FUZZ_CHECK(valid.ok(), "%s", valid.ToString().c_str());
  }

  std::vector<Instance> reversed = batch;
  for (Instance& x : reversed) x.Reverse();
  const Outcome second = Hash(spec, reversed);
  FUZZ_CHECK(second.status.ok() == s.ok(), "%s / %s", s.ToString().c_str(),
             second.status.ToString().c_str());
  FUZZ_CHECK(second.hashed.size() == first.hashed.size());
  for (size_t i = 0; i < first.hashed.size(); ++i) {
    if (batch[i].namespaces.empty()) continue;
    FUZZ_CHECK(SameBits(first.hashed[i], second.hashed[i]), "instance %zu", i);
  }
}

}  // namespace
}  // namespace lepton::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lepton::fuzz::OneInput(data, size);
  return 0;
}
