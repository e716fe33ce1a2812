#include "server/cluster/redis_shared_log.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace lepton::server {
namespace {

// The one field of a stream entry: the record's payload.
constexpr absl::string_view kField = "r";

// Takes the lease KEYS[1] for ARGV[1] for ARGV[2] ms, or renews it if ARGV[1]
// holds it: 1 if ARGV[1] holds it now. A script, so that no other client's
// command comes between the GET and the PEXPIRE (the lease could have
// expired and been taken there).
constexpr absl::string_view kLeaseScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
)lua";

absl::Status Unexpected(absl::string_view what) {
  return absl::InternalError(absl::StrCat("redis: unexpected reply to ", what));
}

// A ttl in whole milliseconds, at least one (Redis refuses PX 0).
absl::StatusOr<std::string> TtlMillis(absl::Duration ttl) {
  if (ttl <= absl::ZeroDuration() || ttl == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis: a ttl must be positive and finite, not ",
                     absl::FormatDuration(ttl)));
  }
  return absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(ttl)));
}

// The major version of the Redis behind `client`, from INFO server.
absl::StatusOr<int> RedisMajorVersion(RedisClient& client) {
  absl::StatusOr<RedisReply> info = client.Command({"INFO", "server"});
  if (!info.ok()) return info.status();
  for (absl::string_view line : absl::StrSplit(info->str, "\r\n")) {
    if (absl::ConsumePrefix(&line, "redis_version:")) {
      int major = 0;
      if (absl::SimpleAtoi(line.substr(0, line.find('.')), &major)) {
        return major;
      }
    }
  }
  return Unexpected("INFO server (no redis_version)");
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisSharedLog>> RedisSharedLog::Connect(
    const ClusterAddress& address, const Options& options) {
  if (options.min_replicas < 0) {
    return absl::InvalidArgumentError("redis: min_replicas must be >= 0");
  }
  if (options.replica_timeout <= absl::ZeroDuration() ||
      options.replica_timeout == absl::InfiniteDuration()) {
    // WAIT with a timeout of 0 would wait for ever.
    return absl::InvalidArgumentError(
        "redis: replica_timeout must be positive and finite");
  }
  const RedisClient::Options client_options = {
      .host = address.host,
      .port = address.port,
      .connect_timeout = options.connect_timeout,
      .command_timeout = options.command_timeout,
  };
  std::unique_ptr<RedisClient> clients[3];
  for (std::unique_ptr<RedisClient>& client : clients) {
    absl::StatusOr<std::unique_ptr<RedisClient>> c =
        RedisClient::Connect(client_options);
    if (!c.ok()) return c.status();
    client = *std::move(c);
  }
  // XINFO STREAM's entries-added and SET ... NX GET came with Redis 7.0.
  absl::StatusOr<int> major = RedisMajorVersion(*clients[2]);
  if (!major.ok()) return major.status();
  if (*major < 7) {
    return absl::FailedPreconditionError(
        absl::StrCat("redis: ", address.host, ":", address.port, " runs Redis ",
                     *major, ".x; a cluster needs Redis 7.0 or later"));
  }
  return std::unique_ptr<RedisSharedLog>(
      new RedisSharedLog(address, options, std::move(clients[0]),
                         std::move(clients[1]), std::move(clients[2])));
}

std::vector<absl::StatusOr<std::string>> RedisSharedLog::Append(
    absl::Span<const LogAppend> records) {
  std::vector<absl::StatusOr<std::string>> ids;
  if (records.empty()) return ids;
  std::vector<std::string> keys;
  keys.reserve(records.size());
  for (const LogAppend& r : records) keys.push_back(address_.Key(r.stream));
  std::vector<std::vector<absl::string_view>> commands;
  commands.reserve(records.size() + 1);
  for (size_t i = 0; i < records.size(); ++i) {
    commands.push_back({"XADD", keys[i], "*", kField, records[i].payload});
  }
  // WAIT in the same round trip: it waits for the replicas to acknowledge
  // every write of this connection so far, so it must follow the XADDs on
  // the same connection, and if the connection breaks before its reply, the
  // XADDs that did succeed fail with it instead of being confirmed by a WAIT
  // on a new connection, which would have nothing to wait for.
  const std::string wait_replicas = absl::StrCat(options_.min_replicas);
  const std::string wait_ms = absl::StrCat(std::max<int64_t>(
      1, absl::ToInt64Milliseconds(options_.replica_timeout)));
  const bool wait = options_.min_replicas > 0;
  if (wait) commands.push_back({"WAIT", wait_replicas, wait_ms});

  std::vector<absl::StatusOr<RedisReply>> replies;
  {
    MutexLock lock(&append_mu_);
    replies = append_->Pipeline(
        commands, wait ? options_.replica_timeout : absl::ZeroDuration());
  }

  absl::Status replicated = absl::OkStatus();
  if (wait) {
    const absl::StatusOr<RedisReply>& acks = replies.back();
    if (!acks.ok()) {
      replicated = absl::Status(
          acks.status().code(),
          absl::StrCat(
              acks.status().message(),
              " (waiting for replicas: the record may be in the log)"));
    } else if (acks->type != RedisReply::Type::kInteger) {
      replicated = Unexpected("WAIT");
    } else if (acks->integer < options_.min_replicas) {
      replicated = absl::UnavailableError(absl::StrCat(
          "redis: the batch was acknowledged by ", acks->integer, " of ",
          options_.min_replicas, " replicas required within ",
          absl::FormatDuration(options_.replica_timeout),
          " (the record may be in the log)"));
    }
  }
  ids.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    absl::StatusOr<RedisReply>& reply = replies[i];
    if (!reply.ok()) {
      ids.push_back(reply.status());
    } else if (reply->type != RedisReply::Type::kString) {
      ids.push_back(Unexpected("XADD"));
    } else if (!replicated.ok()) {
      ids.push_back(replicated);
    } else {
      ids.push_back(std::move(reply->str));
    }
  }
  return ids;
}

absl::StatusOr<std::vector<StreamRecords>> RedisSharedLog::Read(
    absl::Span<const std::pair<std::string, std::string>> after,
    int32_t max_per_stream, absl::Duration wait) {
  if (max_per_stream < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "redis: max_per_stream must be >= 1, not ", max_per_stream));
  }
  wait = std::clamp(wait, absl::ZeroDuration(), kMaxReadWait);
  std::vector<StreamRecords> streams;
  if (after.empty()) {
    // XREAD needs a stream; waiting keeps a caller that loops on Read from
    // spinning while it has none to follow.
    absl::SleepFor(wait);
    return streams;
  }
  std::vector<std::string> keys;
  keys.reserve(after.size());
  for (const auto& [stream, id] : after) keys.push_back(address_.Key(stream));
  std::vector<std::pair<absl::string_view, absl::string_view>> key_ids;
  key_ids.reserve(after.size());
  for (size_t i = 0; i < after.size(); ++i) {
    key_ids.emplace_back(keys[i], after[i].second);
  }

  absl::StatusOr<std::vector<StreamRead>> read;
  {
    MutexLock lock(&read_mu_);
    read = read_->XReadStreams(key_ids, max_per_stream, wait);
  }
  if (!read.ok()) return read.status();

  const std::string prefix = address_.Key("");
  streams.reserve(read->size());
  for (StreamRead& s : *read) {
    absl::string_view stream = s.key;
    if (!absl::ConsumePrefix(&stream, prefix)) {
      return Unexpected(absl::StrCat("XREAD (stream ", s.key, ")"));
    }
    StreamRecords& out = streams.emplace_back();
    out.stream = std::string(stream);
    out.records.reserve(s.entries.size());
    for (StreamEntry& entry : s.entries) {
      if (entry.fields.size() != 1 || entry.fields[0].first != kField) {
        return absl::InternalError(
            absl::StrCat("redis: entry ", entry.id, " of ", s.key,
                         " is not a record (one field \"r\")"));
      }
      out.records.push_back(
          {std::move(entry.id), std::move(entry.fields[0].second)});
    }
  }
  return streams;
}

absl::StatusOr<StreamHead> RedisSharedLog::Head(absl::string_view stream) {
  const std::string key = address_.Key(stream);
  absl::StatusOr<RedisReply> info;
  {
    MutexLock lock(&other_mu_);
    info = other_->Command({"XINFO", "STREAM", key});
  }
  if (absl::IsFailedPrecondition(info.status()) &&
      absl::StrContains(info.status().message(), "no such key")) {
    return StreamHead();
  }
  if (!info.ok()) return info.status();
  // RESP2: [name, value, name, value, ...]
  if (info->type != RedisReply::Type::kArray ||
      info->elements.size() % 2 != 0) {
    return Unexpected("XINFO STREAM");
  }
  StreamHead head;
  bool have_id = false;
  bool have_added = false;
  for (size_t i = 0; i < info->elements.size(); i += 2) {
    const RedisReply& name = info->elements[i];
    const RedisReply& value = info->elements[i + 1];
    if (name.str == "last-generated-id" &&
        value.type == RedisReply::Type::kString) {
      head.last_id = value.str;
      have_id = true;
    } else if (name.str == "entries-added" &&
               value.type == RedisReply::Type::kInteger) {
      head.entries_added = static_cast<uint64_t>(value.integer);
      have_added = true;
    }
  }
  if (!have_id || !have_added) {
    return Unexpected("XINFO STREAM (no last-generated-id or entries-added)");
  }
  return head;
}

absl::StatusOr<std::string> RedisSharedLog::PutIfAbsent(absl::string_view key,
                                                        absl::string_view value,
                                                        absl::Duration ttl) {
  const std::string k = address_.Key(key);
  std::vector<absl::string_view> command = {"SET", k, value, "NX", "GET"};
  std::string ms;
  if (ttl != absl::InfiniteDuration()) {
    absl::StatusOr<std::string> millis = TtlMillis(ttl);
    if (!millis.ok()) return millis.status();
    ms = *std::move(millis);
    command.push_back("PX");
    command.push_back(ms);
  }
  absl::StatusOr<RedisReply> old;
  {
    MutexLock lock(&other_mu_);
    // One command: the value that was there, or nil if this one was stored.
    old = other_->Command(command);
  }
  if (!old.ok()) return old.status();
  switch (old->type) {
    case RedisReply::Type::kNil:
      return std::string(value);
    case RedisReply::Type::kString:
      return std::move(old->str);
    default:
      return Unexpected("SET NX GET");
  }
}

absl::Status RedisSharedLog::Put(absl::string_view key, absl::string_view value,
                                 absl::Duration ttl) {
  const std::string k = address_.Key(key);
  std::string ms;
  if (ttl != absl::InfiniteDuration()) {
    absl::StatusOr<std::string> millis = TtlMillis(ttl);
    if (!millis.ok()) return millis.status();
    ms = *std::move(millis);
  }
  absl::StatusOr<RedisReply> reply;
  {
    MutexLock lock(&other_mu_);
    reply = ms.empty() ? other_->Command({"SET", k, value})
                       : other_->Command({"SET", k, value, "PX", ms});
  }
  return reply.status();
}

absl::Status RedisSharedLog::PutAll(
    absl::Span<const std::pair<std::string, std::string>> values,
    absl::Duration ttl) {
  std::string ms;
  if (ttl != absl::InfiniteDuration()) {
    absl::StatusOr<std::string> millis = TtlMillis(ttl);
    if (!millis.ok()) return millis.status();
    ms = *std::move(millis);
  }
  std::vector<std::string> keys;
  keys.reserve(values.size());
  for (const auto& [key, value] : values) keys.push_back(address_.Key(key));
  std::vector<std::vector<absl::string_view>> commands;
  commands.reserve(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    std::vector<absl::string_view>& c = commands.emplace_back();
    c = {"SET", keys[i], values[i].second};
    if (!ms.empty()) {
      c.push_back("PX");
      c.push_back(ms);
    }
  }
  std::vector<absl::StatusOr<RedisReply>> replies;
  {
    MutexLock lock(&other_mu_);
    replies = other_->Pipeline(commands);
  }
  for (const absl::StatusOr<RedisReply>& r : replies) {
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> RedisSharedLog::Take(
    absl::string_view key) {
  const std::string k = address_.Key(key);
  absl::StatusOr<RedisReply> reply;
  {
    MutexLock lock(&other_mu_);
    reply = other_->Command({"GETDEL", k});
  }
  if (!reply.ok()) return reply.status();
  switch (reply->type) {
    case RedisReply::Type::kNil:
      return std::nullopt;
    case RedisReply::Type::kString:
      return std::optional<std::string>(std::move(reply->str));
    default:
      return Unexpected("GETDEL");
  }
}

absl::StatusOr<std::optional<std::string>> RedisSharedLog::Get(
    absl::string_view key) {
  const std::string k = address_.Key(key);
  absl::StatusOr<RedisReply> reply;
  {
    MutexLock lock(&other_mu_);
    reply = other_->Command({"GET", k});
  }
  if (!reply.ok()) return reply.status();
  switch (reply->type) {
    case RedisReply::Type::kNil:
      return std::nullopt;
    case RedisReply::Type::kString:
      return std::move(reply->str);
    default:
      return Unexpected("GET");
  }
}

absl::Status RedisSharedLog::Remove(absl::string_view key) {
  const std::string k = address_.Key(key);
  MutexLock lock(&other_mu_);
  return other_->Command({"DEL", k}).status();
}

absl::StatusOr<bool> RedisSharedLog::Lease(absl::string_view key,
                                           absl::string_view owner,
                                           absl::Duration ttl) {
  absl::StatusOr<std::string> ms = TtlMillis(ttl);
  if (!ms.ok()) return ms.status();
  const std::string k = address_.Key(key);
  absl::StatusOr<RedisReply> reply;
  {
    MutexLock lock(&other_mu_);
    reply = other_->Command({"EVAL", kLeaseScript, "1", k, owner, *ms});
  }
  if (!reply.ok()) return reply.status();
  if (reply->type != RedisReply::Type::kInteger) return Unexpected("EVAL");
  return reply->integer == 1;
}

absl::Status RedisSharedLog::TrimBefore(absl::string_view stream,
                                        absl::string_view min_id) {
  const std::string key = address_.Key(stream);
  MutexLock lock(&other_mu_);
  // Exact trimming (no "~"): every record below min_id goes, none above.
  return other_->Command({"XTRIM", key, "MINID", min_id}).status();
}

}  // namespace lepton::server
