// `lepton_client update --prediction_ids=ID:LABEL[:WEIGHT],...`: the parser
// of delayed labels.
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "client/cli/commands.h"

namespace lepton::client {
namespace {

TEST(ParsePredictionLabelsTest, IdsLabelsAndOptionalWeights) {
  google::protobuf::RepeatedPtrField<v1::Example> examples;
  ASSERT_TRUE(
      ParsePredictionLabels("18446744073709551615:1,42:0:2.5,7:3", &examples)
          .ok());
  ASSERT_EQ(examples.size(), 3);
  EXPECT_EQ(examples[0].prediction_id(), 18446744073709551615u);
  EXPECT_EQ(examples[0].label(), 1.0f);
  EXPECT_FALSE(examples[0].has_weight());
  EXPECT_FALSE(examples[0].has_features());
  EXPECT_EQ(examples[1].prediction_id(), 42u);
  EXPECT_EQ(examples[1].label(), 0.0f);
  EXPECT_EQ(examples[1].weight(), 2.5f);
  EXPECT_EQ(examples[2].label(), 3.0f);
}

TEST(ParsePredictionLabelsTest, RejectsMalformedItems) {
  for (const char* bad :
       {"", "5", "0:1", "x:1", "5:y", "5:1:2:3", "5:1,,6:0", "5:1:w", "-5:1"}) {
    google::protobuf::RepeatedPtrField<v1::Example> examples;
    absl::Status s = ParsePredictionLabels(bad, &examples);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  google::protobuf::RepeatedPtrField<v1::Example> examples;
  EXPECT_TRUE(absl::StartsWith(
      ParsePredictionLabels("5:1,6", &examples).message(), "item 1 \"6\""));
}

}  // namespace
}  // namespace lepton::client
