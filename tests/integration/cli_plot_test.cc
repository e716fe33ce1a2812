// `lepton_client --plot` against the real lepton_server, read back through
// Python's XML parser (tests/testing/svg_summary.h): train through a concept
// flip draws the loss and accuracy of every batch and the drift the server
// flagged, where the model says it was; a guardrail refusal ends the run and
// is marked where the applied examples end; eval draws its batches; watch
// rewrites its plot while the model learns and once more at SIGTERM.
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/binaries.h"
#include "tests/testing/scratch_dir_fixture.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/svg_summary.h"

namespace lepton::testing {
namespace {

int64_t IntField(const std::string& out, const std::string& key) {
  int64_t v = -1;
  EXPECT_TRUE(absl::SimpleAtoi(Field(out, key), &v)) << key << " in " << out;
  return v;
}

std::vector<SvgSummary::Marker> MarkersOf(const SvgSummary& svg,
                                          const std::string& kind) {
  std::vector<SvgSummary::Marker> found;
  for (const SvgSummary::Marker& m : svg.markers) {
    if (m.kind == kind) found.push_back(m);
  }
  return found;
}

class CliPlotTest : public ScratchDirTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(ScratchDirTest::SetUp());
    ASSERT_TRUE(server_.Start().ok());
  }

  RunResult Client(std::vector<std::string> args) {
    args.insert(args.begin(),
                {kClientPath, absl::StrCat("--target=", server_.target())});
    return lepton::testing::Run(args);
  }

  // `n` lines "label,x0,x1,x2,x3" of y = [x0 + x1 > 0] (the opposite when
  // `flipped`), x uniform in [-1, 1], from `seed`.
  static void AppendExamples(std::ofstream* out, int n, uint32_t seed,
                             bool flipped) {
    std::mt19937 random(seed);
    for (int i = 0; i < n; ++i) {
      double x[4];
      for (double& v : x) v = random() / 4294967296.0 * 2 - 1;
      const bool y = (x[0] + x[1] > 0) != flipped;
      *out << (y ? 1 : 0);
      for (double v : x) *out << "," << v;
      *out << "\n";
    }
  }

  // `before` examples of the rule, then `after` of its opposite.
  std::string WriteFlip(const std::string& name, int before, int after) {
    const std::string path = Path(name);
    std::ofstream out(path);
    AppendExamples(&out, before, 1, false);
    AppendExamples(&out, after, 2, true);
    return path;
  }

  ServerProcess server_{kServerPath};
};

// A concept flip half way: the loss rises and the accuracy falls after it,
// and the drift the detector flagged is marked where the model says.
TEST_F(CliPlotTest, TrainDrawsEveryBatchAndTheDriftOfAConceptFlip) {
  RunResult r =
      Client({"create", "flip", "--type=logistic", "--num_features=4",
              "--drift_detector=page_hinkley", "--drift_policy=boost"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string data = WriteFlip("flip.csv", 2000, 2000);
  const std::string plot = Path("train.svg");
  r = Client({"train", "flip", data, "--batch=50", "--progress=0",
              absl::StrCat("--plot=", plot)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(Field(r.out, "plot"), plot);
  EXPECT_FALSE(std::filesystem::exists(plot + ".tmp"));

  r = Client({"info", "flip"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const int64_t drifts = IntField(r.out, "drifts");
  const int64_t change_example = IntField(r.out, "change_example");
  ASSERT_GE(drifts, 1) << "the flip was not flagged; the test needs a drift";

  absl::StatusOr<SvgSummary> svg = SummarizeSvg(plot);
  ASSERT_TRUE(svg.ok()) << svg.status();
  EXPECT_TRUE(svg->foreign.empty()) << svg->foreign[0];
  // One vertex per request: 4000 examples in batches of 50.
  for (const char* series :
       {"loss", "loss-running-mean", "accuracy", "accuracy-running-mean"}) {
    ASSERT_EQ(svg->series.count(series), 1u) << series;
    EXPECT_EQ(svg->series.at(series).size(), 80u) << series;
  }
  // Pixels: y grows downwards. The loss is higher (smaller y) and the
  // accuracy lower over the 10 batches after the flip than the 10 before.
  const auto& loss = svg->series.at("loss");
  const auto& accuracy = svg->series.at("accuracy");
  double loss_before = 0, loss_after = 0, acc_before = 0, acc_after = 0;
  for (int i = 0; i < 10; ++i) {
    loss_before += loss[30 + i].second;
    loss_after += loss[40 + i].second;
    acc_before += accuracy[30 + i].second;
    acc_after += accuracy[40 + i].second;
  }
  EXPECT_LT(loss_after, loss_before);
  EXPECT_GT(acc_after, acc_before);
  // Every drift, on both charts, after the flip; the last one where the
  // model's change_example says (the model was new: its examples are the
  // run's).
  const std::vector<SvgSummary::Marker> drift = MarkersOf(*svg, "drift");
  ASSERT_EQ(drift.size(), static_cast<size_t>(2 * drifts));
  for (const SvgSummary::Marker& m : drift) {
    EXPECT_GT(m.x, 2000);
    EXPECT_LE(m.x, 4000);
  }
  EXPECT_EQ(drift.back().x, change_example);
  // The marker's pixel lies within its batch: between the running mean's
  // vertices at the batch's start and end (vertex i at example 50 (i + 1)).
  const auto& running = svg->series.at("loss-running-mean");
  const size_t batch = static_cast<size_t>(change_example - 1) / 50;
  ASSERT_GE(batch, 1u);
  EXPECT_GE(drift.back().pixel_x, running[batch - 1].first - 0.15);
  EXPECT_LE(drift.back().pixel_x, running[batch].first + 0.15);
  // The boost the policy started, as a policy marker at the same example.
  const std::vector<SvgSummary::Marker> policy = MarkersOf(*svg, "policy");
  ASSERT_FALSE(policy.empty());
  EXPECT_EQ(policy.back().x, change_example);
}

// A guardrail refusal ends the run (exit 1); the plot is written all the
// same, its series ending where the applied examples end, and the refusal is
// marked there.
TEST_F(CliPlotTest, TrainMarksTheRefusalThatEndedIt) {
  RunResult r =
      Client({"create", "guarded", "--type=logistic", "--num_features=4",
              "--guardrail=reject", "--optimizer=sgd", "--learning_rate=0.5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string holdout = Path("holdout.csv");
  {
    std::ofstream out(holdout);
    AppendExamples(&out, 200, 3, false);
  }
  const std::string data = WriteFlip("flip.csv", 1000, 1000);
  const std::string plot = Path("refused.svg");
  r = Client({"train", "guarded", data, "--batch=50", "--progress=0",
              absl::StrCat("--holdout_file=", holdout),
              absl::StrCat("--plot=", plot)});
  ASSERT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(absl::StrContains(r.err, "FAILED_PRECONDITION")) << r.err;
  // "...; N examples were applied before it (version V)": the 200 holdout
  // examples (streamed first, never trained on) and the trained ones.
  const size_t at = r.err.find("; ");
  ASSERT_NE(at, std::string::npos) << r.err;
  std::vector<std::string> words = absl::StrSplit(r.err.substr(at + 2), ' ');
  int64_t applied = 0;
  ASSERT_TRUE(absl::SimpleAtoi(words[0], &applied)) << r.err;
  const int64_t trained = applied - 200;
  ASSERT_GT(trained, 0) << r.err;

  absl::StatusOr<SvgSummary> svg = SummarizeSvg(plot);
  ASSERT_TRUE(svg.ok()) << svg.status();
  const std::vector<SvgSummary::Marker> refused = MarkersOf(*svg, "refused");
  ASSERT_EQ(refused.size(), 2u);  // one per chart
  EXPECT_EQ(refused[0].x, trained);
  // The running mean's last vertex is at the end of the applied examples.
  const auto& running = svg->series.at("loss-running-mean");
  EXPECT_EQ(running.size(), static_cast<size_t>(trained / 50));
  EXPECT_NEAR(running.back().first, refused[0].pixel_x, 0.15);
}

TEST_F(CliPlotTest, EvalDrawsEachBatchAndNoMarkers) {
  RunResult r = Client(
      {"create", "m", "--type=softmax", "--num_features=4", "--num_classes=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string data = WriteFlip("data.csv", 1000, 0);
  r = Client({"train", "m", data, "--progress=0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string plot = Path("eval.svg");
  r = Client({"eval", "m", data, "--batch=100", absl::StrCat("--plot=", plot)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "plot"), plot);
  absl::StatusOr<SvgSummary> svg = SummarizeSvg(plot);
  ASSERT_TRUE(svg.ok()) << svg.status();
  EXPECT_EQ(svg->series.at("loss").size(), 10u);
  EXPECT_EQ(svg->series.at("accuracy").size(), 10u);
  EXPECT_TRUE(svg->markers.empty());

  r = Client({"eval", "m", data, "--plot=-"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StartsWith(r.err, "lepton_client: eval: --plot: "))
      << r.err;
}

// watch --plot in its own process: the file appears at once, is rewritten
// while a run trains, and is complete (the drift included) after SIGTERM,
// which ends the watch with exit 0.
TEST_F(CliPlotTest, WatchRewritesItsPlotAndWritesItAtSigterm) {
  RunResult r = Client({"create", "w", "--type=logistic", "--num_features=4",
                        "--drift_detector=page_hinkley"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string plot = Path("watch.svg");
  absl::StatusOr<std::unique_ptr<Subprocess>> watch = Subprocess::Start(
      {kClientPath, absl::StrCat("--target=", server_.target()), "watch",
       "--model=w", "--min_version_interval_ms=50",
       absl::StrCat("--plot=", plot)});
  ASSERT_TRUE(watch.ok()) << watch.status();
  for (int i = 0; i < 300 && !std::filesystem::exists(plot); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(std::filesystem::exists(plot)) << (*watch)->err_text();
  absl::StatusOr<SvgSummary> first = SummarizeSvg(plot);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->series.empty());  // nothing learned yet

  // Two runs with a pause between them, so that the watch sees at least
  // two versions far apart.
  const std::string before = WriteFlip("before.csv", 2000, 0);
  const std::string after = WriteFlip("after.csv", 0, 2000);
  r = Client({"train", "w", before, "--batch=50", "--progress=0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  absl::SleepFor(absl::Milliseconds(300));
  r = Client({"train", "w", after, "--batch=50", "--progress=0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Rewritten within about a second of the model's last version.
  bool rewritten = false;
  for (int i = 0; i < 100 && !rewritten; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    absl::StatusOr<SvgSummary> now = SummarizeSvg(plot);
    ASSERT_TRUE(now.ok()) << now.status();  // never a partial file
    rewritten =
        now->series.count("loss") == 1 && !MarkersOf(*now, "drift").empty();
  }
  EXPECT_TRUE(rewritten);

  (*watch)->Signal(SIGTERM);
  const std::optional<int> exit_code = (*watch)->Wait(absl::Seconds(30));
  ASSERT_TRUE(exit_code.has_value());
  EXPECT_EQ(*exit_code, 0) << (*watch)->err_text();
  absl::StatusOr<SvgSummary> last = SummarizeSvg(plot);
  ASSERT_TRUE(last.ok()) << last.status();
  ASSERT_EQ(last->series.count("loss"), 1u);
  ASSERT_EQ(last->series.count("accuracy"), 1u);
  EXPECT_GE(last->series.at("loss").size(), 2u);
  r = Client({"info", "w"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<SvgSummary::Marker> drift = MarkersOf(*last, "drift");
  ASSERT_EQ(drift.size(), static_cast<size_t>(2 * IntField(r.out, "drifts")));
  EXPECT_EQ(drift.back().x, IntField(r.out, "change_example"));
  EXPECT_FALSE(std::filesystem::exists(plot + ".tmp"));
}

}  // namespace
}  // namespace lepton::testing
