// RedisSharedLog: the cluster's SharedLog (core/replication/shared_log.h) on
// Redis 7 or later: each stream a Redis stream whose entries hold the record
// in one field "r", each value a Redis string, each lease a string that
// expires. Every key is the core's name prefixed with the cluster's
// ("NAME:catalog", ClusterAddress::Key), so clusters can share one Redis;
// the names Read returns are the core's, without the prefix.
//
//   absl::StatusOr<std::unique_ptr<RedisSharedLog>> log =
//       RedisSharedLog::Connect(address, {.min_replicas = 1});
//   std::vector<absl::StatusOr<std::string>> ids =
//       (*log)->Append({{"catalog", bytes}});
//   absl::StatusOr<std::vector<StreamRecords>> next =
//       (*log)->Read({{"catalog", "0-0"}}, 100, absl::Seconds(1));
//
// Durability: an id from Append means the Redis primary accepted the record;
// what it keeps across its own crash is its persistence setting
// (appendfsync). With min_replicas = N > 0, an id also means that N replicas
// acknowledged it within replica_timeout (WAIT); a batch they did not
// acknowledge in time fails with UNAVAILABLE, and its records may be in the
// log nonetheless.
//
// Errors: as SharedLog says, and UNAVAILABLE "redis: ..." when Redis cannot
// be reached or answers late. Every method connects again by itself after
// such an error (or after Redis closed an idle connection), so a log
// outlives restarts of Redis. FAILED_PRECONDITION "redis: ..." is an error
// Redis answered (a key of the wrong type, a malformed id); INVALID_ARGUMENT
// a bad argument (max_per_stream < 1, a ttl that is not positive).
//
// Thread safety: every method may be called concurrently. The log keeps
// three connections, each used by one call at a time: one for Append, one
// for Read (so a Read that waits holds up neither appends nor the others),
// one for the rest. Concurrent calls of one kind take turns.
#ifndef LEPTON_SERVER_CLUSTER_REDIS_SHARED_LOG_H_
#define LEPTON_SERVER_CLUSTER_REDIS_SHARED_LOG_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/replication/shared_log.h"
#include "core/util/mutex.h"
#include "server/cluster/cluster_address.h"
#include "server/cluster/redis_client.h"

namespace lepton::server {

class RedisSharedLog final : public SharedLog {
 public:
  struct Options {
    // Replicas that must acknowledge each Append batch (Redis's WAIT) before
    // its records get ids; 0: the primary's answer is enough.
    int32_t min_replicas = 0;
    // How long an Append waits for those acknowledgements.
    absl::Duration replica_timeout = absl::Seconds(1);
    // How long a reply may take (a Read adds its wait, an Append its
    // replica_timeout).
    absl::Duration command_timeout = absl::Seconds(2);
    absl::Duration connect_timeout = absl::Seconds(2);
  };

  // Read waits at most this long, also for a longer `wait` (then returning
  // nothing, as after any wait in which nothing came): a reply timeout must
  // stay finite, or a connection lost without a word would hang the reader.
  static constexpr absl::Duration kMaxReadWait = absl::Minutes(1);

  // Connects to the Redis of `address`: UNAVAILABLE if it cannot be reached
  // now, FAILED_PRECONDITION if it is older than Redis 7.0, INVALID_ARGUMENT
  // for bad options.
  static absl::StatusOr<std::unique_ptr<RedisSharedLog>> Connect(
      const ClusterAddress& address, const Options& options);

  std::vector<absl::StatusOr<std::string>> Append(
      absl::Span<const LogAppend> records) override;
  // If `after` names no stream, sleeps for `wait` and returns nothing.
  absl::StatusOr<std::vector<StreamRecords>> Read(
      absl::Span<const std::pair<std::string, std::string>> after,
      int32_t max_per_stream, absl::Duration wait) override;
  absl::StatusOr<StreamHead> Head(absl::string_view stream) override;
  absl::StatusOr<std::string> PutIfAbsent(absl::string_view key,
                                          absl::string_view value,
                                          absl::Duration ttl) override;
  absl::Status Put(absl::string_view key, absl::string_view value,
                   absl::Duration ttl) override;
  absl::Status PutAll(
      absl::Span<const std::pair<std::string, std::string>> values,
      absl::Duration ttl) override;
  absl::StatusOr<std::optional<std::string>> Take(
      absl::string_view key) override;
  absl::StatusOr<std::optional<std::string>> Get(
      absl::string_view key) override;
  absl::Status Remove(absl::string_view key) override;
  // `ttl` must be finite (a lease that never ends would outlive its owner).
  absl::StatusOr<bool> Lease(absl::string_view key, absl::string_view owner,
                             absl::Duration ttl) override;
  absl::Status TrimBefore(absl::string_view stream,
                          absl::string_view min_id) override;

 private:
  RedisSharedLog(const ClusterAddress& address, const Options& options,
                 std::unique_ptr<RedisClient> append,
                 std::unique_ptr<RedisClient> read,
                 std::unique_ptr<RedisClient> other)
      : address_(address),
        options_(options),
        append_(std::move(append)),
        read_(std::move(read)),
        other_(std::move(other)) {}

  const ClusterAddress address_;
  const Options options_;

  Mutex append_mu_;
  const std::unique_ptr<RedisClient> append_ ABSL_PT_GUARDED_BY(append_mu_);
  Mutex read_mu_;
  const std::unique_ptr<RedisClient> read_ ABSL_PT_GUARDED_BY(read_mu_);
  // Head, the values, leases and trimming.
  Mutex other_mu_;
  const std::unique_ptr<RedisClient> other_ ABSL_PT_GUARDED_BY(other_mu_);
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_CLUSTER_REDIS_SHARED_LOG_H_
