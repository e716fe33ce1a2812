#include "server/cluster/redis_client.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace lepton::server {
namespace {

// Converts a reply that is not an error.
RedisReply Convert(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r.elements);
      for (size_t i = 0; i < r.elements; ++i) {
        out.elements.push_back(Convert(*r.element[i]));
      }
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

absl::Status Unexpected(absl::string_view what) {
  return absl::InternalError(absl::StrCat("redis: unexpected reply to ", what));
}

// An XRANGE reply, or one stream's entries of an XREAD reply: an array of
// [id, [field, value, ...]].
absl::StatusOr<std::vector<StreamEntry>> Entries(const RedisReply& reply) {
  if (reply.type != RedisReply::Type::kArray) return Unexpected("XRANGE");
  std::vector<StreamEntry> entries;
  entries.reserve(reply.elements.size());
  for (const RedisReply& e : reply.elements) {
    if (e.type != RedisReply::Type::kArray || e.elements.size() != 2 ||
        e.elements[0].type != RedisReply::Type::kString ||
        e.elements[1].type != RedisReply::Type::kArray ||
        e.elements[1].elements.size() % 2 != 0) {
      return Unexpected("a stream read (entry)");
    }
    StreamEntry& entry = entries.emplace_back();
    entry.id = e.elements[0].str;
    const std::vector<RedisReply>& kv = e.elements[1].elements;
    for (size_t i = 0; i < kv.size(); i += 2) {
      entry.fields.emplace_back(kv[i].str, kv[i + 1].str);
    }
  }
  return entries;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisClient>> RedisClient::Connect(
    const Options& options) {
  std::unique_ptr<RedisClient> client(new RedisClient(options));
  if (absl::Status s = client->Reconnect(); !s.ok()) return s;
  return client;
}

RedisClient::~RedisClient() { Disconnect(); }

void RedisClient::Disconnect() {
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
}

absl::Status RedisClient::Reconnect() {
  Disconnect();
  redisContext* c =
      redisConnectWithTimeout(options_.host.c_str(), options_.port,
                              absl::ToTimeval(options_.connect_timeout));
  if (c == nullptr || c->err != 0) {
    const std::string why = c == nullptr ? "out of memory" : c->errstr;
    if (c != nullptr) redisFree(c);
    return absl::UnavailableError(absl::StrCat("redis: cannot connect to ",
                                               options_.host, ":",
                                               options_.port, ": ", why));
  }
  context_ = c;
  return absl::OkStatus();
}

absl::Status RedisClient::EnsureConnected() {
  if (context_ != nullptr) {
    // Between commands nothing is due from Redis, so a readable socket means
    // Redis closed it (EOF) or it broke: sending on it would fail the
    // command, or leave it unknown whether the command ran. Start over.
    pollfd p = {context_->fd, POLLIN, 0};
    if (poll(&p, 1, 0) == 0) return absl::OkStatus();
  }
  return Reconnect();
}

std::vector<absl::StatusOr<RedisReply>> RedisClient::Pipeline(
    absl::Span<const std::vector<absl::string_view>> commands,
    absl::Duration block) {
  std::vector<absl::StatusOr<RedisReply>> results;
  results.reserve(commands.size());
  if (commands.empty()) return results;
  const auto fail_the_rest = [&](const absl::Status& status) {
    Disconnect();
    results.resize(commands.size(), status);
    return std::move(results);
  };
  if (absl::Status s = EnsureConnected(); !s.ok()) return fail_the_rest(s);
  if (redisSetTimeout(context_,
                      absl::ToTimeval(options_.command_timeout +
                                      std::max(block, absl::ZeroDuration()))) !=
      REDIS_OK) {
    return fail_the_rest(
        absl::UnavailableError("redis: cannot set the reply timeout"));
  }
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const std::vector<absl::string_view>& args : commands) {
    argv.clear();
    lengths.clear();
    for (absl::string_view a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    // Only buffers the command (it fails only when out of memory): the
    // first redisGetReply below writes them all.
    if (redisAppendCommandArgv(context_, static_cast<int>(args.size()),
                               argv.data(), lengths.data()) != REDIS_OK) {
      return fail_the_rest(absl::ResourceExhaustedError(
          absl::StrCat("redis: cannot buffer a command: ", context_->errstr)));
    }
  }
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
      // The context is unusable after an I/O error or a timeout.
      return fail_the_rest(absl::UnavailableError(
          absl::StrCat("redis: ", options_.host, ":", options_.port, ": ",
                       context_->errstr)));
    }
    auto* reply = static_cast<redisReply*>(raw);
    if (reply->type == REDIS_REPLY_ERROR) {
      results.push_back(absl::FailedPreconditionError(
          absl::StrCat("redis: ", absl::string_view(reply->str, reply->len))));
    } else {
      results.push_back(Convert(*reply));
    }
    freeReplyObject(reply);
  }
  return results;
}

absl::StatusOr<RedisReply> RedisClient::Command(
    absl::Span<const absl::string_view> args) {
  return BlockingCommand(args, absl::ZeroDuration());
}

absl::StatusOr<RedisReply> RedisClient::BlockingCommand(
    absl::Span<const absl::string_view> args, absl::Duration block) {
  const std::vector<absl::string_view> command(args.begin(), args.end());
  return std::move(Pipeline({command}, block).front());
}

absl::StatusOr<std::string> RedisClient::XAdd(
    absl::string_view key,
    absl::Span<const std::pair<absl::string_view, absl::string_view>> fields) {
  std::vector<absl::string_view> args = {"XADD", key, "*"};
  for (const auto& [field, value] : fields) {
    args.push_back(field);
    args.push_back(value);
  }
  absl::StatusOr<RedisReply> reply = Command(args);
  if (!reply.ok()) return reply.status();
  if (reply->type != RedisReply::Type::kString) return Unexpected("XADD");
  return std::move(reply->str);
}

absl::StatusOr<std::vector<StreamEntry>> RedisClient::XRange(
    absl::string_view key, absl::string_view after_id, int64_t count) {
  const std::string start = absl::StrCat("(", after_id);  // exclusive
  const std::string n = absl::StrCat(count);
  absl::StatusOr<RedisReply> reply =
      Command({"XRANGE", key, start, "+", "COUNT", n});
  if (!reply.ok()) return reply.status();
  return Entries(*reply);
}

absl::StatusOr<std::vector<StreamEntry>> RedisClient::XRead(
    absl::string_view key, absl::string_view after_id, int64_t count,
    absl::Duration block) {
  // At least a millisecond: without BLOCK the read would not wait at all.
  absl::StatusOr<std::vector<StreamRead>> read = XReadStreams(
      {{key, after_id}}, count, std::max(block, absl::Milliseconds(1)));
  if (!read.ok()) return read.status();
  if (read->empty()) return std::vector<StreamEntry>();
  return std::move(read->front().entries);
}

absl::StatusOr<std::vector<StreamRead>> RedisClient::XReadStreams(
    absl::Span<const std::pair<absl::string_view, absl::string_view>> after,
    int64_t count, absl::Duration block) {
  const std::string n = absl::StrCat(count);
  // BLOCK 0 would wait for ever: a wait under a millisecond is one.
  const std::string ms =
      absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(block)));
  std::vector<absl::string_view> args = {"XREAD", "COUNT", n};
  const bool blocking = block > absl::ZeroDuration();
  if (blocking) {
    args.push_back("BLOCK");
    args.push_back(ms);
  }
  args.push_back("STREAMS");
  for (const auto& [key, id] : after) args.push_back(key);
  for (const auto& [key, id] : after) args.push_back(id);
  absl::StatusOr<RedisReply> reply =
      BlockingCommand(args, blocking ? block : absl::ZeroDuration());
  if (!reply.ok()) return reply.status();
  std::vector<StreamRead> streams;
  if (reply->type == RedisReply::Type::kNil) return streams;  // none came
  // [[key, entries], ...]
  if (reply->type != RedisReply::Type::kArray) return Unexpected("XREAD");
  for (RedisReply& stream : reply->elements) {
    if (stream.type != RedisReply::Type::kArray ||
        stream.elements.size() != 2 ||
        stream.elements[0].type != RedisReply::Type::kString) {
      return Unexpected("XREAD");
    }
    absl::StatusOr<std::vector<StreamEntry>> entries =
        Entries(stream.elements[1]);
    if (!entries.ok()) return entries.status();
    streams.push_back({std::move(stream.elements[0].str), *std::move(entries)});
  }
  return streams;
}

}  // namespace lepton::server
