// Named features: Vowpal Wabbit style namespaces of string-named features,
// hashed into a model's sparse index space [0, D), with quadratic
// interactions between namespaces.
//
// A client that sends names instead of indices does not need to know D; a
// client that wants to compute indices itself (or check the server's) can
// reproduce them in any language from this recipe. All hashes are XXH64 of
// xxHash (the 64-bit hash, not XXH3; its output is fixed by the xxHash
// specification and the same in every version and language binding), and
// every integer is unsigned 64-bit:
//
//   seed    = spec.hash_seed (a uint32, widened to 64 bits)
//   D       = spec.num_features
//   h_ns    = XXH64(bytes of the namespace name, seed)
//   h       = XXH64(bytes of the feature name, h_ns)
//   index   = h mod D;          value = the feature's value (default 1)
//
// Names are hashed as the bytes the client sent (no case folding, no
// trimming; UTF-8 on the wire). Namespace names may be empty (VW's default
// namespace); feature names may not.
//
// Interactions (spec.interactions, VW's -q): each entry is two characters
// "xy". The group of a character c is every feature of every namespace whose
// name's first byte is c (in all such namespaces together; a namespace with
// an empty name is in no group). Then
//   x != y  ("ua"): every feature a of group x with every feature b of group y;
//   x == y  ("uu"): every unordered pair of two distinct feature occurrences
//                   {a, b} of group x (n*(n-1)/2 pairs for n features; a
//                   feature is not crossed with itself), with a and b ordered
//                   so that h_a <= h_b, which makes the pair independent of
//                   the order the features came in.
// and each pair (a, b) adds
//   index = XXH64(LE64(h_a) || LE64(h_b), seed) mod D   (16 bytes: h_a then
//           h_b, each 8 bytes little-endian)
//   value = v_a * v_b   (one float multiplication)
// Every entry of spec.interactions adds its pairs ("ua" and "au" both add
// theirs, with different indices).
//
// The instance's explicit sparse pairs (indices/values), which must follow
// the usual sparse rules (validation.h), are added as they are. Collisions
// (two names, a repeated name, an interaction pair, or an explicit pair
// landing on the same index) are summed: the entries are sorted by (index,
// bits of the float value), and each index's values are summed in that order
// in double and rounded to float once. The result is canonical: the same
// multiset of (namespace, name, value) entries gives bit-identical indices and
// values whatever the order of the namespaces and of the features in them.
// Indices come out ascending, each once. A summed value of 0 is kept.
//
// Bounds: at most kMaxHashedFeatures entries per instance counting explicit
// pairs, named features and interaction pairs before summing; values must be
// finite, and so must every interaction product and every sum.
//
// Errors are INVALID_ARGUMENT and start with the path of the field as the
// client named it, after the caller's prefix (see validation.h), e.g.
//   "examples[3].features.namespaces[1].features[0].name: must not be empty"
//   "instances[2].namespaces[0].features[4].value: not finite"
//   "instances[2].namespaces: 2000000 features after interactions exceed the
//    limit of 1048576"
//
// Thread safety: pure functions; the views borrow the caller's strings.
#ifndef LEPTON_CORE_LEARNING_FEATURE_HASHING_H_
#define LEPTON_CORE_LEARNING_FEATURE_HASHING_H_

#include <cstdint>
#include <deque>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"
#include "core/learning/validation.h"

namespace lepton {

// Entries per instance before collisions are summed (explicit pairs, named
// features and interaction pairs together).
inline constexpr int64_t kMaxHashedFeatures = int64_t{1} << 20;

// The recipe's steps, for tests and for callers that precompute.
uint64_t NamespaceHash(absl::string_view name, uint32_t seed);
uint64_t FeatureHash(absl::string_view name, uint64_t namespace_hash);
// The pair hash as is: (h_a, h_b) in the order given.
uint64_t InteractionHash(uint64_t h_a, uint64_t h_b, uint32_t seed);
// h mod num_features (num_features >= 1).
inline uint32_t HashedIndex(uint64_t h, int64_t num_features) {
  return static_cast<uint32_t>(h % static_cast<uint64_t>(num_features));
}

// Entries the recipe generates for `namespaces` under `spec` (named features
// plus interaction pairs, before summing), saturated at INT64_MAX.
int64_t CountHashedEntries(const ModelSpec& spec,
                           absl::Span<const NamespaceView> namespaces);

// Hashes `namespaces` and merges the explicit sparse pairs `indices`/`values`
// into out->indices/out->values (replaced; out->dense cleared) as described
// above, for a model with a valid `spec`. `path` is the instance's path
// prefix ("instances[2]", "examples[3].features"), called only on error.
absl::Status HashNamedFeatures(const ModelSpec& spec,
                               absl::Span<const NamespaceView> namespaces,
                               absl::Span<const uint32_t> indices,
                               absl::Span<const float> values, PathFn path,
                               Features* out);

// Entries (before collisions are summed) that hashing may generate for one
// batch, all instances together: with interactions a small request can
// expand quadratically, and this bounds the memory and time it may take.
inline constexpr int64_t kMaxHashedEntriesPerBatch = int64_t{1} << 24;

// The hashed features of a batch. A deque: the arrays already lent out to
// views never move.
using HashedFeatures = std::deque<Features>;

// Whether any of `instances` carries namespaces.
bool HasNamespaces(absl::Span<const FeaturesView> instances);
bool HasNamespaces(absl::Span<const ExampleView> examples);

// For each of the `n` items of a batch whose view `features(i)` carries
// namespaces: hashes them with its explicit indices/values under `spec` into
// a Features appended to *hashed, and points the view at it (no namespaces
// left). `path(i)` is item i's path prefix ("instances[2]",
// "examples[3].features"). INVALID_ARGUMENT naming the field (namespaces
// combined with dense, or as HashNamedFeatures); RESOURCE_EXHAUSTED naming
// `batch_field` past kMaxHashedEntriesPerBatch, checked before any hashing.
absl::Status HashNamedBatch(const ModelSpec& spec, int n,
                            absl::string_view batch_field,
                            absl::FunctionRef<FeaturesView&(int)> features,
                            absl::FunctionRef<std::string(int)> path,
                            HashedFeatures* hashed);

}  // namespace lepton

#endif  // LEPTON_CORE_LEARNING_FEATURE_HASHING_H_
