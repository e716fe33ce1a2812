// The command line's drift, holdout and guardrail flags against a real server
// on a loopback port: create's --drift_* and --guardrail* flags reach the
// spec (info prints them, unset ones take the server's defaults), bad enum
// names are usage errors (exit 2), update and train send holdout examples
// (counted in holdout_examples, not examples_seen), and a guardrail refusal
// exits 1 with the server's message.
#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "client/cli/commands.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli_server_test.h"
#include "tests/testing/scratch_dir_fixture.h"

namespace lepton::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

TEST(HoldoutPeriodTest, RoundsTheInverseAndRejectsOutOfRange) {
  EXPECT_EQ(HoldoutPeriod(0).value(), 0);
  EXPECT_EQ(HoldoutPeriod(1).value(), 1);
  EXPECT_EQ(HoldoutPeriod(0.5).value(), 2);
  EXPECT_EQ(HoldoutPeriod(0.1).value(), 10);
  EXPECT_EQ(HoldoutPeriod(0.3).value(), 3);
  EXPECT_EQ(HoldoutPeriod(-0.1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HoldoutPeriod(1.5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(HoldoutPeriod(std::nan("")).ok());
}

TEST(ParseAdaptationNamesTest, NamesAndEnumNames) {
  EXPECT_EQ(ParseDriftDetector("adwin").value(), v1::ADWIN);
  EXPECT_EQ(ParseDriftDetector("Page_Hinkley").value(), v1::PAGE_HINKLEY);
  EXPECT_EQ(ParseDriftDetector("none").value(), v1::NO_DRIFT_DETECTOR);
  EXPECT_EQ(ParseDriftDetector("NO_DRIFT_DETECTOR").value(),
            v1::NO_DRIFT_DETECTOR);
  EXPECT_FALSE(ParseDriftDetector("kswin").ok());
  EXPECT_EQ(ParseDriftPolicy("alert").value(), v1::ALERT);
  EXPECT_EQ(ParseDriftPolicy("BOOST").value(), v1::BOOST);
  EXPECT_EQ(ParseDriftPolicy("challenger").value(), v1::CHALLENGER);
  EXPECT_FALSE(ParseDriftPolicy("").ok());
  EXPECT_EQ(ParseGuardrailPolicy("off").value(), v1::GUARDRAIL_OFF);
  EXPECT_EQ(ParseGuardrailPolicy("reject").value(), v1::GUARDRAIL_REJECT);
  EXPECT_EQ(ParseGuardrailPolicy("GUARDRAIL_REJECT").value(),
            v1::GUARDRAIL_REJECT);
  EXPECT_EQ(ParseGuardrailPolicy("quarantine").value(),
            v1::GUARDRAIL_QUARANTINE);
  EXPECT_FALSE(ParseGuardrailPolicy("strict").ok());
}

class CliAdaptationTest : public CliServerTest {
 protected:
  void SetUp() override {
    CliServerTest::SetUp();
    ASSERT_FALSE(dir_.path().empty());
  }

  // A CSV file of one-feature examples "label,x", one per line.
  std::string WriteCsv(const std::string& name,
                       const std::vector<std::pair<float, float>>& rows) {
    const std::string path = dir_.Path(name);
    std::ofstream out(path);
    for (const auto& [label, x] : rows) out << label << "," << x << "\n";
    return path;
  }

  testing::TestScratchDir dir_{"lepton-cli-adaptation"};
};

TEST_F(CliAdaptationTest, CreateFlagsReachTheSpecAndInfoShowsThem) {
  RunResult o =
      Run(RunCreate, {"m", "--type=linear", "--num_features=1",
                      "--drift_detector=page_hinkley", "--drift_policy=boost",
                      "--boost_factor=3", "--boost_examples=200",
                      "--guardrail=reject", "--guardrail_tolerance=0.25",
                      "--holdout_capacity=500", "--min_holdout=5"});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  o = Run(RunInfo, {"m"});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  // The lines that were there before stay, in their place.
  EXPECT_THAT(o.out, StartsWith("name: m\ntype: LINEAR_REGRESSION\n"));
  EXPECT_THAT(o.out, HasSubstr("\nexamples_seen: 0\n"));
  EXPECT_THAT(o.out, HasSubstr("\ndrift_detector: PAGE_HINKLEY\n"));
  EXPECT_THAT(o.out, HasSubstr("\ndrift_policy: BOOST\n"));
  EXPECT_THAT(o.out, HasSubstr("\nboost_factor: 3\n"));
  EXPECT_THAT(o.out, HasSubstr("\nboost_examples: 200\n"));
  EXPECT_THAT(o.out, Not(HasSubstr("challenger_window:")));
  EXPECT_THAT(o.out, HasSubstr("\nguardrail: GUARDRAIL_REJECT\n"));
  EXPECT_THAT(o.out, HasSubstr("\nguardrail_tolerance: 0.25\n"));
  EXPECT_THAT(o.out, HasSubstr("\nholdout_capacity: 500\n"));
  EXPECT_THAT(o.out, HasSubstr("\nmin_holdout: 5\n"));
  EXPECT_THAT(o.out, HasSubstr("\ndrift_state: "));
  EXPECT_THAT(o.out, HasSubstr("\ndrifts: 0\n"));
  EXPECT_THAT(o.out, HasSubstr("\nchange_example: 0\n"));
  EXPECT_THAT(o.out, HasSubstr("\nboost_remaining: 0\n"));
  EXPECT_THAT(o.out, HasSubstr("\nchallenger_active: false\n"));
  EXPECT_THAT(o.out, HasSubstr("\npromotions: 0\n"));
  EXPECT_THAT(o.out, HasSubstr("\nholdout_examples: 0\n"));
  EXPECT_THAT(o.out, HasSubstr("\nvalidation_loss: 0.000000\n"));
  EXPECT_THAT(o.out, HasSubstr("\nrefused_updates: 0\n"));

  o = Run(RunCreate,
          {"c", "--type=logistic", "--num_features=1", "--drift_detector=none",
           "--drift_policy=challenger", "--challenger_window=100",
           "--challenger_max_examples=5000"});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_THAT(o.out, HasSubstr("\ndrift_detector: NO_DRIFT_DETECTOR\n"));
  EXPECT_THAT(o.out, HasSubstr("\ndrift_policy: CHALLENGER\n"));
  EXPECT_THAT(o.out, HasSubstr("\nchallenger_window: 100\n"));
  EXPECT_THAT(o.out, HasSubstr("\nchallenger_max_examples: 5000\n"));
  EXPECT_THAT(o.out, Not(HasSubstr("boost_factor:")));
}

TEST_F(CliAdaptationTest, UnsetFlagsTakeTheServersDefaults) {
  const RunResult o =
      Run(RunCreate, {"d", "--type=linear", "--num_features=2"});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_THAT(o.out, HasSubstr("\ndrift_detector: ADWIN\n"));
  EXPECT_THAT(o.out, HasSubstr("\ndrift_policy: CHALLENGER\n"));
  EXPECT_THAT(o.out, HasSubstr("\nguardrail: GUARDRAIL_OFF\n"));
  EXPECT_THAT(o.out, HasSubstr("\nguardrail_tolerance: 0.02\n"));
  EXPECT_THAT(o.out, HasSubstr("\nholdout_capacity: 10000\n"));
  EXPECT_THAT(o.out, HasSubstr("\nmin_holdout: 50\n"));
  EXPECT_THAT(o.out, HasSubstr("\nquarantine_capacity: 8\n"));
  EXPECT_THAT(o.out, HasSubstr("\nrecheck_holdout: 50\n"));
}

TEST_F(CliAdaptationTest, BadNamesAndFractionsAreUsageErrors) {
  struct Case {
    int (*run)(const CommandArgs&, const GlobalOptions&);
    CommandArgs args;
    std::string err;
  };
  const std::string file = WriteCsv("a.csv", {{1, 1}});
  const std::vector<Case> cases = {
      {RunCreate,
       {"m", "--type=linear", "--num_features=1", "--drift_detector=kswin"},
       "lepton_client: create: --drift_detector: unknown drift detector "
       "\"kswin\" (adwin, page_hinkley or none)\n"},
      {RunCreate,
       {"m", "--type=linear", "--num_features=1", "--drift_policy=retrain"},
       "lepton_client: create: --drift_policy: unknown drift policy "
       "\"retrain\" (alert, boost or challenger)\n"},
      {RunCreate,
       {"m", "--type=linear", "--num_features=1", "--guardrail=strict"},
       "lepton_client: create: --guardrail: unknown guardrail \"strict\" (off, "
       "reject or quarantine)\n"},
      {RunCreate,
       {"m", "--type=linear", "--num_features=1", "--holdout_capacity=-1"},
       "lepton_client: create: --holdout_capacity: -1 is out of range\n"},
      {RunUpdate,
       {"m", file, "--holdout_fraction=1.5"},
       "lepton_client: update: --holdout_fraction: must be in [0, 1], got "
       "1.5\n"},
      {RunUpdate,
       {"m", "--prediction_ids=5:1", "--holdout_fraction=0.5"},
       "lepton_client: update: --holdout_fraction: needs FILE\n"},
      {RunUpdate,
       {"m"},
       "lepton_client: update: give exactly one of FILE, --prediction_ids "
       "(or only --holdout_file)\n"},
      {RunTrain,
       {"m", file, "--holdout_fraction=-0.5"},
       "lepton_client: train: --holdout_fraction: must be in [0, 1], got "
       "-0.5\n"},
  };
  for (const Case& c : cases) {
    const RunResult o = Run(c.run, c.args);
    EXPECT_EQ(o.exit_code, kExitUsage) << c.err;
    EXPECT_EQ(o.err, c.err);
  }
  // Nothing was created by the failed creates.
  const RunResult o = Run(RunInfo, {"m"});
  EXPECT_EQ(o.exit_code, kExitFailure);
  EXPECT_THAT(o.err, HasSubstr("NOT_FOUND"));
}

TEST_F(CliAdaptationTest, HoldoutExamplesAreCountedApartFromTraining) {
  ASSERT_EQ(
      Run(RunCreate, {"m", "--type=linear", "--num_features=1"}).exit_code,
      kExitOk);
  std::vector<std::pair<float, float>> rows;
  for (int i = 0; i < 10; ++i) rows.push_back({0.5f * i, 0.1f * i});
  const std::string file = WriteCsv("train.csv", rows);

  // Positions 0, 2, 4, 6, 8 are holdout.
  RunResult o = Run(RunUpdate, {"m", file, "--holdout_fraction=0.5"});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_THAT(o.out, HasSubstr("\nexamples: 10\n"));
  EXPECT_THAT(o.out, HasSubstr("\nholdout: 5\n"));
  o = Run(RunInfo, {"m"});
  EXPECT_THAT(o.out, HasSubstr("\nexamples_seen: 5\n"));
  EXPECT_THAT(o.out, HasSubstr("\nholdout_examples: 5\n"));

  // An update without holdout prints as before.
  o = Run(RunUpdate, {"m", file});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_THAT(o.out, Not(HasSubstr("holdout")));

  // Holdout-only update: a whole file.
  const std::string holdout = WriteCsv("holdout.csv", {{1, 1}, {2, 2}, {3, 3}});
  o = Run(RunUpdate, {"m", "--holdout_file", holdout});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_THAT(o.out, HasSubstr("\nholdout: 3\n"));
  o = Run(RunInfo, {"m"});
  EXPECT_THAT(o.out, HasSubstr("\nexamples_seen: 15\n"));
  EXPECT_THAT(o.out, HasSubstr("\nholdout_examples: 8\n"));

  // train: the holdout file first, then FILE with every third example held
  // out (positions 0, 3, 6, 9 across batches of 4).
  o = Run(RunTrain, {"m", file, "--holdout_file=" + holdout,
                     "--holdout_fraction=0.3", "--batch=4", "--progress=0"});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_THAT(o.out, HasSubstr("\nexamples: 13\n"));
  EXPECT_THAT(o.out, HasSubstr("\nholdout: 7\n"));
  o = Run(RunInfo, {"m"});
  EXPECT_THAT(o.out, HasSubstr("\nexamples_seen: 21\n"));
  EXPECT_THAT(o.out, HasSubstr("\nholdout_examples: 15\n"));
  EXPECT_THAT(o.out, Not(HasSubstr("\nvalidation_loss: 0.000000\n")));
}

TEST_F(CliAdaptationTest, GuardrailRefusalExitsOneWithTheServersMessage) {
  ASSERT_EQ(Run(RunCreate,
                {"g", "--type=linear", "--num_features=1", "--guardrail=reject",
                 "--guardrail_tolerance=0", "--min_holdout=2"})
                .exit_code,
            kExitOk);
  // The zero model predicts these exactly: validation loss 0, so any
  // training that moves the weights raises it.
  const std::string holdout = WriteCsv("holdout.csv", {{0, 1}, {0, 2}});
  RunResult o = Run(RunUpdate, {"g", "--holdout_file=" + holdout});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  const std::string train = WriteCsv("train.csv", {{5, 1}, {6, 2}});

  o = Run(RunUpdate, {"g", train});
  EXPECT_EQ(o.exit_code, kExitFailure);
  EXPECT_EQ(o.out, "");
  EXPECT_THAT(o.err, StartsWith("lepton_client: update: guardrail: this "
                                "update would raise the validation loss"));
  EXPECT_THAT(o.err, HasSubstr("(FAILED_PRECONDITION)\n"));

  o = Run(RunTrain, {"g", train, "--progress=0"});
  EXPECT_EQ(o.exit_code, kExitFailure);
  EXPECT_THAT(o.err, StartsWith("lepton_client: train: guardrail: this "
                                "update would raise the validation loss"));
  EXPECT_THAT(o.err, HasSubstr("FAILED_PRECONDITION"));

  o = Run(RunInfo, {"g"});
  EXPECT_THAT(o.out, HasSubstr("\nexamples_seen: 0\n"));
  EXPECT_THAT(o.out, HasSubstr("\nholdout_examples: 2\n"));
  EXPECT_THAT(o.out, HasSubstr("\nrefused_updates: 2\n"));
}

TEST_F(CliAdaptationTest, QuarantineHoldsBackAndSaysSo) {
  RunResult o =
      Run(RunCreate,
          {"q", "--type=linear", "--num_features=1", "--guardrail=quarantine",
           "--guardrail_tolerance=0", "--min_holdout=2",
           "--quarantine_capacity=4", "--recheck_holdout=2"});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_THAT(o.out, HasSubstr("\nguardrail: GUARDRAIL_QUARANTINE\n"));
  EXPECT_THAT(o.out, HasSubstr("\nquarantine_capacity: 4\n"));
  EXPECT_THAT(o.out, HasSubstr("\nrecheck_holdout: 2\n"));
  // As above: the zero model predicts the holdout set exactly.
  const std::string holdout = WriteCsv("holdout.csv", {{0, 1}, {0, 2}});
  ASSERT_EQ(Run(RunUpdate, {"q", "--holdout_file=" + holdout}).exit_code,
            kExitOk);
  const std::string train = WriteCsv("train.csv", {{5, 1}, {6, 2}});
  o = Run(RunUpdate, {"q", train});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_THAT(o.out, HasSubstr("\nquarantined: true\n"));
  // Two newer holdout examples of the same (zero) rule: dropped.
  const std::string fresh = WriteCsv("fresh.csv", {{0, 3}, {0, 4}});
  o = Run(RunUpdate, {"q", "--holdout_file=" + fresh});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_THAT(o.out, HasSubstr("\nquarantine_dropped: 1\n"));
  EXPECT_THAT(o.out, Not(HasSubstr("quarantined: true")));
  o = Run(RunInfo, {"q"});
  EXPECT_THAT(o.out, HasSubstr("\nexamples_seen: 0\n"));
  EXPECT_THAT(o.out, HasSubstr("\nquarantine_held: 0\n"));
  EXPECT_THAT(o.out, HasSubstr("\nquarantined_updates: 1\n"));
  EXPECT_THAT(o.out, HasSubstr("\nquarantine_dropped: 1\n"));
}

}  // namespace
}  // namespace lepton::client
