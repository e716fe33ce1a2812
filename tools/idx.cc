#include "tools/idx.h"

#include <zlib.h>

#include <array>
#include <memory>

#include "absl/strings/str_cat.h"

namespace lepton {
namespace {

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

absl::Status ReadExactly(gzFile f, void* dst, size_t n,
                         const std::string& path) {
  uint8_t* out = static_cast<uint8_t*>(dst);
  while (n > 0) {
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n, 1 << 30));
    const int got = gzread(f, out, chunk);
    if (got <= 0) {
      return absl::DataLossError(absl::StrCat(path, ": truncated"));
    }
    out += got;
    n -= static_cast<size_t>(got);
  }
  return absl::OkStatus();
}

// Reads the header of an IDX file: magic, then `dims` big-endian sizes.
absl::StatusOr<std::vector<uint32_t>> ReadHeader(gzFile f, uint32_t magic,
                                                 int dims,
                                                 const std::string& path) {
  std::vector<uint32_t> fields(1 + dims);
  for (uint32_t& v : fields) {
    std::array<uint8_t, 4> b;
    if (absl::Status s = ReadExactly(f, b.data(), 4, path); !s.ok()) return s;
    v = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) |
        (uint32_t{b[2]} << 8) | b[3];
  }
  if (fields[0] != magic) {
    return absl::DataLossError(
        absl::StrCat(path, ": magic ", fields[0], ", want ", magic));
  }
  return std::vector<uint32_t>(fields.begin() + 1, fields.end());
}

absl::StatusOr<GzFile> Open(const std::string& path) {
  GzFile f(gzopen(path.c_str(), "rb"));
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  }
  return f;
}

}  // namespace

absl::StatusOr<LabeledImages> ReadIdx(const std::string& images_path,
                                      const std::string& labels_path) {
  absl::StatusOr<GzFile> images = Open(images_path);
  if (!images.ok()) return images.status();
  absl::StatusOr<GzFile> labels = Open(labels_path);
  if (!labels.ok()) return labels.status();
  auto image_dims = ReadHeader(images->get(), 0x803, 3, images_path);
  if (!image_dims.ok()) return image_dims.status();
  auto label_dims = ReadHeader(labels->get(), 0x801, 1, labels_path);
  if (!label_dims.ok()) return label_dims.status();
  LabeledImages data;
  data.count = (*image_dims)[0];
  data.pixels = int64_t{(*image_dims)[1]} * (*image_dims)[2];
  if ((*label_dims)[0] != data.count) {
    return absl::DataLossError(absl::StrCat(labels_path, ": ", (*label_dims)[0],
                                            " labels for ", data.count,
                                            " images"));
  }
  std::vector<uint8_t> raw(data.count * data.pixels);
  if (auto s = ReadExactly(images->get(), raw.data(), raw.size(), images_path);
      !s.ok()) {
    return s;
  }
  data.labels.resize(data.count);
  if (auto s = ReadExactly(labels->get(), data.labels.data(),
                           data.labels.size(), labels_path);
      !s.ok()) {
    return s;
  }
  data.images.resize(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) data.images[i] = raw[i] / 255.0f;
  return data;
}

absl::StatusOr<LabeledImages> ReadFashionMnist(const std::string& split,
                                               const std::string& dir) {
  return ReadIdx(absl::StrCat(dir, "/", split, "-images-idx3-ubyte.gz"),
                 absl::StrCat(dir, "/", split, "-labels-idx1-ubyte.gz"));
}

std::vector<ExampleView> DenseExamples(const LabeledImages& data) {
  std::vector<ExampleView> examples(data.count);
  for (int64_t i = 0; i < data.count; ++i) {
    examples[i].features.dense =
        absl::MakeConstSpan(data.images.data() + i * data.pixels, data.pixels);
    examples[i].label = data.labels[i];
  }
  return examples;
}

}  // namespace lepton
