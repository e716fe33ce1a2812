#include "server/cluster/redis_client.h"

#include <hiredis/hiredis.h>
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

absl::StatusOr<RedisReply> RedisClient::Run(
    absl::Span<const absl::string_view> args, absl::Duration timeout) {
  if (context_ == nullptr) {
    if (absl::Status s = Reconnect(); !s.ok()) return s;
  }
  if (redisSetTimeout(context_, absl::ToTimeval(timeout)) != REDIS_OK) {
    Disconnect();
    return absl::UnavailableError("redis: cannot set the reply timeout");
  }
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (absl::string_view a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  auto* reply = static_cast<redisReply*>(redisCommandArgv(
      context_, static_cast<int>(args.size()), argv.data(), lengths.data()));
  if (reply == nullptr) {
    // The context is unusable after an I/O error or a timeout.
    const std::string why = context_->errstr;
    Disconnect();
    return absl::UnavailableError(
        absl::StrCat("redis: ", options_.host, ":", options_.port, ": ", why));
  }
  absl::StatusOr<RedisReply> result;
  if (reply->type == REDIS_REPLY_ERROR) {
    result = absl::FailedPreconditionError(
        absl::StrCat("redis: ", absl::string_view(reply->str, reply->len)));
  } else {
    result = Convert(*reply);
  }
  freeReplyObject(reply);
  return result;
}

absl::StatusOr<RedisReply> RedisClient::Command(
    absl::Span<const absl::string_view> args) {
  return Run(args, options_.command_timeout);
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
  const std::string n = absl::StrCat(count);
  const std::string ms =
      absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(block)));
  absl::StatusOr<RedisReply> reply =
      Run({"XREAD", "COUNT", n, "BLOCK", ms, "STREAMS", key, after_id},
          block + options_.command_timeout);
  if (!reply.ok()) return reply.status();
  if (reply->type == RedisReply::Type::kNil) return std::vector<StreamEntry>();
  // [[key, entries]]
  if (reply->type != RedisReply::Type::kArray || reply->elements.size() != 1 ||
      reply->elements[0].type != RedisReply::Type::kArray ||
      reply->elements[0].elements.size() != 2) {
    return Unexpected("XREAD");
  }
  return Entries(reply->elements[0].elements[1]);
}

}  // namespace lepton::server
