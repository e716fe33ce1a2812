// Little-endian encoding of the project's binary formats (update log records,
// checkpoints, exported models): ByteWriter appends fixed-width integers,
// floats and length-prefixed bytes to a string; ByteReader reads them back
// from a buffer it does not own, and fails (returns false) instead of reading
// past the end, so a truncated or corrupt input can never be over-read.
//
// Fixed little-endian widths, not the host's layout, so that a file written
// on one machine reads the same on any other.
//
// Thread safety: none; one object per thread.
#ifndef LEPTON_CORE_UTIL_BYTE_IO_H_
#define LEPTON_CORE_UTIL_BYTE_IO_H_

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace lepton {

static_assert(std::endian::native == std::endian::little,
              "the binary formats are written with memcpy on little-endian "
              "hosts only");

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}

  void U8(uint8_t v) { Raw(&v, 1); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  void I32(int32_t v) { Raw(&v, 4); }
  void I64(int64_t v) { Raw(&v, 8); }
  void F32(float v) { Raw(&v, 4); }
  void F64(double v) { Raw(&v, 8); }
  // u32 length, then the bytes.
  void Bytes(absl::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    Raw(s.data(), s.size());
  }
  void Floats(absl::Span<const float> v) { Raw(v.data(), v.size() * 4); }
  void U32s(absl::Span<const uint32_t> v) { Raw(v.data(), v.size() * 4); }
  void Raw(const void* p, size_t n) {
    if (n == 0) return;  // p may be null (an empty vector's data())
    out_->append(static_cast<const char*>(p), n);
  }

  size_t size() const { return out_->size(); }

 private:
  std::string* const out_;
};

class ByteReader {
 public:
  explicit ByteReader(absl::string_view in) : in_(in) {}

  bool U8(uint8_t* v) { return Raw(v, 1); }
  bool U32(uint32_t* v) { return Raw(v, 4); }
  bool U64(uint64_t* v) { return Raw(v, 8); }
  bool I32(int32_t* v) { return Raw(v, 4); }
  bool I64(int64_t* v) { return Raw(v, 8); }
  bool F32(float* v) { return Raw(v, 4); }
  bool F64(double* v) { return Raw(v, 8); }
  // A u32 length and that many bytes, at most `max_size`; the result points
  // into the input.
  bool Bytes(absl::string_view* v, uint32_t max_size = UINT32_MAX) {
    uint32_t n;
    if (!U32(&n) || n > max_size || n > remaining()) return false;
    *v = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  // `n` floats (or u32s) into dst[0, n).
  bool Floats(size_t n, float* dst) { return Array(n, dst); }
  bool U32s(size_t n, uint32_t* dst) { return Array(n, dst); }
  bool Raw(void* dst, size_t n) {
    if (n == 0) return true;  // dst may be null (an empty vector's data())
    if (n > remaining()) return false;
    std::memcpy(dst, in_.data() + pos_, n);
    pos_ += n;
    return true;
  }

  size_t position() const { return pos_; }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  template <typename T>
  bool Array(size_t n, T* dst) {
    if (n > remaining() / sizeof(T)) return false;
    return Raw(dst, n * sizeof(T));
  }

  absl::string_view in_;
  size_t pos_ = 0;
};

}  // namespace lepton

#endif  // LEPTON_CORE_UTIL_BYTE_IO_H_
