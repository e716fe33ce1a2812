// RedisClient: one connection to a Redis server, over Debian's hiredis, with
// the stream commands a cluster's update log needs (XADD, XRANGE, XREAD),
// and pipelines of commands sent in one round trip.
//
//   absl::StatusOr<std::unique_ptr<RedisClient>> redis =
//       RedisClient::Connect({.host = "127.0.0.1", .port = 6379});
//   absl::StatusOr<std::string> id =
//       (*redis)->XAdd("c1:log:ctr", {{"record", bytes}});
//   absl::StatusOr<std::vector<StreamEntry>> next =
//       (*redis)->XRead("c1:log:ctr", *id, 100, absl::Seconds(1));
//
// Errors: UNAVAILABLE when Redis cannot be reached, the connection breaks or
// a reply does not come within the timeout (the next call connects again, so
// a client outlives a restart of Redis). A connection that Redis closed while
// it was idle (a restart, Redis's idle `timeout`) is noticed before a command
// is sent on it, and replaced, so such a command does not fail for it; one
// that breaks while a command is under way fails that command, which may or
// may not have run. FAILED_PRECONDITION "redis: ..."
// when Redis answers with an error; INTERNAL for a reply of an unexpected
// shape. Arguments and values are binary-safe.
//
// Thread safety: none; use one client per thread.
#ifndef LEPTON_SERVER_CLUSTER_REDIS_CLIENT_H_
#define LEPTON_SERVER_CLUSTER_REDIS_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

struct redisContext;

namespace lepton::server {

// A Redis reply (RESP2), its errors excluded (they become a status).
struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus
  int64_t integer = 0;
  std::vector<RedisReply> elements;  // kArray
};

// One entry of a stream: its id ("1700000000000-0") and its fields in order.
struct StreamEntry {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;
};

// The entries of one stream in the reply of an XREAD over several streams.
struct StreamRead {
  std::string key;
  std::vector<StreamEntry> entries;
};

class RedisClient {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int32_t port = 6379;
    absl::Duration connect_timeout = absl::Seconds(2);
    // How long a reply may take (a blocking XREAD adds its own block time).
    absl::Duration command_timeout = absl::Seconds(2);
  };

  // Connects; UNAVAILABLE if Redis cannot be reached in connect_timeout.
  static absl::StatusOr<std::unique_ptr<RedisClient>> Connect(
      const Options& options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Runs one command (its name first), connecting first if the last call
  // broke the connection.
  absl::StatusOr<RedisReply> Command(absl::Span<const absl::string_view> args);
  // Like Command, for a command that Redis may hold up to `block` before it
  // answers (WAIT, XREAD BLOCK): the reply may take command_timeout + block.
  absl::StatusOr<RedisReply> BlockingCommand(
      absl::Span<const absl::string_view> args, absl::Duration block);

  // Sends every command (each its name first) at once and reads their
  // replies: one round trip instead of one per command. The result has one
  // entry per command, in order; a Redis error fails its own command only. If
  // the connection breaks, the command whose reply did not come and every one
  // after it are UNAVAILABLE (each may or may not have run) and the next call
  // connects again. Each reply may take command_timeout + `block` (a WAIT or
  // a blocking read among the commands).
  std::vector<absl::StatusOr<RedisReply>> Pipeline(
      absl::Span<const std::vector<absl::string_view>> commands,
      absl::Duration block = absl::ZeroDuration());

  // XADD key * field value ...: the new entry's id.
  absl::StatusOr<std::string> XAdd(
      absl::string_view key,
      absl::Span<const std::pair<absl::string_view, absl::string_view>> fields);
  // The entries after `after_id` ("0" for all), oldest first, at most
  // `count`.
  absl::StatusOr<std::vector<StreamEntry>> XRange(absl::string_view key,
                                                  absl::string_view after_id,
                                                  int64_t count);
  // Like XRange, but waits up to `block` (> 0) for an entry after
  // `after_id` to arrive; empty if none did.
  absl::StatusOr<std::vector<StreamEntry>> XRead(absl::string_view key,
                                                 absl::string_view after_id,
                                                 int64_t count,
                                                 absl::Duration block);
  // XREAD over several streams: for each (key, after_id) of `after`, the
  // entries after that id, oldest first, at most `count` per stream; the
  // streams with none are omitted. If no stream has any, waits up to `block`
  // for one to arrive (zero: does not wait); empty if none did.
  absl::StatusOr<std::vector<StreamRead>> XReadStreams(
      absl::Span<const std::pair<absl::string_view, absl::string_view>> after,
      int64_t count, absl::Duration block);

 private:
  explicit RedisClient(const Options& options) : options_(options) {}
  absl::Status Reconnect();
  // Connects if there is no connection, or if Redis closed the idle one.
  absl::Status EnsureConnected();
  void Disconnect();

  const Options options_;
  redisContext* context_ = nullptr;  // null: connect on the next call
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_CLUSTER_REDIS_CLIENT_H_
