// Readers for IDX files (the MNIST / Fashion-MNIST format), plain or gzipped,
// as shipped by Debian's dataset-fashion-mnist package under
// /usr/share/datasets/fashion-mnist/.
//
// Not part of the model store: a data-loading helper for tests, benchmarks
// and tools. Thread safety: the functions are reentrant.
#ifndef LEPTON_TOOLS_IDX_H_
#define LEPTON_TOOLS_IDX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/learning/example.h"

namespace lepton {

struct LabeledImages {
  int64_t count = 0;
  int64_t pixels = 0;           // per image (rows * cols)
  std::vector<float> images;    // count x pixels, scaled to [0, 1]
  std::vector<uint8_t> labels;  // count
};

// Reads an images file (magic 0x00000803) and its labels file (0x00000801).
absl::StatusOr<LabeledImages> ReadIdx(const std::string& images_path,
                                      const std::string& labels_path);

// The Fashion-MNIST split "train" or "t10k" from `dir`.
absl::StatusOr<LabeledImages> ReadFashionMnist(
    const std::string& split,
    const std::string& dir = "/usr/share/datasets/fashion-mnist");

// Dense examples borrowing `data`'s pixels; `data` must outlive them.
std::vector<ExampleView> DenseExamples(const LabeledImages& data);

}  // namespace lepton

#endif  // LEPTON_TOOLS_IDX_H_
