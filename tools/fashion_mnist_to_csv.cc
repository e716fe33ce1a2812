// fashion_mnist_to_csv: writes Fashion-MNIST as CSV files for lepton_client.
//
//   fashion_mnist_to_csv OUT_DIR [--data_dir=/usr/share/datasets/fashion-mnist]
//
// Writes OUT_DIR/train.csv (60,000 lines) and OUT_DIR/test.csv (10,000), one
// image per line: the label (0-9), then the 784 pixels. Pixels are the floats
// tools/idx.h makes of the bytes (byte / 255.0f, in [0, 1]), each written
// as the shortest decimal that reads back as the same float ("0" for black,
// "1" for white), so a model trained from these files over gRPC sees exactly
// the numbers the in-process benchmark (bench/fashion_mnist_bench) does.
//
// Each file is written under a temporary name and renamed once complete, so
// an interrupted run never leaves a truncated file that looks finished.
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tools/idx.h"

namespace {

// Writes `data` to `path` as CSV; false (after a message) on failure.
bool WriteCsv(const lepton::LabeledImages& data, const std::string& path) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    std::perror(tmp.c_str());
    return false;
  }
  std::string line;
  char number[32];
  for (int64_t i = 0; i < data.count; ++i) {
    line = absl::StrCat(data.labels[i]);
    const float* pixels = data.images.data() + i * data.pixels;
    for (int64_t j = 0; j < data.pixels; ++j) {
      line.push_back(',');
      // Shortest round-trip form; 0 prints as "0" and 1 as "1".
      const auto [end, ec] =
          std::to_chars(number, number + sizeof(number), pixels[j]);
      line.append(number, end);
    }
    line.push_back('\n');
    if (std::fwrite(line.data(), 1, line.size(), f) != line.size()) {
      std::perror(tmp.c_str());
      std::fclose(f);
      return false;
    }
  }
  if (std::fclose(f) != 0) {
    std::perror(tmp.c_str());
    return false;
  }
  std::error_code error;
  std::filesystem::rename(tmp, path, error);
  if (error) {
    std::fprintf(stderr, "fashion_mnist_to_csv: %s: %s\n", path.c_str(),
                 error.message().c_str());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_dir;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (absl::StartsWith(arg, "--data_dir=")) {
      data_dir = arg.substr(sizeof("--data_dir=") - 1);
    } else if (out_dir.empty() && !absl::StartsWith(arg, "-")) {
      out_dir = arg;
    } else {
      out_dir.clear();
      break;
    }
  }
  if (out_dir.empty()) {
    std::fprintf(stderr,
                 "Usage: fashion_mnist_to_csv OUT_DIR "
                 "[--data_dir=/usr/share/datasets/fashion-mnist]\n"
                 "Writes OUT_DIR/train.csv and OUT_DIR/test.csv: label, then "
                 "784 pixels in [0, 1].\n");
    return 2;
  }
  std::error_code error;
  std::filesystem::create_directories(out_dir, error);
  if (error) {
    std::fprintf(stderr, "fashion_mnist_to_csv: %s: %s\n", out_dir.c_str(),
                 error.message().c_str());
    return 1;
  }
  // The IDX split names, and the names the CSV files get.
  for (const auto& [split, name] :
       {std::pair{"train", "train.csv"}, std::pair{"t10k", "test.csv"}}) {
    absl::StatusOr<lepton::LabeledImages> data =
        lepton::ReadFashionMnist(split, data_dir);
    if (!data.ok()) {
      std::fprintf(stderr, "fashion_mnist_to_csv: %s\n",
                   std::string(data.status().message()).c_str());
      return 1;
    }
    const std::string path = absl::StrCat(out_dir, "/", name);
    if (!WriteCsv(*data, path)) return 1;
    std::fprintf(stderr, "fashion_mnist_to_csv: %s: %lld images\n",
                 path.c_str(), static_cast<long long>(data->count));
  }
  return 0;
}
