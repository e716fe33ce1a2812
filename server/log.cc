#include "server/log.h"

#include <atomic>
#include <cstdio>
#include <utility>

#include "absl/time/clock.h"
#include "core/util/mutex.h"

namespace lepton::server {
namespace {

// Quiet (errors only) until the program chooses: a test or a tool that
// embeds the server keeps its stderr to itself; lepton_server sets
// --log_level (default info) first thing.
std::atomic<int> g_level{static_cast<int>(LogLevel::kError)};

// Guards the sink and the write, so that lines never interleave.
Mutex& SinkMutex() {
  static Mutex* mu = new Mutex;
  return *mu;
}
std::function<void(absl::string_view)>& Sink() {
  static auto* sink = new std::function<void(absl::string_view)>;
  return *sink;
}

bool NeedsQuotes(absl::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '=' || c == '"' || c == '\\' ||
        static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return true;
    }
  }
  return false;
}

void AppendValue(std::string* out, absl::string_view v) {
  if (!NeedsQuotes(v)) {
    out->append(v.data(), v.size());
    return;
  }
  out->push_back('"');
  for (char c : v) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          absl::StrAppend(
              out, "\\x",
              absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

}  // namespace

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

bool ParseLogLevel(absl::string_view name, LogLevel* level) {
  for (LogLevel l :
       {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (name == LogLevelName(l)) {
      *level = l;
      return true;
    }
  }
  return false;
}

bool AbslParseFlag(absl::string_view text, LogLevel* level,
                   std::string* error) {
  if (ParseLogLevel(text, level)) return true;
  *error = "must be debug, info, warn or error";
  return false;
}

std::string AbslUnparseFlag(LogLevel level) {
  return std::string(LogLevelName(level));
}

void SetLogLevel(LogLevel level) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

LogLevel GetLogLevel() {
  return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed));
}

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

std::string FormatLogLine(absl::Time ts, LogLevel level,
                          absl::string_view event,
                          std::initializer_list<LogField> fields) {
  std::string line = absl::StrCat(
      "ts=", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", ts, absl::UTCTimeZone()),
      " level=", LogLevelName(level), " event=");
  AppendValue(&line, event);
  for (const LogField& f : fields) {
    line.push_back(' ');
    line.append(f.key.data(), f.key.size());
    line.push_back('=');
    AppendValue(&line, f.value);
  }
  return line;
}

void Log(LogLevel level, absl::string_view event,
         std::initializer_list<LogField> fields) {
  if (!LogEnabled(level)) return;
  std::string line = FormatLogLine(absl::Now(), level, event, fields);
  line.push_back('\n');
  MutexLock lock(&SinkMutex());
  if (Sink()) {
    Sink()(line);
    return;
  }
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void SetLogSinkForTesting(std::function<void(absl::string_view line)> sink) {
  MutexLock lock(&SinkMutex());
  Sink() = std::move(sink);
}

}  // namespace lepton::server
