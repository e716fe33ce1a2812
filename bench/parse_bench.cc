// parse_bench: how fast lepton_client reads its example files, parsing alone
// (no gRPC): rows/s of Fashion-MNIST's training set as CSV and as LIBSVM.
//
//   build/bench/parse_bench [--csv=build/data/fashion-mnist/train.csv]
//                           [--rounds=3] [--batch=256]
//
// The CSV file is what scripts/demo.sh writes (tools/fashion_mnist_to_csv).
// The LIBSVM file is made from it on the first run, next to it
// (train.libsvm): the label, then `j:text` for each pixel j whose CSV field is
// not "0", the text copied as it is, so that both files hold the same
// numbers. Each round reads the whole file; the best round is printed (the
// file is in the page cache after the first).
//
// Rows, for each format:
//   read        ReadExamples() of 256 examples at a time, as `train` used
//               to read before its reading thread existed (the same thread
//               parses and, in `train`, sends)
//   batches     ExampleReader::NextBatch() into one reused batch: the
//               parsing that `train` and `eval` do on their reading thread
//   prefetched  ExamplePrefetcher: the batches as `train` gets them, the
//               parsing on a thread of its own (backpressure: 4 batches)
//   threads=2   ExamplePrefetcher with 2 parsing threads (and a thread that
//               cuts the file into batches): `train --read_threads=2`
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_support.h"
#include "client/cli/cli_common.h"
#include "client/example_file.h"
#include "client/example_prefetcher.h"

ABSL_FLAG(std::string, csv, "build/data/fashion-mnist/train.csv",
          "the Fashion-MNIST CSV file (scripts/demo.sh writes it)");
ABSL_FLAG(int32_t, rounds, 3, "reads of each file; the best one is printed");
ABSL_FLAG(int32_t, batch, 256, "examples per batch");

namespace lepton::bench {
namespace {

using client::ExampleFileOptions;
using client::ExampleReader;
using client::FileFormat;

// Writes the LIBSVM form of `csv` to `libsvm` (see the top of the file);
// false after a message.
bool WriteLibsvm(const std::string& csv, const std::string& libsvm) {
  std::FILE* in = std::fopen(csv.c_str(), "rb");
  if (in == nullptr) {
    std::perror(csv.c_str());
    return false;
  }
  const std::string tmp = libsvm + ".tmp";
  std::FILE* out = std::fopen(tmp.c_str(), "wb");
  if (out == nullptr) {
    std::perror(tmp.c_str());
    std::fclose(in);
    return false;
  }
  std::string line, row;
  char* buffer = nullptr;
  size_t capacity = 0;
  ssize_t n = 0;
  bool ok = true;
  while (ok && (n = getline(&buffer, &capacity, in)) > 0) {
    line.assign(buffer, n);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
      line.pop_back();
    }
    size_t comma = line.find(',');
    row.assign(line, 0, comma);
    for (int64_t j = 0; comma != std::string::npos; ++j) {
      const size_t next = line.find(',', comma + 1);
      const size_t end = next == std::string::npos ? line.size() : next;
      const absl::string_view field(line.data() + comma + 1, end - comma - 1);
      if (field != "0") absl::StrAppend(&row, " ", j, ":", field);
      comma = next;
    }
    row.push_back('\n');
    ok = std::fwrite(row.data(), 1, row.size(), out) == row.size();
  }
  std::free(buffer);
  std::fclose(in);
  if (std::fclose(out) != 0 || !ok) {
    std::perror(tmp.c_str());
    return false;
  }
  std::filesystem::rename(tmp, libsvm);
  return true;
}

struct Round {
  int64_t rows = 0;
  double seconds = 0;
};

enum class Mode { kRead, kBatches, kPrefetched, kTwoThreads };

// One read of `path`; rows = -1 after an error (printed).
Round ReadOnce(const std::string& path, const ExampleFileOptions& options,
               Mode mode, int batch) {
  Round round;
  const Clock::time_point start = Clock::now();
  absl::StatusOr<std::unique_ptr<ExampleReader>> reader =
      ExampleReader::Open(path, options);
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    round.rows = -1;
    return round;
  }
  absl::Status status;
  if (mode == Mode::kRead) {
    google::protobuf::RepeatedPtrField<v1::Example> examples;
    std::vector<int64_t> lines;
    while (true) {
      examples.Clear();
      lines.clear();
      absl::StatusOr<int> n =
          client::ReadExamples(reader->get(), batch, &examples, &lines);
      if (!n.ok()) status = n.status();
      if (!n.ok() || *n == 0) break;
      round.rows += *n;
    }
  } else if (mode == Mode::kBatches) {
    client::ExampleBatch examples;
    while (true) {
      absl::StatusOr<int> n = (*reader)->NextBatch(batch, &examples);
      if (!n.ok()) status = n.status();
      if (!n.ok() || *n == 0) break;
      round.rows += *n;
    }
  } else {
    client::ExamplePrefetcher prefetcher(
        std::move(*reader),
        {.batch_size = batch, .threads = mode == Mode::kTwoThreads ? 2 : 1});
    while (true) {
      absl::StatusOr<client::ExampleBatch*> got = prefetcher.Next();
      if (!got.ok()) status = got.status();
      if (!got.ok() || *got == nullptr) break;
      round.rows += (*got)->size();
    }
  }
  round.seconds = Seconds(Clock::now() - start);
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    round.rows = -1;
  }
  return round;
}

}  // namespace
}  // namespace lepton::bench

int main(int argc, char** argv) {
  using namespace lepton::bench;  // NOLINT: a program's own namespace
  absl::SetProgramUsageMessage(
      "rows/s of lepton_client's CSV and LIBSVM readers on Fashion-MNIST");
  absl::ParseCommandLine(argc, argv);
  const std::string csv = absl::GetFlag(FLAGS_csv);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  const int batch = absl::GetFlag(FLAGS_batch);
  if (!std::filesystem::exists(csv)) {
    std::fprintf(stderr,
                 "parse_bench: %s is missing; scripts/demo.sh writes it "
                 "(or build/tools/fashion_mnist_to_csv DIR)\n",
                 csv.c_str());
    return 1;
  }
  const std::string libsvm =
      std::filesystem::path(csv).replace_extension(".libsvm").string();
  if (!std::filesystem::exists(libsvm) ||
      std::filesystem::last_write_time(libsvm) <
          std::filesystem::last_write_time(csv)) {
    std::printf("writing %s\n", libsvm.c_str());
    if (!WriteLibsvm(csv, libsvm)) return 1;
  }
  struct Input {
    const char* name;
    std::string path;
    lepton::client::ExampleFileOptions options;
  };
  const Input inputs[] = {
      {"csv", csv, {.format = FileFormat::kCsv, .num_features = 784}},
      {"libsvm", libsvm, {.format = FileFormat::kLibsvm, .num_features = 784}},
  };
  const struct {
    const char* name;
    Mode mode;
  } modes[] = {{"read", Mode::kRead},
               {"batches", Mode::kBatches},
               {"prefetched", Mode::kPrefetched},
               {"threads=2", Mode::kTwoThreads}};
  std::printf("%-8s %-11s %10s %10s %9s\n", "format", "reader", "rows",
              "rows/s", "MB/s");
  for (const Input& input : inputs) {
    const double mb = std::filesystem::file_size(input.path) / 1e6;
    for (const auto& m : modes) {
      Round best;
      for (int r = 0; r < rounds; ++r) {
        Round round = ReadOnce(input.path, input.options, m.mode, batch);
        if (round.rows < 0) return 1;
        if (best.seconds == 0 || round.seconds < best.seconds) best = round;
      }
      std::printf("%-8s %-11s %10lld %10.0f %9.1f\n", input.name, m.name,
                  static_cast<long long>(best.rows), best.rows / best.seconds,
                  mb / best.seconds);
    }
  }
  return 0;
}
