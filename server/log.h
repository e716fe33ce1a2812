// Structured logs of lepton_server: one line per event, key=value (logfmt),
// on stderr:
//
//   ts=2026-11-27T15:00:00.123Z level=info event=model_created model=ctr
//   version=1
//
//   Log(LogLevel::kInfo, "model_created", {{"model", name}, {"version", 1}});
//
// `ts` is UTC with milliseconds, `level` one of debug|info|warn|error,
// `event` a fixed snake_case name; then the fields in the order given. A
// value is written bare unless it is empty or holds a space, '=', '"', '\'
// or a control character: then it is quoted, with '"' and '\' escaped and
// newlines written as \n, so one event is always one line a log shipper can
// split on spaces outside quotes.
//
// What goes in: names (models, methods, flags), numbers, status codes and
// the store's own error messages. Never example data (features, labels),
// request payloads or credentials (tokens, keys): callers pass fields one by
// one, so nothing is logged that a call site did not name.
//
// Events below the level set by SetLogLevel() are dropped before their line
// is formatted; LogEnabled() lets a caller skip building costly fields. The
// level is error until a program sets it (lepton_server: --log_level,
// default info), so code that embeds the server (tests, tools) is quiet.
//
// Thread safety: every function may be called from any thread. A line is
// formatted outside any lock and written with one fwrite under a mutex, so
// lines of concurrent events never interleave.
#ifndef LEPTON_SERVER_LOG_H_
#define LEPTON_SERVER_LOG_H_

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace lepton::server {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// "debug", "info", "warn", "error".
absl::string_view LogLevelName(LogLevel level);
// Parses one of the names above; false for anything else.
bool ParseLogLevel(absl::string_view name, LogLevel* level);
// --log_level as a typed flag: a bad value stops the server at start.
bool AbslParseFlag(absl::string_view text, LogLevel* level, std::string* error);
std::string AbslUnparseFlag(LogLevel level);

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool LogEnabled(LogLevel level);

// One key=value pair; the value is formatted when the field is built.
struct LogField {
  LogField(absl::string_view k, absl::string_view v) : key(k), value(v) {}
  LogField(absl::string_view k, const char* v) : key(k), value(v) {}
  LogField(absl::string_view k, const std::string& v) : key(k), value(v) {}
  LogField(absl::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T> &&
                                                    !std::is_same_v<T, bool>>>
  LogField(absl::string_view k, T v) : key(k), value(absl::StrCat(v)) {}
  // Seconds, e.g. 0.25.
  LogField(absl::string_view k, absl::Duration v)
      : key(k), value(absl::StrCat(absl::ToDoubleSeconds(v))) {}

  absl::string_view key;
  std::string value;
};

// Writes the event if `level` is enabled.
void Log(LogLevel level, absl::string_view event,
         std::initializer_list<LogField> fields = {});

// The line Log() writes (without its newline), for `ts`.
std::string FormatLogLine(absl::Time ts, LogLevel level,
                          absl::string_view event,
                          std::initializer_list<LogField> fields);

// Sends every line (newline included) to `sink` instead of stderr; null
// restores stderr. For tests.
void SetLogSinkForTesting(std::function<void(absl::string_view line)> sink);

}  // namespace lepton::server

#endif  // LEPTON_SERVER_LOG_H_
