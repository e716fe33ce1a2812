#include "tests/testing/server_process.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace lepton::testing {
namespace {

// The integer after `key` in `line` up to the next space; 0 if none.
int NumberAfter(absl::string_view line, absl::string_view key) {
  const size_t at = line.find(key);
  if (at == absl::string_view::npos) return 0;
  absl::string_view rest = line.substr(at + key.size());
  rest = rest.substr(0, rest.find(' '));
  int value = 0;
  return absl::SimpleAtoi(rest, &value) && value > 0 ? value : 0;
}

}  // namespace

ServerProcess::ServerProcess(std::string binary) : binary_(std::move(binary)) {}

ServerProcess::~ServerProcess() {
  process_.reset();  // killed before its data directory goes
}

absl::Status ServerProcess::Start(const std::vector<std::string>& extra_flags,
                                  absl::Duration timeout) {
  process_.reset();
  std::vector<std::string> argv = {binary_, "--listen=127.0.0.1:0"};
  bool has_data_dir = false;
  bool has_metrics_listen = false;
  for (const std::string& flag : extra_flags) {
    if (absl::StartsWith(flag, "--data_dir=")) {
      has_data_dir = true;
      data_dir_ = flag.substr(sizeof("--data_dir=") - 1);
    }
    has_metrics_listen |= absl::StartsWith(flag, "--metrics_listen=");
  }
  if (!has_metrics_listen) argv.push_back("--metrics_listen=127.0.0.1:0");
  if (!has_data_dir) {
    if (own_data_dir_.path().empty()) {
      absl::StatusOr<ScratchDir> dir = ScratchDir::Create("lepton-test-data");
      if (!dir.ok()) return dir.status();
      own_data_dir_ = *std::move(dir);
    }
    argv.push_back(absl::StrCat("--data_dir=", own_data_dir_.path()));
    data_dir_ = own_data_dir_.path();
  }
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());

  target_.clear();
  port_ = 0;
  metrics_port_ = 0;
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(argv);
  if (!process.ok()) return process.status();
  process_ = *std::move(process);
  spawned_ = process_->started();
  const Clock::time_point give_up =
      spawned_ +
      std::chrono::duration_cast<Clock::duration>(absl::ToChronoNanoseconds(
          std::clamp(timeout, absl::ZeroDuration(), absl::Hours(24))));
  while (true) {
    const absl::Duration left = absl::FromChrono(give_up - Clock::now());
    if (left <= absl::ZeroDuration()) break;
    Clock::time_point read_at;
    const std::optional<std::string> line =
        process_->ReadErrLine(left, &read_at);
    if (!line.has_value()) break;  // it closed stderr, or the time is up
    port_ = NumberAfter(*line, "serving on port ");
    if (port_ == 0) continue;
    target_ = absl::StrCat("127.0.0.1:", port_);
    metrics_port_ = NumberAfter(*line, "metrics_port=");
    serving_ = read_at;
    return absl::OkStatus();
  }
  const int status = process_->Kill();
  return absl::UnavailableError(
      absl::StrCat(binary_, " did not report its port (exit status ", status,
                   "); stderr:\n", process_->err_text()));
}

absl::StatusOr<int> ServerProcess::Terminate(absl::Duration timeout) {
  if (process_ == nullptr) {
    return absl::FailedPreconditionError("the server was never started");
  }
  process_->Signal(SIGTERM);
  if (std::optional<int> status = process_->Wait(timeout)) return *status;
  process_->Kill();
  return absl::DeadlineExceededError(
      absl::StrCat("lepton_server did not exit within ",
                   absl::FormatDuration(timeout), " of SIGTERM; killed"));
}

void ServerProcess::Kill() {
  if (process_ != nullptr) process_->Kill();
}

std::string ServerProcess::err_text() const {
  return process_ != nullptr ? process_->err_text() : std::string();
}

std::string ScrapeMetrics(const ServerProcess& server) {
  RunResult r = Run(
      {"/usr/bin/curl", "-sS", "--max-time", "10",
       absl::StrCat("http://127.0.0.1:", server.metrics_port(), "/metrics")});
  return r.exit_code == 0 ? r.out : "";
}

double MetricValue(absl::string_view text, absl::string_view series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, series) || !absl::ConsumePrefix(&line, " "))
      continue;
    double v = 0;
    if (absl::SimpleAtod(line, &v)) return v;
  }
  return -1;
}

}  // namespace lepton::testing
