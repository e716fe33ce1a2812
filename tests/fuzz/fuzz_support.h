// What the libFuzzer targets of tests/fuzz/ share (docs/fuzzing.md):
//
// - FuzzInput cuts one fuzzer input into fields and length-prefixed chunks
//   (a u8 of flags, then the files of a model directory, ...); AppendChunk
//   writes the same framing, for the seed generator (make_corpus.cc), so
//   that seeds and mutations read alike.
// - The Fix* functions rewrite the checksums (and sizes) of a model state
//   or an update log so that they match the bytes they cover. A target
//   applies them when its input's flags ask for it: without them nearly
//   every mutation fails the CRC-32C and the decoders behind it would never
//   be reached; with them the fuzzer explores what follows the checksum,
//   the part a bug in a writer (or a checksum collision) would expose.
// - FUZZ_CHECK: a property that failed is a crash, with the message, so
//   libFuzzer saves the input.
//
// Thread safety: plain functions and a single-threaded reader.
#ifndef LEPTON_TESTS_FUZZ_FUZZ_SUPPORT_H_
#define LEPTON_TESTS_FUZZ_FUZZ_SUPPORT_H_

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/string_view.h"
#include "core/util/crc32c.h"

#define FUZZ_CHECK(condition, ...)                                        \
  do {                                                                    \
    if (!(condition)) {                                                   \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #condition, \
                   __FILE__, __LINE__);                                   \
      std::fprintf(stderr, "" __VA_ARGS__);                               \
      std::fprintf(stderr, "\n");                                         \
      std::abort();                                                       \
    }                                                                     \
  } while (0)

namespace lepton::fuzz {

// Reads fields off the front of an input; past its end, every read gives
// zeros or empty chunks (never fails), so any input is a valid one.
class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}
  explicit FuzzInput(absl::string_view data) : rest_(data) {}

  uint8_t U8() { return static_cast<uint8_t>(Fixed(1)); }
  uint16_t U16() { return static_cast<uint16_t>(Fixed(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Fixed(4)); }
  uint64_t U64() { return Fixed(8); }
  // A u32 length, then that many bytes (or what is left).
  absl::string_view Chunk() {
    const uint32_t n = U32();
    const absl::string_view chunk = rest_.substr(0, n);
    rest_.remove_prefix(chunk.size());
    return chunk;
  }
  // Everything not read yet.
  absl::string_view Rest() {
    const absl::string_view rest = rest_;
    rest_ = {};
    return rest;
  }
  bool empty() const { return rest_.empty(); }

 private:
  uint64_t Fixed(size_t n) {
    uint64_t v = 0;
    const size_t k = std::min(n, rest_.size());
    std::memcpy(&v, rest_.data(), k);  // little-endian hosts (byte_io.h)
    rest_.remove_prefix(k);
    return v;
  }

  absl::string_view rest_;
};

// The writer's side of FuzzInput::Chunk().
inline void AppendChunk(absl::string_view chunk, std::string* out) {
  const uint32_t n = static_cast<uint32_t>(chunk.size());
  out->append(reinterpret_cast<const char*>(&n), 4);
  out->append(chunk.data(), chunk.size());
}
template <typename T>
void AppendFixed(T v, std::string* out) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

inline void StoreU32(uint32_t v, char* at) { std::memcpy(at, &v, 4); }
inline uint32_t LoadU32(const char* at) {
  uint32_t v;
  std::memcpy(&v, at, 4);
  return v;
}

// A model state (model_state.h: "LEPTNMDL", u32 format, u64 payload_size,
// payload, u32 crc32c): payload_size set to what the bytes hold and the
// checksum recomputed. Inputs shorter than the header are left alone.
inline void FixModelStateChecksum(std::string* bytes) {
  constexpr size_t kHeader = 20, kChecksum = 4;
  if (bytes->size() < kHeader + kChecksum) return;
  const uint64_t payload = bytes->size() - kHeader - kChecksum;
  std::memcpy(bytes->data() + 12, &payload, 8);
  const size_t at = bytes->size() - kChecksum;
  StoreU32(Crc32c(absl::string_view(*bytes).substr(0, at)), bytes->data() + at);
}

// The records of an update log from `offset` on (update_log_format.h: u32
// payload_size, u32 crc32c of it, u32 crc32c of the payload, payload): each
// size cut to what remains, both checksums recomputed.
inline void FixRecordChecksums(std::string* bytes, size_t offset) {
  constexpr size_t kRecordHeader = 12;
  while (offset + kRecordHeader <= bytes->size()) {
    char* const h = bytes->data() + offset;
    const size_t room = bytes->size() - offset - kRecordHeader;
    const uint32_t size =
        static_cast<uint32_t>(std::min<uint64_t>(LoadU32(h), room));
    StoreU32(size, h);
    StoreU32(Crc32cExtend(0, h, 4), h + 4);
    StoreU32(Crc32cExtend(0, h + kRecordHeader, size), h + 8);
    offset += kRecordHeader + size;
  }
}

// A whole segment: the header's checksum, then every record's.
inline void FixSegmentChecksums(std::string* bytes) {
  constexpr size_t kSegmentHeader = 24;
  if (bytes->size() < kSegmentHeader) return;
  StoreU32(Crc32cExtend(0, bytes->data(), 20), bytes->data() + 20);
  FixRecordChecksums(bytes, kSegmentHeader);
}

}  // namespace lepton::fuzz

#endif  // LEPTON_TESTS_FUZZ_FUZZ_SUPPORT_H_
