#include "client/feature_text.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/example_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lepton::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The message of a status expected to be INVALID_ARGUMENT.
std::string InvalidMessage(const absl::Status& status) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return std::string(status.message());
}

TEST(ParseFloatTest, AcceptsDecimalForms) {
  EXPECT_EQ(*ParseFloat("0"), 0.0f);
  EXPECT_EQ(*ParseFloat("1"), 1.0f);
  EXPECT_EQ(*ParseFloat("-0.5"), -0.5f);
  EXPECT_EQ(*ParseFloat("+1.5"), 1.5f);
  EXPECT_EQ(*ParseFloat("2.5e-3"), 2.5e-3f);
  EXPECT_EQ(*ParseFloat(" \t7 "), 7.0f);
  EXPECT_EQ(*ParseFloat(".25"), 0.25f);
  // Shortest round-trip forms read back as the same float.
  EXPECT_EQ(*ParseFloat("0.003921569"), 1 / 255.0f);
}

TEST(ParseFloatTest, RejectsWhatTheServerWould) {
  EXPECT_EQ(InvalidMessage(ParseFloat("abc").status()),
            "\"abc\" is not a number");
  EXPECT_EQ(InvalidMessage(ParseFloat("").status()), "\"\" is not a number");
  EXPECT_EQ(InvalidMessage(ParseFloat("1.5.2").status()),
            "\"1.5.2\" is not a number");
  EXPECT_EQ(InvalidMessage(ParseFloat("0x10").status()),
            "\"0x10\" is not a number");
  EXPECT_EQ(InvalidMessage(ParseFloat("+-1").status()),
            "\"+-1\" is not a number");
  EXPECT_EQ(InvalidMessage(ParseFloat("nan").status()),
            "\"nan\" is not finite");
  EXPECT_EQ(InvalidMessage(ParseFloat("-inf").status()),
            "\"-inf\" is not finite");
  EXPECT_EQ(InvalidMessage(ParseFloat("1e39").status()),
            "\"1e39\" is out of the range of a float");
}

TEST(ParseFloatTest, FastFormAgreesAndLeavesMessagesToParseFloat) {
  float value = -1;
  EXPECT_TRUE(ParseFloatFast("0", &value));
  EXPECT_EQ(value, 0.0f);
  EXPECT_TRUE(ParseFloatFast(" +2.5", &value));
  EXPECT_EQ(value, 2.5f);
  EXPECT_FALSE(ParseFloatFast("inf", &value));
  EXPECT_FALSE(ParseFloatFast("", &value));
  EXPECT_FALSE(ParseFloatFast("1,", &value));
}

TEST(ParseIndexTest, AcceptsUint32Only) {
  EXPECT_EQ(*ParseIndex("0"), 0u);
  EXPECT_EQ(*ParseIndex(" 4294967295"), 4294967295u);
  EXPECT_EQ(InvalidMessage(ParseIndex("4294967296").status()),
            "index \"4294967296\" is too large");
  EXPECT_EQ(InvalidMessage(ParseIndex("-1").status()),
            "index \"-1\" is not a non-negative integer");
  EXPECT_EQ(InvalidMessage(ParseIndex("1.0").status()),
            "index \"1.0\" is not a non-negative integer");
}

TEST(DenseFeaturesTest, ParsesCommaSeparatedValues) {
  v1::Features f;
  ASSERT_TRUE(ParseDenseFeatures("0.1, 0.2 ,0,-3", &f).ok());
  EXPECT_THAT(f.dense(), ElementsAre(0.1f, 0.2f, 0.0f, -3.0f));
  EXPECT_TRUE(f.indices().empty());
}

TEST(DenseFeaturesTest, NamesTheBadValue) {
  v1::Features f;
  EXPECT_EQ(InvalidMessage(ParseDenseFeatures("1,,2", &f)),
            "value 2: \"\" is not a number");
  f.Clear();
  EXPECT_EQ(InvalidMessage(ParseDenseFeatures("1,2,x", &f)),
            "value 3: \"x\" is not a number");
  f.Clear();
  EXPECT_EQ(InvalidMessage(ParseDenseFeatures(" ", &f)), "no values");
}

TEST(SparseFeaturesTest, ParsesPairs) {
  v1::Features f;
  ASSERT_TRUE(ParseSparseFeatures("3:1.5,7:1", false, 0, &f).ok());
  EXPECT_THAT(f.indices(), ElementsAre(3u, 7u));
  EXPECT_THAT(f.values(), ElementsAre(1.5f, 1.0f));
  EXPECT_TRUE(f.dense().empty());
}

TEST(SparseFeaturesTest, OneBasedIndicesAreStoredZeroBased) {
  v1::Features f;
  ASSERT_TRUE(ParseSparseFeatures("1:2,4:3", true, 4, &f).ok());
  EXPECT_THAT(f.indices(), ElementsAre(0u, 3u));
  f.Clear();
  EXPECT_EQ(InvalidMessage(ParseSparseFeatures("0:1", true, 4, &f)),
            "pair 1: index 0 with 1-based indices");
}

TEST(SparseFeaturesTest, EmptyIsAnInstanceWithoutFeatures) {
  v1::Features f;
  ASSERT_TRUE(ParseSparseFeatures("", false, 4, &f).ok());
  EXPECT_TRUE(f.indices().empty());
}

TEST(SparseFeaturesTest, NamesTheBadPair) {
  v1::Features f;
  EXPECT_EQ(InvalidMessage(ParseSparseFeatures("1:1,7x1", false, 0, &f)),
            "pair 2: \"7x1\" is not index:value");
  f.Clear();
  EXPECT_EQ(InvalidMessage(ParseSparseFeatures("a:1", false, 0, &f)),
            "pair 1: index \"a\" is not a non-negative integer");
  f.Clear();
  EXPECT_EQ(InvalidMessage(ParseSparseFeatures("1:1,2:nan", false, 0, &f)),
            "pair 2: \"nan\" is not finite");
}

TEST(SparseFeaturesTest, ChecksRangeAndRepeatsAsTheTextCountsThem) {
  v1::Features f;
  EXPECT_EQ(InvalidMessage(ParseSparseFeatures("1:1,4:1", false, 4, &f)),
            "index 4 is out of range: 4 features, indices 0..3");
  f.Clear();
  EXPECT_EQ(InvalidMessage(ParseSparseFeatures("5:1", true, 4, &f)),
            "index 5 is out of range: 4 features, indices 1..4");
  f.Clear();
  EXPECT_EQ(InvalidMessage(ParseSparseFeatures("2:1,2:3", false, 4, &f)),
            "index 2 is repeated");
  f.Clear();
  // Out of order: found by sorting a copy.
  EXPECT_EQ(InvalidMessage(ParseSparseFeatures("3:1,1:1,3:2", true, 4, &f)),
            "index 3 is repeated");
  f.Clear();
  EXPECT_TRUE(ParseSparseFeatures("3:1,1:1,2:2", false, 4, &f).ok());
  EXPECT_THAT(f.indices(), ElementsAre(3u, 1u, 2u));
}

// "ns/name=value" for each named feature, "-" for an absent value.
std::vector<std::string> Named(const v1::Features& f) {
  std::vector<std::string> out;
  for (const v1::Namespace& ns : f.namespaces()) {
    for (const v1::NamedFeature& nf : ns.features()) {
      out.push_back(ns.name() + "/" + nf.name() + "=" +
                    (nf.has_value() ? std::to_string(nf.value()) : "-"));
    }
    if (ns.features().empty()) out.push_back(ns.name() + "/");
  }
  return out;
}

TEST(NamedFeaturesTest, ParsesVowpalWabbitStyleNamespaces) {
  v1::Features f;
  ASSERT_TRUE(
      ParseNamedFeatures(" |user age:3 city=paris\t|ad id123  | x:-0.5 ", &f)
          .ok());
  ASSERT_EQ(f.namespaces_size(), 3);
  EXPECT_EQ(f.namespaces(0).name(), "user");
  EXPECT_EQ(f.namespaces(1).name(), "ad");
  EXPECT_EQ(f.namespaces(2).name(), "");  // '|' then a blank: no name
  EXPECT_THAT(Named(f), ElementsAre("user/age=3.000000", "user/city=paris=-",
                                    "ad/id123=-", "/x=-0.500000"));
  f.Clear();
  ASSERT_TRUE(ParseNamedFeatures("|u", &f).ok());  // a namespace, no feature
  EXPECT_THAT(Named(f), ElementsAre("u/"));
  f.Clear();
  ASSERT_TRUE(ParseNamedFeatures("  ", &f).ok());
  EXPECT_EQ(f.namespaces_size(), 0);
}

// Found by vw_fuzzer (docs/fuzzing.md): a name that is not UTF-8 was sent,
// and the server cannot parse a request whose strings are not.
TEST(NamedFeaturesTest, RefusesNamesThatAreNotUtf8) {
  v1::Features f;
  int64_t column = 0;
  EXPECT_EQ(InvalidMessage(ParseNamedFeatures("|caf\xe9 x", &f, &column)),
            "namespace 1: its name is not valid UTF-8");
  EXPECT_EQ(column, 2);
  f.Clear();
  EXPECT_EQ(InvalidMessage(ParseNamedFeatures("|a x na\xefve:2", &f, &column)),
            "namespace 1 (a): feature 2: its name is not valid UTF-8");
  EXPECT_EQ(column, 6);
  // Overlong forms, surrogates and bytes past U+10FFFF are not UTF-8 either.
  for (const char* name :
       {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\xff"}) {
    f.Clear();
    EXPECT_FALSE(ParseNamedFeatures(absl::StrCat("|a ", name), &f).ok())
        << name;
  }
  // UTF-8 of every length is taken, and sent as it is.
  f.Clear();
  ASSERT_TRUE(
      ParseNamedFeatures("|caf\xc3\xa9 \xe2\x82\xac:2 \xf0\x9f\x98\x80", &f)
          .ok());
  EXPECT_EQ(f.namespaces(0).name(), "caf\xc3\xa9");
  EXPECT_EQ(f.namespaces(0).features(0).name(), "\xe2\x82\xac");
  EXPECT_EQ(f.namespaces(0).features(1).name(), "\xf0\x9f\x98\x80");
  v1::Features back;
  EXPECT_TRUE(back.ParseFromString(f.SerializeAsString()));
}

TEST(NamedFeaturesTest, NamesTheBadPart) {
  v1::Features f;
  EXPECT_EQ(InvalidMessage(ParseNamedFeatures("age:3 |u x", &f)),
            "\"age:3 \" before the first '|' (expected |namespace feature "
            "feature:value ...)");
  f.Clear();
  EXPECT_EQ(InvalidMessage(ParseNamedFeatures("|u a |ad id:x", &f)),
            "namespace 2 (ad): feature 1: \"id:x\": \"x\" is not a number");
  f.Clear();
  EXPECT_EQ(InvalidMessage(ParseNamedFeatures("|u a :3", &f)),
            "namespace 1 (u): feature 2: \":3\" has no name");
  f.Clear();
  int64_t column = 0;
  EXPECT_EQ(InvalidMessage(ParseNamedFeatures("|u:x a", &f, &column)),
            "namespace 1 (u): weight \"x\" is not a number");
  EXPECT_EQ(column, 4);
  f.Clear();
  EXPECT_EQ(InvalidMessage(ParseNamedFeatures("|u a |ad id:x", &f, &column)),
            "namespace 2 (ad): feature 1: \"id:x\": \"x\" is not a number");
  EXPECT_EQ(column, 13);
}

TEST(NamedFeaturesTest, NamespaceWeightsScaleTheValues) {
  v1::Features f;
  ASSERT_TRUE(ParseNamedFeatures("|u:2 a b:1.5 |v c |:0.5 d", &f).ok());
  EXPECT_THAT(Named(f), ElementsAre("u/a=2.000000", "u/b=3.000000", "v/c=-",
                                    "/d=0.500000"));
  f.Clear();
  EXPECT_EQ(InvalidMessage(ParseNamedFeatures("|u:1e38 a:10", &f)),
            "namespace 1 (u): feature 1: \"a:10\" times the namespace "
            "weight 1e+38 is not finite");
}

TEST(NamedFeaturesTest, VwLinesCarryALabelAndNamespaces) {
  v1::Example e;
  ASSERT_TRUE(ParseVwLine("1 |user age:3 |ad id123", &e).ok());
  EXPECT_EQ(e.label(), 1.0f);
  EXPECT_THAT(Named(e.features()),
              ElementsAre("user/age=3.000000", "ad/id123=-"));
  EXPECT_EQ(InvalidMessage(ParseVwLine("1 user age:3", &e)),
            "expected label |namespace feature ... (no '|')");
  EXPECT_EQ(InvalidMessage(ParseVwLine("yes |u a", &e)),
            "label: \"yes\" is not a number");
  EXPECT_EQ(*FileFormatOfPath("clicks.vw"), FileFormat::kVw);
  EXPECT_EQ(*ParseFileFormat("vw"), FileFormat::kVw);
}

}  // namespace
}  // namespace lepton::client
