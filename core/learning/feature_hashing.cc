#include "core/learning/feature_hashing.h"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace lepton {
namespace {

// A feature of an interaction group: its hash and value.
struct GroupFeature {
  uint64_t hash;
  float value;
};

absl::Status Invalid(PathFn path, absl::string_view field,
                     absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path(), field, ": ", what));
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return std::numeric_limits<int64_t>::max();
  }
  return sum;
}

int64_t SaturatingMul(int64_t a, int64_t b) {
  int64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) {
    return std::numeric_limits<int64_t>::max();
  }
  return product;
}

uint8_t FirstByte(absl::string_view s) { return static_cast<uint8_t>(s[0]); }

// An (index, value) entry as one integer, so that sorting the integers
// sorts by index and then by the value's bits: a total order that does not
// depend on where the entry came from, which makes the sums canonical.
uint64_t Pack(uint32_t index, float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof(bits));
  return (uint64_t{index} << 32) | bits;
}

float ValueOf(uint64_t packed) {
  const uint32_t bits = static_cast<uint32_t>(packed);
  float value = 0;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

}  // namespace

uint64_t NamespaceHash(absl::string_view name, uint32_t seed) {
  return XXH64(name.data(), name.size(), seed);
}

uint64_t FeatureHash(absl::string_view name, uint64_t namespace_hash) {
  return XXH64(name.data(), name.size(), namespace_hash);
}

uint64_t InteractionHash(uint64_t h_a, uint64_t h_b, uint32_t seed) {
  // Byte by byte, so the bytes are little-endian on any host.
  unsigned char bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<unsigned char>(h_a >> (8 * i));
    bytes[8 + i] = static_cast<unsigned char>(h_b >> (8 * i));
  }
  return XXH64(bytes, sizeof(bytes), seed);
}

int64_t CountHashedEntries(const ModelSpec& spec,
                           absl::Span<const NamespaceView> namespaces) {
  std::array<int64_t, 256> group{};
  int64_t total = 0;
  for (const NamespaceView& ns : namespaces) {
    const int64_t n = static_cast<int64_t>(ns.features.size());
    total = SaturatingAdd(total, n);
    if (!ns.name.empty()) {
      group[FirstByte(ns.name)] = SaturatingAdd(group[FirstByte(ns.name)], n);
    }
  }
  for (const std::string& pair : spec.interactions) {
    const int64_t x = group[static_cast<uint8_t>(pair[0])];
    const int64_t y = group[static_cast<uint8_t>(pair[1])];
    const int64_t pairs = pair[0] != pair[1]
                              ? SaturatingMul(x, y)
                              : (x == 0 ? 0 : SaturatingMul(x, x - 1) / 2);
    total = SaturatingAdd(total, pairs);
  }
  return total;
}

absl::Status HashNamedFeatures(const ModelSpec& spec,
                               absl::Span<const NamespaceView> namespaces,
                               absl::Span<const uint32_t> indices,
                               absl::Span<const float> values, PathFn path,
                               Features* out) {
  // The explicit pairs follow the sparse rules, with the usual messages.
  if (absl::Status s = ValidateFeatures(spec, {{}, indices, values}, path);
      !s.ok()) {
    return s;
  }
  for (size_t i = 0; i < namespaces.size(); ++i) {
    const absl::Span<const NamedFeatureView> features = namespaces[i].features;
    for (size_t j = 0; j < features.size(); ++j) {
      if (features[j].name.empty()) {
        return Invalid(
            path, absl::StrCat(".namespaces[", i, "].features[", j, "].name"),
            "must not be empty");
      }
      if (!std::isfinite(features[j].value)) {
        return Invalid(
            path, absl::StrCat(".namespaces[", i, "].features[", j, "].value"),
            "not finite");
      }
    }
  }
  const int64_t count = SaturatingAdd(static_cast<int64_t>(indices.size()),
                                      CountHashedEntries(spec, namespaces));
  if (count > kMaxHashedFeatures) {
    return Invalid(path, ".namespaces",
                   absl::StrCat(count,
                                " features after interactions exceed "
                                "the limit of ",
                                kMaxHashedFeatures));
  }

  const int64_t d = spec.num_features;
  const uint32_t seed = spec.hash_seed;
  std::vector<uint64_t> entries;
  entries.reserve(static_cast<size_t>(count));
  for (size_t i = 0; i < indices.size(); ++i) {
    entries.push_back(Pack(indices[i], values[i]));
  }
  // Only the groups some interaction names are collected.
  std::array<bool, 256> grouped{};
  for (const std::string& pair : spec.interactions) {
    grouped[static_cast<uint8_t>(pair[0])] = true;
    grouped[static_cast<uint8_t>(pair[1])] = true;
  }
  std::array<std::vector<GroupFeature>, 256> groups;
  for (const NamespaceView& ns : namespaces) {
    const uint64_t h_ns = NamespaceHash(ns.name, seed);
    std::vector<GroupFeature>* group =
        !ns.name.empty() && grouped[FirstByte(ns.name)]
            ? &groups[FirstByte(ns.name)]
            : nullptr;
    for (const NamedFeatureView& f : ns.features) {
      const uint64_t h = FeatureHash(f.name, h_ns);
      entries.push_back(Pack(HashedIndex(h, d), f.value));
      if (group != nullptr) group->push_back({h, f.value});
    }
  }
  for (size_t k = 0; k < spec.interactions.size(); ++k) {
    const std::string& pair = spec.interactions[k];
    const auto cross = [&](const GroupFeature& a,
                           const GroupFeature& b) -> absl::Status {
      const float value = a.value * b.value;
      if (!std::isfinite(value)) {
        return Invalid(
            path, ".namespaces",
            absl::StrCat("interaction \"", pair, "\" of values ", a.value,
                         " and ", b.value, " is not finite"));
      }
      entries.push_back(
          Pack(HashedIndex(InteractionHash(a.hash, b.hash, seed), d), value));
      return absl::OkStatus();
    };
    const std::vector<GroupFeature>& x = groups[static_cast<uint8_t>(pair[0])];
    const std::vector<GroupFeature>& y = groups[static_cast<uint8_t>(pair[1])];
    if (pair[0] != pair[1]) {
      for (const GroupFeature& a : x) {
        for (const GroupFeature& b : y) {
          if (absl::Status s = cross(a, b); !s.ok()) return s;
        }
      }
      continue;
    }
    for (size_t i = 0; i < x.size(); ++i) {
      for (size_t j = i + 1; j < x.size(); ++j) {
        const bool in_order = x[i].hash <= x[j].hash;
        absl::Status s = in_order ? cross(x[i], x[j]) : cross(x[j], x[i]);
        if (!s.ok()) return s;
      }
    }
  }

  std::sort(entries.begin(), entries.end());
  out->dense.clear();
  out->indices.clear();
  out->values.clear();
  out->indices.reserve(entries.size());
  out->values.reserve(entries.size());
  for (size_t i = 0; i < entries.size();) {
    const uint32_t index = static_cast<uint32_t>(entries[i] >> 32);
    double sum = 0;
    for (; i < entries.size() && (entries[i] >> 32) == index; ++i) {
      sum += ValueOf(entries[i]);
    }
    const float value = static_cast<float>(sum);
    if (!std::isfinite(value)) {
      return Invalid(
          path, ".namespaces",
          absl::StrCat("the values hashed to index ", index, " sum to ", sum,
                       ", which is not a finite float"));
    }
    out->indices.push_back(index);
    out->values.push_back(value);
  }
  return absl::OkStatus();
}

bool HasNamespaces(absl::Span<const FeaturesView> instances) {
  for (const FeaturesView& f : instances) {
    if (!f.namespaces.empty()) return true;
  }
  return false;
}

bool HasNamespaces(absl::Span<const ExampleView> examples) {
  for (const ExampleView& e : examples) {
    if (!e.features.namespaces.empty()) return true;
  }
  return false;
}

absl::Status HashNamedBatch(const ModelSpec& spec, int n,
                            absl::string_view batch_field,
                            absl::FunctionRef<FeaturesView&(int)> features,
                            absl::FunctionRef<std::string(int)> path,
                            HashedFeatures* hashed) {
  // The cheap checks and the size of the whole batch first, so that an
  // oversized one is refused before any hashing.
  int64_t total = 0;
  for (int i = 0; i < n && total <= kMaxHashedEntriesPerBatch; ++i) {
    const FeaturesView& f = features(i);
    if (f.namespaces.empty()) continue;
    if (!f.dense.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path(i), ".namespaces: cannot be combined with dense"));
    }
    total += std::min(kMaxHashedEntriesPerBatch + 1,
                      SaturatingAdd(CountHashedEntries(spec, f.namespaces),
                                    static_cast<int64_t>(f.indices.size())));
  }
  if (total > kMaxHashedEntriesPerBatch) {
    return absl::ResourceExhaustedError(absl::StrCat(
        batch_field,
        ": the named features of the request expand to more than the "
        "server's limit of ",
        kMaxHashedEntriesPerBatch,
        " entries (with interactions); split the request"));
  }
  for (int i = 0; i < n; ++i) {
    FeaturesView& f = features(i);
    if (f.namespaces.empty()) continue;
    Features& out = hashed->emplace_back();
    absl::Status s = HashNamedFeatures(
        spec, f.namespaces, f.indices, f.values, [&] { return path(i); }, &out);
    if (!s.ok()) return s;
    f = out.view();
  }
  return absl::OkStatus();
}

}  // namespace lepton
