// The structured log line: its fixed prefix (UTC timestamp with
// milliseconds, level, event), the quoting that keeps one event on one line,
// and level filtering.
#include "server/log.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace lepton::server {
namespace {

absl::Time At(int64_t unix_millis) { return absl::FromUnixMillis(unix_millis); }

TEST(LogLineTest, PrefixThenFieldsInOrder) {
  // 2026-11-27T15:00:00.123Z
  const absl::Time t =
      absl::FromCivil(absl::CivilSecond(2026, 11, 27, 15, 0, 0),
                      absl::UTCTimeZone()) +
      absl::Milliseconds(123);
  EXPECT_EQ(FormatLogLine(t, LogLevel::kInfo, "model_created",
                          {{"model", "ctr"}, {"version", uint64_t{0}}}),
            "ts=2026-11-27T15:00:00.123Z level=info event=model_created "
            "model=ctr version=0");
  EXPECT_EQ(FormatLogLine(At(5), LogLevel::kWarn, "x", {}),
            "ts=1970-01-01T00:00:00.005Z level=warn event=x");
}

TEST(LogLineTest, ValueTypes) {
  EXPECT_EQ(FormatLogLine(At(0), LogLevel::kError, "e",
                          {{"n", -3},
                           {"b", true},
                           {"d", 0.25},
                           {"dur", absl::Milliseconds(1500)}}),
            "ts=1970-01-01T00:00:00.000Z level=error event=e n=-3 b=true "
            "d=0.25 dur=1.5");
}

TEST(LogLineTest, QuotesWhatWouldBreakTheLine) {
  const std::string line = FormatLogLine(At(0), LogLevel::kDebug, "e",
                                         {{"empty", ""},
                                          {"space", "a b"},
                                          {"eq", "k=v"},
                                          {"quote", "say \"hi\""},
                                          {"backslash", "a\\b"},
                                          {"newline", "one\ntwo"},
                                          {"path", "/tmp/x-1.ckpt"}});
  EXPECT_EQ(line,
            "ts=1970-01-01T00:00:00.000Z level=debug event=e empty=\"\" "
            "space=\"a b\" eq=\"k=v\" quote=\"say \\\"hi\\\"\" "
            "backslash=\"a\\\\b\" newline=\"one\\ntwo\" path=/tmp/x-1.ckpt");
  EXPECT_FALSE(absl::StrContains(line, "\n"));
}

TEST(LogLevelTest, QuietUntilAProgramSetsALevel) {
  // Embedding code (tests, tools) keeps its stderr: errors only.
  EXPECT_EQ(GetLogLevel(), LogLevel::kError);
  EXPECT_FALSE(LogEnabled(LogLevel::kWarn));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
}

TEST(LogLevelTest, ParseAndNames) {
  LogLevel level = LogLevel::kInfo;
  for (const char* name : {"debug", "info", "warn", "error"}) {
    ASSERT_TRUE(ParseLogLevel(name, &level)) << name;
    EXPECT_EQ(LogLevelName(level), name);
  }
  EXPECT_FALSE(ParseLogLevel("warning", &level));
  EXPECT_FALSE(ParseLogLevel("INFO", &level));
  EXPECT_FALSE(ParseLogLevel("", &level));
  EXPECT_EQ(level, LogLevel::kError);  // unchanged by the failures
}

class LogSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kInfo);
    SetLogSinkForTesting([this](absl::string_view line) {
      lines_.emplace_back(line);  // under the logger's lock
    });
  }
  void TearDown() override {
    SetLogSinkForTesting(nullptr);
    SetLogLevel(LogLevel::kError);
  }
  std::vector<std::string> lines_;
};

TEST_F(LogSinkTest, DropsEventsBelowTheLevel) {
  SetLogLevel(LogLevel::kWarn);
  EXPECT_FALSE(LogEnabled(LogLevel::kInfo));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
  Log(LogLevel::kDebug, "d");
  Log(LogLevel::kInfo, "i");
  Log(LogLevel::kWarn, "w", {{"k", 1}});
  Log(LogLevel::kError, "e");
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_TRUE(absl::EndsWith(lines_[0], " level=warn event=w k=1\n"))
      << lines_[0];
  EXPECT_TRUE(absl::EndsWith(lines_[1], " level=error event=e\n")) << lines_[1];

  SetLogLevel(LogLevel::kDebug);
  Log(LogLevel::kDebug, "d");
  ASSERT_EQ(lines_.size(), 3u);
  EXPECT_TRUE(absl::EndsWith(lines_[2], " level=debug event=d\n"));
}

TEST_F(LogSinkTest, ConcurrentEventsStayWholeLines) {
  constexpr int kThreads = 4, kEach = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < kEach; ++i) {
        Log(LogLevel::kInfo, "tick", {{"thread", t}, {"i", i}});
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(lines_.size(), static_cast<size_t>(kThreads * kEach));
  std::vector<int> next(kThreads, 0);
  for (const std::string& line : lines_) {
    // Each line whole, and each thread's lines in its order.
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    ASSERT_EQ(parts.size(), 5u) << line;
    int t = -1, i = -1;
    ASSERT_TRUE(absl::SimpleAtoi(absl::StripPrefix(parts[3], "thread="), &t));
    ASSERT_TRUE(absl::SimpleAtoi(
        absl::StripSuffix(absl::StripPrefix(parts[4], "i="), "\n"), &i));
    EXPECT_EQ(i, next[t]++);
  }
}

}  // namespace
}  // namespace lepton::server
