// CRC-32C (Castagnoli), the checksum of every record and file Lepton writes
// (update log records, checkpoints, exported models).
//
// CRC-32C rather than zlib's CRC-32: x86-64-v3 (the project's fixed target)
// computes it in hardware (SSE4.2's crc32 instruction, 8 bytes per
// instruction), several times faster than zlib's table code on log records of
// hundreds of KiB; LevelDB, RocksDB and ext4 use it for the same job.
//
// Thread safety: pure functions.
#ifndef LEPTON_CORE_UTIL_CRC32C_H_
#define LEPTON_CORE_UTIL_CRC32C_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace lepton {

// The CRC-32C of data[0, n) continued from `crc` (the CRC of what came
// before; 0 to start): Crc32c(ab) == Crc32cExtend(Crc32c(a), b).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

inline uint32_t Crc32c(absl::string_view data) {
  return Crc32cExtend(0, data.data(), data.size());
}

}  // namespace lepton

#endif  // LEPTON_CORE_UTIL_CRC32C_H_
