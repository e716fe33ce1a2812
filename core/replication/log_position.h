// LogPosition: where a record sits in a stream of the shared log
// (shared_log.h): the ids "MS-SEQ" that Redis Streams give, a time in Unix
// milliseconds (of the log's clock) and a sequence number within it, ordered
// as the pair. "0-0" is the start of every stream.
//
// Thread safety: a plain value.
#ifndef LEPTON_CORE_REPLICATION_LOG_POSITION_H_
#define LEPTON_CORE_REPLICATION_LOG_POSITION_H_

#include <compare>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace lepton {

struct LogPosition {
  uint64_t ms = 0;
  uint64_t seq = 0;

  // "MS-SEQ" or "MS" (seq 0); nullopt for anything else.
  static std::optional<LogPosition> Parse(absl::string_view id);
  std::string ToString() const;
  auto operator<=>(const LogPosition&) const = default;
};

}  // namespace lepton

#endif  // LEPTON_CORE_REPLICATION_LOG_POSITION_H_
