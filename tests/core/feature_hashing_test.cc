// Tests of named features (core/learning/feature_hashing.h): the hash recipe
// pinned by literal reference values, canonical output whatever the order,
// interactions, collision sums, bounds and error paths; and the spec fields
// they use.
//
// The reference values were computed once with this implementation and, for
// the cross-check, with an independent XXH64 written in Python from the
// xxHash specification (itself checked against xxHash's published vectors
// and against libxxhash on random inputs): both gave the same numbers. They
// are literals so that the hashing never changes silently: a changed index
// means every deployed model's weights mean something else.
#include "core/learning/feature_hashing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/learning/example.h"
#include "core/learning/model_spec.h"

namespace lepton {
namespace {

ModelSpec Spec(int64_t num_features, uint32_t seed = 0,
               std::vector<std::string> interactions = {}) {
  ModelSpec spec;
  spec.type = ModelType::kLogisticRegression;
  spec.num_features = num_features;
  spec.hash_seed = seed;
  spec.interactions = std::move(interactions);
  return spec;
}

// Owned namespaces, and the views HashNamedFeatures takes.
struct Ns {
  std::string name;
  std::vector<std::pair<std::string, float>> features;
};

struct Views {
  // Copies `namespaces_in`: the views point into the copy, so a temporary
  // argument may go away.
  explicit Views(const std::vector<Ns>& namespaces_in) : owned(namespaces_in) {
    const std::vector<Ns>& namespaces = owned;
    features.resize(namespaces.size());
    for (size_t i = 0; i < namespaces.size(); ++i) {
      for (const auto& [name, value] : namespaces[i].features) {
        features[i].push_back({name, value});
      }
      views.push_back({namespaces[i].name, features[i]});
    }
  }
  std::vector<Ns> owned;
  std::vector<std::vector<NamedFeatureView>> features;
  std::vector<NamespaceView> views;
};

absl::StatusOr<Features> Hash(const ModelSpec& spec,
                              const std::vector<Ns>& namespaces,
                              std::vector<uint32_t> indices = {},
                              std::vector<float> values = {}) {
  Views v(namespaces);
  Features out;
  absl::Status s = HashNamedFeatures(
      spec, v.views, indices, values,
      [] { return std::string("instances[2]"); }, &out);
  if (!s.ok()) return s;
  return out;
}

uint32_t Bits(float f) {
  uint32_t b = 0;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

std::vector<uint32_t> BitsOf(const std::vector<float>& values) {
  std::vector<uint32_t> bits;
  for (float v : values) bits.push_back(Bits(v));
  return bits;
}

std::map<uint32_t, float> AsMap(const Features& f) {
  std::map<uint32_t, float> m;
  for (size_t i = 0; i < f.indices.size(); ++i) m[f.indices[i]] = f.values[i];
  return m;
}

// ------------------------------------------------------------ the recipe

struct Reference {
  uint32_t seed;
  int64_t num_features;
  const char* ns;
  const char* name;
  uint32_t index;
};

// index = XXH64(name, XXH64(ns, seed)) mod D.
constexpr Reference kReferences[] = {
    {0u, 1048576, "user", "age", 1014947u},
    {0u, 1048576, "user", "city=paris", 52528u},
    {0u, 1048576, "ad", "id123", 670408u},
    {0u, 1048576, "", "age", 270019u},
    {1u, 1048576, "user", "age", 485728u},
    {42u, 1000, "user", "age", 437u},
    {42u, 1000, "ad", "id123", 4u},
    {4294967295u, 67108864, "ctx", "hour=13", 44293714u},
    {7u, 1, "user", "age", 0u},
    {7u, 784, "x", "f", 12u},
    {123456789u, 999983, "user", "caf\xc3\xa9", 320806u},  // UTF-8 "café"
    {0u, 262144, "a", "b", 43238u},
};

TEST(FeatureHashingTest, IndicesMatchTheReferenceList) {
  for (const Reference& r : kReferences) {
    SCOPED_TRACE(absl::StrCat("seed ", r.seed, " D ", r.num_features, " ", r.ns,
                              "/", r.name));
    EXPECT_EQ(HashedIndex(FeatureHash(r.name, NamespaceHash(r.ns, r.seed)),
                          r.num_features),
              r.index);
    // And through the whole function: one feature, value 1 by default.
    absl::StatusOr<Features> f =
        Hash(Spec(r.num_features, r.seed), {{r.ns, {{r.name, 1.0f}}}});
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ(f->indices, std::vector<uint32_t>{r.index});
    EXPECT_EQ(f->values, std::vector<float>{1.0f});
    EXPECT_TRUE(f->dense.empty());
  }
}

TEST(FeatureHashingTest, RawHashesAreXxh64) {
  // xxHash's published value of XXH64 of no bytes with seed 0.
  EXPECT_EQ(NamespaceHash("", 0), 0xEF46DB3751D8E999u);
  EXPECT_EQ(NamespaceHash("user", 0), 0x3da0fd9c44cfc9eeu);
  EXPECT_EQ(FeatureHash("age", 0x3da0fd9c44cfc9eeu), 0xb4627e6dbaaf7ca3u);
  // The seed is the whole 64-bit namespace hash, not its low 32 bits.
  EXPECT_NE(FeatureHash("age", 0x3da0fd9c44cfc9eeu),
            FeatureHash("age", 0x44cfc9eeu));
  const uint64_t h_age = FeatureHash("age", NamespaceHash("user", 0));
  const uint64_t h_id = FeatureHash("id123", NamespaceHash("ad", 0));
  EXPECT_EQ(InteractionHash(h_age, h_id, 0), 0xf3449254a008a48du);
}

// ---------------------------------------------------------- interactions

TEST(FeatureHashingTest, CrossInteractionAddsTheProductAtThePairHash) {
  // user/age (1014947) x ad/id123 (670408): XXH64(LE(h_age) LE(h_id), 0)
  // mod 2^20 = 566413; in the other order ("au") 65313.
  const std::vector<Ns> ns = {{"user", {{"age", 3.0f}}},
                              {"ad", {{"id123", 0.5f}}}};
  absl::StatusOr<Features> ua = Hash(Spec(1 << 20, 0, {"ua"}), ns);
  ASSERT_TRUE(ua.ok()) << ua.status();
  EXPECT_EQ(ua->indices, (std::vector<uint32_t>{566413, 670408, 1014947}));
  EXPECT_EQ(ua->values, (std::vector<float>{1.5f, 0.5f, 3.0f}));

  absl::StatusOr<Features> au = Hash(Spec(1 << 20, 0, {"au"}), ns);
  ASSERT_TRUE(au.ok()) << au.status();
  EXPECT_EQ(au->indices, (std::vector<uint32_t>{65313, 670408, 1014947}));

  // Both entries: both pairs. And a seed changes the pair's index (393).
  absl::StatusOr<Features> both = Hash(Spec(1 << 20, 0, {"ua", "au"}), ns);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->indices.size(), 4u);
  absl::StatusOr<Features> seeded = Hash(Spec(1000, 42, {"ua"}), ns);
  ASSERT_TRUE(seeded.ok());
  EXPECT_EQ(seeded->indices, (std::vector<uint32_t>{4, 393, 437}));
}

TEST(FeatureHashingTest, InteractionWithAnEmptyGroupAddsNothing) {
  absl::StatusOr<Features> f =
      Hash(Spec(1 << 20, 0, {"uz", "zz"}), {{"user", {{"age", 3.0f}}}});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->indices, std::vector<uint32_t>{1014947});
}

TEST(FeatureHashingTest, SelfInteractionCrossesEachUnorderedPairOnce) {
  const ModelSpec spec = Spec(1 << 20, 0, {"uu"});
  absl::StatusOr<Features> f =
      Hash(spec, {{"user", {{"a", 2.0f}, {"b", 3.0f}, {"c", 5.0f}}}});
  ASSERT_TRUE(f.ok()) << f.status();
  const uint64_t h_ns = NamespaceHash("user", 0);
  std::map<uint32_t, float> want;
  std::map<std::string, std::pair<uint64_t, float>> features = {
      {"a", {FeatureHash("a", h_ns), 2.0f}},
      {"b", {FeatureHash("b", h_ns), 3.0f}},
      {"c", {FeatureHash("c", h_ns), 5.0f}}};
  for (const auto& [name, hv] : features) {
    want[HashedIndex(hv.first, spec.num_features)] += hv.second;
  }
  for (const auto& [x, y] : {std::pair<std::string, std::string>{"a", "b"},
                             {"a", "c"},
                             {"b", "c"}}) {
    const auto [hx, vx] = features[x];
    const auto [hy, vy] = features[y];
    // The smaller hash first.
    const uint64_t pair =
        InteractionHash(std::min(hx, hy), std::max(hx, hy), 0);
    want[HashedIndex(pair, spec.num_features)] += vx * vy;
  }
  ASSERT_EQ(want.size(), 6u);  // no collision at this D
  EXPECT_EQ(AsMap(*f), want);
}

TEST(FeatureHashingTest, AGroupSpansEveryNamespaceWithThatInitial) {
  // "user" and "url" are both group 'u': "uu" crosses age with path.
  const ModelSpec spec = Spec(1 << 20, 0, {"uu"});
  absl::StatusOr<Features> split =
      Hash(spec, {{"user", {{"age", 2.0f}}}, {"url", {{"path", 3.0f}}}});
  ASSERT_TRUE(split.ok());
  ASSERT_EQ(split->indices.size(), 3u);
  const uint64_t h1 = FeatureHash("age", NamespaceHash("user", 0));
  const uint64_t h2 = FeatureHash("path", NamespaceHash("url", 0));
  const uint32_t pair = HashedIndex(
      InteractionHash(std::min(h1, h2), std::max(h1, h2), 0), 1 << 20);
  EXPECT_EQ(AsMap(*split).at(pair), 6.0f);
  // An empty namespace name belongs to no group.
  absl::StatusOr<Features> unnamed =
      Hash(Spec(1 << 20, 0, {"  "}), {{"", {{"x", 1.0f}, {"y", 1.0f}}}});
  ASSERT_TRUE(unnamed.ok());
  EXPECT_EQ(unnamed->indices.size(), 2u);
}

// ------------------------------------------------------------- canonical

TEST(FeatureHashingTest, AnyOrderOfTheSameFeaturesGivesTheSameBits) {
  // A small D forces collisions, and values whose float sum depends on the
  // order (1e17 + 1 - 1e17, even in double) would show any order-dependent
  // summation.
  const ModelSpec spec = Spec(7, 3, {"ua", "uu", "au"});
  std::vector<Ns> ns = {
      {"user",
       {{"age", 1e17f},
        {"age", 1.0f},
        {"age", -1e17f},
        {"x", 0.1f},
        {"y", 0.7f},
        {"z", -3.0f}}},
      {"ad", {{"id1", 0.3f}, {"id2", 1e-3f}, {"id1", 2.0f}}},
      {"url", {{"p", 1.1f}, {"q", -0.2f}}},
      {"ctx", {{"hour", 13.0f}}},
      {"ad", {{"id3", 7.0f}}},
  };
  const std::vector<uint32_t> indices = {5, 0};
  const std::vector<float> values = {0.25f, 1e19f};
  absl::StatusOr<Features> first = Hash(spec, ns, indices, values);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(std::is_sorted(first->indices.begin(), first->indices.end()));
  ASSERT_EQ(std::adjacent_find(first->indices.begin(), first->indices.end()),
            first->indices.end());
  std::mt19937 rng(12345);
  for (int round = 0; round < 50; ++round) {
    std::shuffle(ns.begin(), ns.end(), rng);
    for (Ns& n : ns) std::shuffle(n.features.begin(), n.features.end(), rng);
    absl::StatusOr<Features> again = Hash(spec, ns, {0, 5}, {1e19f, 0.25f});
    ASSERT_TRUE(again.ok());
    ASSERT_EQ(again->indices, first->indices) << "round " << round;
    ASSERT_EQ(BitsOf(again->values), BitsOf(first->values))
        << "round " << round;
  }
}

TEST(FeatureHashingTest, CollisionsAndRepeatedNamesAreSummed) {
  // D = 1: every entry collides at index 0.
  absl::StatusOr<Features> one =
      Hash(Spec(1), {{"u", {{"a", 1.5f}, {"b", 2.0f}}}, {"v", {{"c", 0.25f}}}},
           {0}, {10.0f});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->indices, std::vector<uint32_t>{0});
  EXPECT_EQ(one->values, std::vector<float>{13.75f});
  // The same name twice is one index with the values summed.
  absl::StatusOr<Features> twice =
      Hash(Spec(1 << 20), {{"user", {{"age", 1.0f}, {"age", 2.5f}}}});
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->indices, std::vector<uint32_t>{1014947});
  EXPECT_EQ(twice->values, std::vector<float>{3.5f});
  // An explicit pair at a hashed index is added to it; a zero sum is kept.
  absl::StatusOr<Features> merged = Hash(
      Spec(1 << 20), {{"user", {{"age", 1.0f}}}}, {1014947, 3}, {-1.0f, 4.0f});
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ(merged->indices, (std::vector<uint32_t>{3, 1014947}));
  EXPECT_EQ(merged->values, (std::vector<float>{4.0f, 0.0f}));
}

TEST(FeatureHashingTest, NoNamespacesIsTheExplicitPairsSorted) {
  absl::StatusOr<Features> f = Hash(Spec(10), {}, {7, 2}, {1.0f, 2.0f});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->indices, (std::vector<uint32_t>{2, 7}));
  EXPECT_EQ(f->values, (std::vector<float>{2.0f, 1.0f}));
}

// ------------------------------------------------------------ validation

TEST(FeatureHashingTest, BadNamedFeaturesNameTheField) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const ModelSpec spec = Spec(100);
  EXPECT_EQ(Hash(spec, {{"u", {{"a", 1.0f}}}, {"v", {{"b", 1.0f}, {"", 1.0f}}}})
                .status(),
            absl::InvalidArgumentError(
                "instances[2].namespaces[1].features[1].name: must not be "
                "empty"));
  EXPECT_EQ(Hash(spec, {{"u", {{"a", nan}}}}).status(),
            absl::InvalidArgumentError(
                "instances[2].namespaces[0].features[0].value: not finite"));
  EXPECT_EQ(Hash(spec, {{"u", {{"a", 1.0f}, {"b", -inf}}}}).status(),
            absl::InvalidArgumentError(
                "instances[2].namespaces[0].features[1].value: not finite"));
  // The explicit pairs keep the sparse rules and their messages.
  EXPECT_EQ(Hash(spec, {{"u", {{"a", 1.0f}}}}, {100}, {1.0f}).status(),
            absl::InvalidArgumentError(
                "instances[2].indices[0]: 100 is out of range [0, 100)"));
  EXPECT_EQ(
      Hash(spec, {{"u", {{"a", 1.0f}}}}, {4, 4}, {1.0f, 1.0f}).status(),
      absl::InvalidArgumentError("instances[2].indices[1]: repeats index 4"));
  EXPECT_EQ(Hash(spec, {}, {4}, {}).status(),
            absl::InvalidArgumentError(
                "instances[2].values: has 0 values for 1 indices"));
}

TEST(FeatureHashingTest, NonFiniteProductsAndSumsAreRejected) {
  EXPECT_EQ(
      Hash(Spec(100, 0, {"ua"}), {{"u", {{"a", 1e20f}}}, {"a", {{"b", 1e20f}}}})
          .status(),
      absl::InvalidArgumentError("instances[2].namespaces: interaction \"ua\" "
                                 "of values 1e+20 and 1e+20 is not finite"));
  const absl::Status sum =
      Hash(Spec(1), {{"u", {{"a", 3e38f}, {"b", 3e38f}}}}).status();
  EXPECT_EQ(sum.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      absl::StartsWith(sum.message(),
                       "instances[2].namespaces: the values hashed to index 0 "
                       "sum to 6"))
      << sum;
}

TEST(FeatureHashingTest, TooManyFeaturesAfterInteractionsIsRejected) {
  // 1,500 features crossed with themselves: 1,124,250 pairs, over 2^20.
  Ns big{"user", {}};
  for (int i = 0; i < 1500; ++i) big.features.push_back({std::to_string(i), 1});
  EXPECT_EQ(Hash(Spec(1 << 20, 0, {"uu"}), {big}).status(),
            absl::InvalidArgumentError(
                "instances[2].namespaces: 1125750 features after interactions "
                "exceed the limit of 1048576"));
  // Without the interaction it is fine.
  EXPECT_TRUE(Hash(Spec(1 << 20), {big}).ok());
  // 1,448 features: 1,447 * 1,448 / 2 + 1,448 = 1,049,076, still over; 1,447
  // features: 1,046,181 + 1,447 = 1,047,628, under.
  big.features.resize(1447);
  absl::StatusOr<Features> under = Hash(Spec(1 << 26, 0, {"uu"}), {big});
  ASSERT_TRUE(under.ok()) << under.status();
  EXPECT_GT(under->indices.size(), 1000000u);
}

TEST(FeatureHashingTest, CountHashedEntries) {
  Views v({{"user", {{"a", 1}, {"b", 1}, {"c", 1}}},
           {"url", {{"d", 1}}},
           {"ad", {{"e", 1}, {"f", 1}}},
           {"", {{"g", 1}}}});
  EXPECT_EQ(CountHashedEntries(Spec(10), v.views), 7);
  // "uu": 4 features in group u, 6 pairs; "ua": 4 x 2; "ax": 0.
  EXPECT_EQ(CountHashedEntries(Spec(10, 0, {"uu", "ua", "ax"}), v.views),
            7 + 6 + 8);
}

// ------------------------------------------------------------- the spec

TEST(FeatureHashingSpecTest, InteractionsAreValidated) {
  ModelSpec spec = Spec(10, 99, {"ua", "uu", " a", "~!"});
  EXPECT_TRUE(ValidateModelSpec(spec).ok());
  spec.interactions = {"ua", "u"};
  EXPECT_EQ(ValidateModelSpec(spec),
            absl::InvalidArgumentError(
                "spec.interactions[1]: must be 2 printable ASCII characters "
                "(namespace initials, e.g. \"ua\"), got \"u\""));
  spec.interactions = {"uab"};
  EXPECT_TRUE(absl::StartsWith(ValidateModelSpec(spec).message(),
                               "spec.interactions[0]: must be 2 printable"));
  spec.interactions = {"ua", "a\n"};
  EXPECT_EQ(ValidateModelSpec(spec),
            absl::InvalidArgumentError(
                "spec.interactions[1]: must be 2 printable ASCII characters "
                "(namespace initials, e.g. \"ua\"), got \"a\\n\""));
  spec.interactions = {"ua", "au", "ua"};
  EXPECT_EQ(ValidateModelSpec(spec),
            absl::InvalidArgumentError(
                "spec.interactions[2]: repeats \"ua\" (spec.interactions[0])"));
  spec.interactions.clear();
  for (int i = 0; i < 65; ++i) {
    spec.interactions.push_back(
        {static_cast<char>('0' + i / 8), static_cast<char>('0' + i % 8)});
  }
  EXPECT_EQ(ValidateModelSpec(spec),
            absl::InvalidArgumentError(
                "spec.interactions: at most 64 entries, got 65"));
  spec.interactions.pop_back();
  EXPECT_TRUE(ValidateModelSpec(spec).ok());
}

}  // namespace
}  // namespace lepton
