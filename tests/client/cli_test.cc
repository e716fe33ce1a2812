// The command line's parts that do not need a server: flag parsing, error
// locating and wording, and the eval metrics.
#include <cmath>
#include <string>
#include <vector>

#include "client/cli/cli_common.h"
#include "client/cli/cli_flags.h"
#include "client/cli/eval_metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lepton::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Vars {
  std::string name = "x";
  int64_t count = 3;
  double rate = 0.5;
  bool flag = false;
  absl::Duration wait = absl::Seconds(30);
};

FlagSet MakeFlags(Vars* v) {
  FlagSet flags("prog CMD ARG", "Does things.");
  flags.String("name", &v->name, "a name");
  flags.Int("count", &v->count, "a count");
  flags.Double("rate", &v->rate, "a rate");
  flags.Bool("flag", &v->flag, "a switch");
  flags.Duration("wait", &v->wait, "a wait");
  return flags;
}

TEST(FlagSetTest, ParsesBothSyntaxesAndKeepsPositionals) {
  Vars v;
  FlagSet flags = MakeFlags(&v);
  absl::StatusOr<std::vector<std::string>> rest =
      flags.Parse({"a", "--name=y", "--count", "7", "b", "--rate=-1.5",
                   "--flag", "-wait=500ms", "--", "--not-a-flag"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_THAT(*rest, ElementsAre("a", "b", "--not-a-flag"));
  EXPECT_EQ(v.name, "y");
  EXPECT_EQ(v.count, 7);
  EXPECT_EQ(v.rate, -1.5);
  EXPECT_TRUE(v.flag);
  EXPECT_EQ(v.wait, absl::Milliseconds(500));
  EXPECT_TRUE(flags.IsSet("count"));
  EXPECT_FALSE(flags.help());
}

TEST(FlagSetTest, UnsetFlagsKeepTheirDefaults) {
  Vars v;
  FlagSet flags = MakeFlags(&v);
  ASSERT_TRUE(flags.Parse({"--flag=false"}).ok());
  EXPECT_FALSE(v.flag);
  EXPECT_EQ(v.count, 3);
  EXPECT_FALSE(flags.IsSet("count"));
  EXPECT_TRUE(flags.IsSet("flag"));
}

TEST(FlagSetTest, ReportsUsageErrorsNamingTheFlag) {
  Vars v;
  FlagSet flags = MakeFlags(&v);
  EXPECT_EQ(flags.Parse({"--nope=1"}).status().message(),
            "unknown flag --nope (see --help)");
  EXPECT_EQ(flags.Parse({"--count=abc"}).status().message(),
            "--count: \"abc\" is not an integer");
  EXPECT_EQ(flags.Parse({"--rate=fast"}).status().message(),
            "--rate: \"fast\" is not a number");
  EXPECT_EQ(flags.Parse({"--flag=maybe"}).status().message(),
            "--flag: \"maybe\" is not true or false");
  EXPECT_EQ(flags.Parse({"--wait=soon"}).status().message(),
            "--wait: \"soon\" is not a duration (e.g. 30s, 500ms, inf)");
  EXPECT_EQ(flags.Parse({"--name"}).status().message(), "--name needs a value");
}

TEST(FlagSetTest, HelpStopsParsingAndUsageListsDefaults) {
  Vars v;
  FlagSet flags = MakeFlags(&v);
  ASSERT_TRUE(flags.Parse({"a", "--help", "--nope"}).ok());
  EXPECT_TRUE(flags.help());
  const std::string usage = flags.Usage();
  EXPECT_THAT(usage, HasSubstr("Usage: prog CMD ARG\n"));
  EXPECT_THAT(usage, HasSubstr("Does things."));
  EXPECT_THAT(usage, HasSubstr("--count=...\n      a count (default 3)"));
  EXPECT_THAT(usage, HasSubstr("--flag\n      a switch (default false)"));
  EXPECT_THAT(usage, HasSubstr("--wait=...\n      a wait (default 30s)"));
}

TEST(FlagSetTest, StopAtPositionalLeavesTheCommandsArguments) {
  Vars v;
  FlagSet flags = MakeFlags(&v);
  absl::StatusOr<std::vector<std::string>> rest =
      flags.Parse({"--name", "z", "train", "--count=9", "m"},
                  /*stop_at_positional=*/true);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_THAT(*rest, ElementsAre("train", "--count=9", "m"));
  EXPECT_EQ(v.name, "z");
  EXPECT_EQ(v.count, 3);
}

TEST(CliCommonTest, ItemIndexOfError) {
  EXPECT_EQ(ItemIndexOfError("examples[7].label: bad", "examples"), 7);
  EXPECT_EQ(ItemIndexOfError("instances[0].dense: bad", "instances"), 0);
  EXPECT_EQ(ItemIndexOfError("examples: must not be empty", "examples"),
            std::nullopt);
  EXPECT_EQ(ItemIndexOfError("instances[0]: x", "examples"), std::nullopt);
  EXPECT_EQ(ItemIndexOfError("examples[x]: x", "examples"), std::nullopt);
  EXPECT_EQ(ItemIndexOfError("examples[3", "examples"), std::nullopt);
}

TEST(CliCommonTest, LocateErrorPointsAtTheFileLine) {
  const std::vector<int64_t> lines = {10, 12, 13};
  EXPECT_EQ(LocateError("examples[1].label: must be 0 or 1, got 2", "examples",
                        "a.csv", lines),
            "a.csv:12: examples[1].label: must be 0 or 1, got 2");
  EXPECT_EQ(LocateError("examples[3].label: x", "examples", "a.csv", lines),
            "examples[3].label: x");
  EXPECT_EQ(LocateError("model \"m\" not found", "examples", "a.csv", lines),
            "model \"m\" not found");
}

TEST(CliCommonTest, DescribeRpcErrorNamesTheTargetWhenItIsTheProblem) {
  GlobalOptions global;
  global.target = "db:7";
  global.deadline = absl::Seconds(2);
  EXPECT_EQ(
      DescribeRpcError(absl::UnavailableError("failed to connect"), global),
      "server at db:7 unavailable: failed to connect (UNAVAILABLE)");
  EXPECT_EQ(DescribeRpcError(absl::DeadlineExceededError("Deadline Exceeded"),
                             global),
            "no answer from the server at db:7 within --deadline=2s: Deadline "
            "Exceeded (DEADLINE_EXCEEDED)");
  EXPECT_EQ(
      DescribeRpcError(absl::NotFoundError("model \"m\" not found"), global),
      "model \"m\" not found (NOT_FOUND)");
}

TEST(CliCommonTest, ClientOptionsAreChecked) {
  GlobalOptions global;
  ASSERT_TRUE(ToClientOptions(global).ok());
  EXPECT_EQ(ToClientOptions(global)->max_message_bytes, 64 << 20);
  global.max_message_bytes = 10;
  EXPECT_FALSE(ToClientOptions(global).ok());
  global.max_message_bytes = 1 << 20;
  global.deadline = absl::ZeroDuration();
  EXPECT_EQ(ToClientOptions(global).status().message(),
            "--deadline: must be positive");
}

TEST(CliCommonTest, FileOptionsFromFlags) {
  FileFlags flags;
  absl::StatusOr<ExampleFileOptions> o = ToFileOptions(flags, "a.svm", 9);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->format, FileFormat::kLibsvm);
  EXPECT_EQ(o->num_features, 9);
  flags.format = "csv";
  flags.header = true;
  o = ToFileOptions(flags, "a.data", 9);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->format, FileFormat::kCsv);
  EXPECT_TRUE(o->header);
  flags.format = "auto";
  EXPECT_THAT(ToFileOptions(flags, "a.data", 9).status().message(),
              HasSubstr("with --format"));
}

TEST(CliCommonTest, ModelTypeAndOptimizerNames) {
  EXPECT_EQ(*ParseModelType("softmax"), v1::SOFTMAX_REGRESSION);
  EXPECT_EQ(*ParseModelType("LOGISTIC_REGRESSION"), v1::LOGISTIC_REGRESSION);
  EXPECT_EQ(*ParseModelType("Linear"), v1::LINEAR_REGRESSION);
  EXPECT_FALSE(ParseModelType("tree").ok());
  EXPECT_EQ(*ParseOptimizerKind("sgd"), v1::SGD);
  EXPECT_EQ(*ParseOptimizerKind("AdaGrad"), v1::ADAGRAD);
  EXPECT_EQ(*ParseOptimizerKind("ftrl"), v1::FTRL);
  EXPECT_EQ(*ParseOptimizerKind("Adam"), v1::ADAM);
  EXPECT_FALSE(ParseOptimizerKind("rmsprop").ok());
}

v1::Prediction Softmax(int label, std::vector<float> probabilities) {
  v1::Prediction p;
  p.set_label(label);
  p.set_value(probabilities[label]);
  for (float q : probabilities) p.add_probabilities(q);
  return p;
}

TEST(EvalMetricsTest, SoftmaxAccuracyAndLogLoss) {
  EvalMetrics m(v1::SOFTMAX_REGRESSION, 3);
  ASSERT_TRUE(m.Add(0, Softmax(0, {0.5f, 0.25f, 0.25f})).ok());
  ASSERT_TRUE(m.Add(2, Softmax(0, {0.5f, 0.25f, 0.25f})).ok());
  EXPECT_EQ(m.count(), 2);
  EXPECT_DOUBLE_EQ(m.accuracy(), 0.5);
  EXPECT_DOUBLE_EQ(m.log_loss(), (std::log(2.0) + std::log(4.0)) / 2);
  EXPECT_TRUE(m.is_classifier());
}

TEST(EvalMetricsTest, AnUnderflowedProbabilityIsClipped) {
  EvalMetrics m(v1::SOFTMAX_REGRESSION, 2);
  ASSERT_TRUE(m.Add(1, Softmax(0, {1.0f, 0.0f})).ok());
  EXPECT_DOUBLE_EQ(m.log_loss(), -std::log(1e-15));
  EXPECT_DOUBLE_EQ(m.accuracy(), 0);
}

TEST(EvalMetricsTest, LogisticUsesTheProbabilityOfOne) {
  EvalMetrics m(v1::LOGISTIC_REGRESSION, 0);
  v1::Prediction p;
  p.set_value(0.8f);
  p.set_label(1);
  ASSERT_TRUE(m.Add(1, p).ok());
  ASSERT_TRUE(m.Add(0, p).ok());
  EXPECT_DOUBLE_EQ(m.accuracy(), 0.5);
  EXPECT_NEAR(m.log_loss(), (-std::log(0.8) - std::log(0.2)) / 2, 1e-6);
}

TEST(EvalMetricsTest, LinearRmse) {
  EvalMetrics m(v1::LINEAR_REGRESSION, 0);
  v1::Prediction p;
  p.set_value(1.0f);
  ASSERT_TRUE(m.Add(4, p).ok());   // error 3
  ASSERT_TRUE(m.Add(-3, p).ok());  // error 4
  EXPECT_FALSE(m.is_classifier());
  EXPECT_DOUBLE_EQ(m.rmse(), std::sqrt((9.0 + 16.0) / 2));
}

TEST(EvalMetricsTest, LabelsMustFitTheModel) {
  EvalMetrics softmax(v1::SOFTMAX_REGRESSION, 10);
  EXPECT_TRUE(softmax.CheckLabel(9).ok());
  EXPECT_EQ(softmax.CheckLabel(10).message(),
            "label 10 is not a class: expected an integer in [0, 10)");
  EXPECT_EQ(softmax.CheckLabel(1.5f).message(),
            "label 1.5 is not a class: expected an integer in [0, 10)");
  EXPECT_FALSE(softmax.CheckLabel(-1).ok());
  EvalMetrics logistic(v1::LOGISTIC_REGRESSION, 0);
  EXPECT_EQ(logistic.CheckLabel(-1).message(),
            "label -1 is not a class: expected 0 or 1");
  EvalMetrics linear(v1::LINEAR_REGRESSION, 0);
  EXPECT_TRUE(linear.CheckLabel(-123.5f).ok());
  EXPECT_EQ(linear.CheckLabel(NAN).message(), "label nan is not finite");
}

TEST(EvalMetricsTest, RejectsAPredictionOfTheWrongShape) {
  EvalMetrics m(v1::SOFTMAX_REGRESSION, 3);
  v1::Prediction p;
  p.set_label(0);
  EXPECT_EQ(m.Add(0, p).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(m.count(), 0);
}

}  // namespace
}  // namespace lepton::client
