// The watch command and Client::WatchModel against a real server on a
// loopback port: the event line format, usage errors (exit 2), a watch that
// stops after --max_events, --plot, NOT_FOUND (exit 1), and the library call
// ending with OK after MODEL_DELETED.
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli/commands.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli_server_test.h"
#include "tests/testing/scratch_dir_fixture.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/svg_summary.h"

namespace lepton::client {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class CliWatchTest : public CliServerTest {
 protected:
  void SetUp() override {
    CliServerTest::SetUp();
    v1::ModelSpec spec;
    spec.set_type(v1::LINEAR_REGRESSION);
    spec.set_num_features(1);
    ASSERT_TRUE(client_->CreateModel("m", spec).ok());
  }

  // One example: a new version of "m".
  void UpdateOnce() {
    v1::UpdateRequest request;
    request.set_model("m");
    v1::Example* e = request.add_examples();
    e->mutable_features()->add_dense(0.5f);
    e->set_label(1.0f);
    ASSERT_TRUE(client_->Update(request).ok());
  }

  // Runs RunWatch(args) on a thread while updating "m" every 20 ms (so
  // that the watch, whenever it subscribes, sees new versions) until it
  // returns, for at most 10 s.
  RunResult WatchWhileUpdating(const CommandArgs& args) {
    const GlobalOptions global = Global();
    return testing::CaptureRun([&] {
      std::atomic<bool> done{false};
      int exit_code = -1;
      std::thread watcher([&] {
        exit_code = RunWatch(args, global);
        done = true;
      });
      for (int i = 0; i < 500 && !done; ++i) {
        UpdateOnce();
        absl::SleepFor(absl::Milliseconds(20));
      }
      watcher.join();
      return exit_code;
    });
  }
};

TEST(FormatModelEventTest, KindVersionExampleThenWhatIsSet) {
  v1::ModelEvent event;
  event.set_kind(v1::VERSION_PUBLISHED);
  event.set_version(7);
  event.set_example(120);
  EXPECT_EQ(FormatModelEvent(event), "VERSION_PUBLISHED version=7 example=120");
  event.set_skipped_versions(3);
  event.set_dropped_events(2);
  EXPECT_EQ(FormatModelEvent(event),
            "VERSION_PUBLISHED version=7 example=120 skipped_versions=3 "
            "dropped_events=2");
  v1::ModelEvent drift;
  drift.set_kind(v1::DRIFT_DETECTED);
  drift.set_version(9);
  drift.set_example(400);
  drift.set_detail("mean loss 0.1 before the change, 0.9 after");
  EXPECT_EQ(FormatModelEvent(drift),
            "DRIFT_DETECTED version=9 example=400 detail=mean loss 0.1 before "
            "the change, 0.9 after");
}

TEST_F(CliWatchTest, UsageErrors) {
  for (const CommandArgs& args :
       {CommandArgs{}, CommandArgs{"--model=m", "--max_events=-1"},
        CommandArgs{"--model=m", "--min_version_interval_ms=-5"},
        CommandArgs{"--model=m", "extra"}, CommandArgs{"--model=m", "--plot=-"},
        CommandArgs{"--model=m", "--plot="}}) {
    const RunResult r = Run(RunWatch, args);
    EXPECT_EQ(r.exit_code, kExitUsage) << args.size();
    EXPECT_THAT(r.err, StartsWith("lepton_client: watch: "));
  }
}

TEST_F(CliWatchTest, PrintsEventsAndStopsAfterMaxEvents) {
  const RunResult o = WatchWhileUpdating(
      {"--model=m", "--min_version_interval_ms=1", "--max_events=2"});
  EXPECT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_EQ(o.err, "");
  std::vector<std::string> lines =
      absl::StrSplit(o.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << o.out;
  for (const std::string& line : lines) {
    EXPECT_THAT(line, StartsWith("VERSION_PUBLISHED version="));
    EXPECT_THAT(line, HasSubstr(" example="));
  }
}

// --plot: the events still go to stdout; the plot holds the model's loss
// from GetModel at each new version (a linear model: no accuracy).
TEST_F(CliWatchTest, PlotsTheLossAsTheModelLearns) {
  testing::TestScratchDir dir("lepton-cli-watch-plot");
  ASSERT_FALSE(dir.path().empty());
  const std::string plot = absl::StrCat(dir.path(), "/watch.svg");
  const RunResult o =
      WatchWhileUpdating({"--model=m", "--min_version_interval_ms=1",
                          "--max_events=5", absl::StrCat("--plot=", plot)});
  EXPECT_EQ(o.exit_code, kExitOk) << o.err;
  EXPECT_EQ(o.err, "");
  const std::vector<std::string> lines =
      absl::StrSplit(o.out, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 5u) << o.out;
  absl::StatusOr<testing::SvgSummary> svg = testing::SummarizeSvg(plot);
  ASSERT_TRUE(svg.ok()) << svg.status();
  ASSERT_EQ(svg->series.count("loss"), 1u);
  EXPECT_GE(svg->series.at("loss").size(), 2u);
  EXPECT_EQ(svg->series.count("accuracy"), 0u);
  EXPECT_TRUE(svg->foreign.empty());
  EXPECT_FALSE(std::filesystem::exists(plot + ".tmp"));
}

TEST_F(CliWatchTest, MissingModelFails) {
  const RunResult r = Run(RunWatch, {"--model=nope"});
  EXPECT_EQ(r.exit_code, kExitFailure);
  EXPECT_THAT(r.err, StartsWith("lepton_client: watch: "));
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
}

// The library call: every event reaches the callback, and the deletion ends
// the call with OK after MODEL_DELETED.
TEST_F(CliWatchTest, LibraryWatchEndsWithOkAfterDeletion) {
  std::vector<v1::ModelEvent> events;
  std::atomic<int> seen{0};
  absl::Status status;
  std::thread watcher([&] {
    v1::WatchModelRequest request;
    request.set_name("m");
    request.set_min_version_interval_ms(1);
    status = client_->WatchModel(request, [&](const v1::ModelEvent& e) {
      events.push_back(e);
      ++seen;
      return true;
    });
  });
  for (int i = 0; i < 500 && seen == 0; ++i) {
    UpdateOnce();
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(client_->DeleteModel("m").ok());
  watcher.join();
  EXPECT_TRUE(status.ok()) << status;
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back().kind(), v1::MODEL_DELETED);
  EXPECT_EQ(events.front().kind(), v1::VERSION_PUBLISHED);
}

}  // namespace
}  // namespace lepton::client
