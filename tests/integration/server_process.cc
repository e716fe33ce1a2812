#include "tests/integration/server_process.h"

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace lepton::testing {

ServerProcess::~ServerProcess() {
  process_.reset();  // killed before its data directory goes
  if (!own_data_dir_.empty()) std::filesystem::remove_all(own_data_dir_);
}

absl::Status ServerProcess::Start(const std::vector<std::string>& extra_flags) {
  std::vector<std::string> argv = {kServerPath, "--listen=127.0.0.1:0"};
  bool has_data_dir = false;
  bool has_metrics_listen = false;
  for (const std::string& flag : extra_flags) {
    if (absl::StartsWith(flag, "--data_dir=")) {
      has_data_dir = true;
      data_dir_ = flag.substr(sizeof("--data_dir=") - 1);
    }
    has_metrics_listen |= absl::StartsWith(flag, "--metrics_listen=");
  }
  // Never the default 0.0.0.0:9090: tests run in parallel.
  if (!has_metrics_listen) argv.push_back("--metrics_listen=127.0.0.1:0");
  if (!has_data_dir) {
    if (own_data_dir_.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      std::string pattern = absl::StrCat(tmp != nullptr ? tmp : "/tmp",
                                         "/lepton-test-data-XXXXXX");
      if (::mkdtemp(pattern.data()) == nullptr) {
        return absl::InternalError("mkdtemp failed");
      }
      own_data_dir_ = pattern;
    }
    argv.push_back(absl::StrCat("--data_dir=", own_data_dir_));
    data_dir_ = own_data_dir_;
  }
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  process_ = std::make_unique<Subprocess>(argv);
  constexpr char kReady[] = "serving on port ";
  std::string seen;
  while (std::optional<std::string> line =
             process_->ReadErrLine(absl::Seconds(30))) {
    absl::StrAppend(&seen, *line, "\n");
    const size_t at = line->find(kReady);
    if (at == std::string::npos) continue;
    absl::string_view rest =
        absl::string_view(*line).substr(at + sizeof(kReady) - 1);
    rest = rest.substr(0, rest.find(' '));
    int port = 0;
    if (!absl::SimpleAtoi(rest, &port) || port <= 0) break;
    target_ = absl::StrCat("127.0.0.1:", port);
    metrics_port_ = 0;
    constexpr char kMetricsPort[] = "metrics_port=";
    if (const size_t m = line->find(kMetricsPort); m != std::string::npos) {
      absl::string_view value =
          absl::string_view(*line).substr(m + sizeof(kMetricsPort) - 1);
      value = value.substr(0, value.find(' '));
      if (!absl::SimpleAtoi(value, &metrics_port_)) metrics_port_ = 0;
    }
    return absl::OkStatus();
  }
  return absl::UnavailableError(
      absl::StrCat("lepton_server did not report its port; stderr:\n", seen));
}

}  // namespace lepton::testing
