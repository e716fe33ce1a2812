// SharedLog: the totally ordered, durable log that the nodes of a cluster
// share, as the core sees it (replicated_store.h). It holds named streams of
// opaque records; each record gets an id when appended, and ids grow within
// a stream (log_position.h). The core encodes and decodes the records
// (log_entry.h); an implementation only keeps and returns bytes, so the
// engine behind it (Redis Streams in server/cluster/redis_shared_log.h, an
// in-memory one in the tests) stays outside core/.
//
// Keys: the streams and the small values (Put/Get) share one namespace of
// names chosen by the core ("catalog", "model:ctr:1700000000000-0",
// "digest:..."). An implementation may prefix them (a cluster's name).
//
// Errors: UNAVAILABLE when the log cannot be reached or does not answer in
// time (an Append may then have happened or not); anything else is a bug or
// a misconfiguration.
//
// Thread safety: every method may be called from any thread, concurrently
// with the others (the store appends from one thread, reads from another,
// and asks for heads and values from a third).
#ifndef LEPTON_CORE_REPLICATION_SHARED_LOG_H_
#define LEPTON_CORE_REPLICATION_SHARED_LOG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace lepton {

struct LogRecord {
  std::string id;  // "MS-SEQ" (log_position.h)
  std::string payload;
};

// Records of one stream, oldest first.
struct StreamRecords {
  std::string stream;
  std::vector<LogRecord> records;
};

// The newest record of a stream.
struct StreamHead {
  std::string last_id = "0-0";  // "0-0": nothing was ever appended
  // Records ever appended to the stream (trimmed ones included).
  uint64_t entries_added = 0;
};

// What to append: a record for a stream.
struct LogAppend {
  std::string stream;
  std::string payload;
};

class SharedLog {
 public:
  virtual ~SharedLog() = default;

  // Appends each record to its stream, in order; the id of each, or why it
  // could not be appended (UNAVAILABLE: it may or may not be in the log).
  // An id means the log accepted the record, and with a replica quorum
  // configured, that the quorum has it.
  virtual std::vector<absl::StatusOr<std::string>> Append(
      absl::Span<const LogAppend> records) = 0;

  // For each (stream, id) of `after`: the records after that id ("0-0": from
  // the start), at most `max_per_stream`. If there are none in any stream,
  // waits up to `wait` for one to arrive. Streams with nothing new are
  // omitted; a stream that does not exist is as an empty one.
  virtual absl::StatusOr<std::vector<StreamRecords>> Read(
      absl::Span<const std::pair<std::string, std::string>> after,
      int32_t max_per_stream, absl::Duration wait) = 0;

  // The stream's newest record (last_id "0-0" for a stream that does not
  // exist).
  virtual absl::StatusOr<StreamHead> Head(absl::string_view stream) = 0;

  // Stores `value` under `key` for `ttl` (absl::InfiniteDuration(): for
  // good) unless a value is there already; returns the value the key holds
  // afterwards (`value`, or the one that was first).
  virtual absl::StatusOr<std::string> PutIfAbsent(absl::string_view key,
                                                  absl::string_view value,
                                                  absl::Duration ttl) = 0;
  // Stores `value` under `key`, replacing any, for `ttl`
  // (absl::InfiniteDuration(): for good).
  virtual absl::Status Put(absl::string_view key, absl::string_view value,
                           absl::Duration ttl) = 0;
  // Put for each (key, value) of `values`, at once.
  virtual absl::Status PutAll(
      absl::Span<const std::pair<std::string, std::string>> values,
      absl::Duration ttl) = 0;
  // The value under `key`; nullopt if there is none (or it expired).
  virtual absl::StatusOr<std::optional<std::string>> Get(
      absl::string_view key) = 0;
  // Get and Remove in one step: of callers taking one key at once, only one
  // gets its value.
  virtual absl::StatusOr<std::optional<std::string>> Take(
      absl::string_view key) = 0;
  // Removes the value or stream `key`, if there is one.
  virtual absl::Status Remove(absl::string_view key) = 0;

  // Takes the lease `key` for `owner` if no one holds it, or renews it if
  // `owner` does, for `ttl`, atomically: true if `owner` holds it now.
  virtual absl::StatusOr<bool> Lease(absl::string_view key,
                                     absl::string_view owner,
                                     absl::Duration ttl) = 0;
  // Removes the records of `stream` with ids below `min_id`.
  virtual absl::Status TrimBefore(absl::string_view stream,
                                  absl::string_view min_id) = 0;
};

}  // namespace lepton

#endif  // LEPTON_CORE_REPLICATION_SHARED_LOG_H_
