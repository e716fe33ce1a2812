// lepton_client with a Vowpal Wabbit file, against a real server on a
// loopback port: VW's labels are mapped when the file shows them (and the
// command says so), --vw_labels maps them on request, the requests carry
// exactly what the reader parsed (a model trained by the command equals one
// fed the parsed examples directly), and a bad line names its line and
// column.
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "client/cli/commands.h"
#include "client/client.h"
#include "client/example_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli_server_test.h"
#include "tests/testing/scratch_dir_fixture.h"

namespace lepton::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const char kEveryForm[] = LEPTON_TEST_DATA_DIR "/every_form.vw";

class CliVwTest : public CliServerTest {
 protected:
  void SetUp() override {
    CliServerTest::SetUp();
    ASSERT_FALSE(dir_.path().empty());
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.Path(name);
    std::ofstream(path) << text;
    return path;
  }

  void Create(const std::string& model, const std::vector<std::string>& flags) {
    std::vector<std::string> args = {model};
    args.insert(args.end(), flags.begin(), flags.end());
    const RunResult o = Run(RunCreate, args);
    ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  }

  // The model's prediction for `instance`, through the in-process client.
  v1::Prediction Predict(const std::string& model,
                         const v1::Features& instance) {
    v1::PredictRequest request;
    request.set_model(model);
    *request.add_instances() = instance;
    absl::StatusOr<v1::PredictResponse> r = client_->Predict(request);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->predictions(0) : v1::Prediction();
  }

  testing::TestScratchDir dir_{"lepton-cli-vw"};
};

TEST_F(CliVwTest, TrainMapsDetectedVwLabelsAndSendsWhatWasParsed) {
  const std::vector<std::string> spec = {"--type=logistic",
                                         "--num_features=4096",
                                         "--hash_seed=42", "--interactions=ua"};
  Create("cli", spec);
  Create("ref", spec);
  RunResult o = Run(RunTrain, {"cli", kEveryForm, "--batch=4", "--progress=0"});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_THAT(o.err, HasSubstr("every_form.vw: VW labels, -1/1 -> 0/1: line 2 "
                               "has label -1, which only VW's convention "
                               "has"));
  EXPECT_THAT(o.out, HasSubstr("\nexamples: 18\n"));
  EXPECT_THAT(o.out, HasSubstr("\nvw_labels: -1/1 -> 0/1\n"));

  // The same batches of 4, as the reader parses them, sent directly.
  absl::StatusOr<std::unique_ptr<ExampleReader>> reader = ExampleReader::Open(
      kEveryForm,
      {.format = FileFormat::kVw, .vw_labels = VwLabels::kLogistic});
  ASSERT_TRUE(reader.ok()) << reader.status();
  ExampleBatch batch;
  v1::UpdateRequest request;
  request.set_model("ref");
  while (true) {
    absl::StatusOr<int> n = (*reader)->NextBatch(4, &batch);
    ASSERT_TRUE(n.ok()) << n.status();
    if (*n == 0) break;
    *request.mutable_examples() = batch.examples;
    absl::StatusOr<v1::UpdateResponse> r = client_->Update(request);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  // Bit for bit the same model: the same probabilities everywhere.
  v1::Features probe;
  v1::Namespace* user = probe.add_namespaces();
  user->set_name("user");
  user->add_features()->set_name("age");
  user->mutable_features(0)->set_value(3);
  v1::Namespace* ad = probe.add_namespaces();
  ad->set_name("ad");
  ad->add_features()->set_name("id123");
  for (const char* ns : {"a", "b", ""}) {
    v1::Namespace* more = probe.add_namespaces();
    more->set_name(ns);
    more->add_features()->set_name("x");
  }
  const v1::Prediction cli = Predict("cli", probe);
  const v1::Prediction ref = Predict("ref", probe);
  ASSERT_EQ(cli.probabilities_size(), ref.probabilities_size());
  for (int i = 0; i < cli.probabilities_size(); ++i) {
    EXPECT_EQ(cli.probabilities(i), ref.probabilities(i));
  }
  EXPECT_EQ(cli.label(), ref.label());
  EXPECT_EQ(cli.value(), ref.value());
  EXPECT_NE(cli.value(), 0.5f);  // it did learn

  // eval maps them too, and says so.
  o = Run(RunEval, {"cli", kEveryForm});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_THAT(o.out, HasSubstr("\nvw_labels: -1/1 -> 0/1\n"));
}

TEST_F(CliVwTest, VwLabelsFlagMapsClassesOnRequest) {
  Create("m", {"--type=softmax", "--num_features=1024", "--num_classes=3"});
  const std::string file = Write("classes.vw", "1 |a x\n2 |a y\n1 |a z\n");
  // 1..2 only: either convention reads it; as written, with a note.
  RunResult o = Run(RunUpdate, {"m", file});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_THAT(o.err, HasSubstr("classes.vw: every label is in 1..2: read as "
                               "Lepton's classes; if they are VW's 1..3, pass "
                               "--vw_labels"));
  EXPECT_THAT(o.out, Not(HasSubstr("vw_labels")));
  o = Run(RunUpdate, {"m", file, "--vw_labels"});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_THAT(o.err, HasSubstr("classes.vw: VW labels, 1..3 -> 0..2 "
                               "(--vw_labels)"));
  EXPECT_THAT(o.out, HasSubstr("\nvw_labels: 1..3 -> 0..2\n"));
  // A label 3 says VW's: mapped without the flag.
  const std::string vw = Write("vw.vw", "1 |a x\n3 |a y\n");
  o = Run(RunTrain, {"m", vw, "--progress=0"});
  ASSERT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_THAT(o.out, HasSubstr("\nvw_labels: 1..3 -> 0..2\n"));
}

TEST_F(CliVwTest, ABadLineNamesItsLineAndColumn) {
  Create("m", {"--type=logistic", "--num_features=1024"});
  const std::string file =
      Write("bad.vw", "-1 |a x\n1 'id |a y\n1 |a z:oops\n");
  RunResult o = Run(RunTrain, {"m", file, "--progress=0"});
  EXPECT_EQ(o.exit_code, kExitFailure);
  EXPECT_THAT(o.err, HasSubstr(file + ":3:8: namespace 1 (a): feature 1: "
                                      "\"z:oops\": \"oops\" is not a number"));
  const std::string mixed = Write("mixed.vw", "-1 |a x\n0 |a y\n");
  o = Run(RunTrain, {"m", mixed, "--progress=0"});
  EXPECT_EQ(o.exit_code, kExitFailure);
  EXPECT_THAT(o.err, HasSubstr(mixed + ":2:1: label: 0 is not a VW label of "
                                       "a logistic model (-1 or 1)"));
  // --vw_labels is for .vw files only.
  const std::string csv = Write("a.csv", "1,2\n");
  o = Run(RunTrain, {"m", csv, "--vw_labels", "--progress=0"});
  EXPECT_EQ(o.exit_code, kExitFailure);
  EXPECT_THAT(o.err, HasSubstr("--vw_labels: only for the vw format"));
}

}  // namespace
}  // namespace lepton::client
