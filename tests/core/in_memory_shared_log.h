// InMemorySharedLog: a SharedLog (core/replication/shared_log.h) in memory,
// for the replication tests: streams with ids "MS-SEQ" (MS from a counter
// the test can advance), values without expiry, leases, and an outage
// switch that makes every call UNAVAILABLE.
//
// Thread safety: every method may be called from any thread; mu_ guards all
// state.
#ifndef LEPTON_TESTS_CORE_IN_MEMORY_SHARED_LOG_H_
#define LEPTON_TESTS_CORE_IN_MEMORY_SHARED_LOG_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/replication/log_position.h"
#include "core/replication/shared_log.h"
#include "core/util/mutex.h"

namespace lepton {

class InMemorySharedLog : public SharedLog {
 public:
  // Every call fails with UNAVAILABLE while `down`.
  void SetDown(bool down) {
    MutexLock lock(&mu_);
    down_ = down;
  }
  // Later ids take this log time (Unix ms).
  void SetTimeMs(uint64_t ms) {
    MutexLock lock(&mu_);
    ms_ = ms;
  }
  // Every record of `stream`, oldest first.
  std::vector<LogRecord> Records(const std::string& stream) {
    MutexLock lock(&mu_);
    return streams_[stream].records;
  }
  // The names of the streams, in order.
  std::vector<std::string> Streams() {
    MutexLock lock(&mu_);
    std::vector<std::string> names;
    for (const auto& [name, s] : streams_) names.push_back(name);
    return names;
  }
  int64_t appended() {
    MutexLock lock(&mu_);
    return appended_;
  }

  std::vector<absl::StatusOr<std::string>> Append(
      absl::Span<const LogAppend> records) override {
    std::vector<absl::StatusOr<std::string>> ids;
    {
      MutexLock lock(&mu_);
      for (const LogAppend& r : records) {
        if (down_) {
          ids.push_back(Down());
          continue;
        }
        Stream& s = streams_[r.stream];
        const LogPosition id{ms_, next_seq_++};
        s.records.push_back({id.ToString(), r.payload});
        ++s.entries_added;
        ++appended_;
        ids.push_back(id.ToString());
      }
    }
    appended_cv_.SignalAll();
    return ids;
  }

  absl::StatusOr<std::vector<StreamRecords>> Read(
      absl::Span<const std::pair<std::string, std::string>> after,
      int32_t max_per_stream, absl::Duration wait) override {
    const absl::Time deadline = absl::Now() + wait;
    MutexLock lock(&mu_);
    while (true) {
      if (down_) return Down();
      std::vector<StreamRecords> out;
      for (const auto& [stream, id] : after) {
        const LogPosition from = LogPosition::Parse(id).value_or(LogPosition());
        StreamRecords sr;
        sr.stream = stream;
        for (const LogRecord& r : streams_[stream].records) {
          if (static_cast<int32_t>(sr.records.size()) >= max_per_stream) break;
          if (*LogPosition::Parse(r.id) > from) sr.records.push_back(r);
        }
        if (!sr.records.empty()) out.push_back(std::move(sr));
      }
      if (!out.empty()) return out;
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return out;
      appended_cv_.WaitWithTimeout(&mu_, left);
    }
  }

  absl::StatusOr<StreamHead> Head(absl::string_view stream) override {
    MutexLock lock(&mu_);
    if (down_) return Down();
    StreamHead head;
    auto it = streams_.find(std::string(stream));
    if (it == streams_.end() || it->second.entries_added == 0) return head;
    head.entries_added = it->second.entries_added;
    head.last_id = it->second.records.empty() ? head.last_id
                                              : it->second.records.back().id;
    return head;
  }

  absl::StatusOr<std::string> PutIfAbsent(absl::string_view key,
                                          absl::string_view value,
                                          absl::Duration) override {
    MutexLock lock(&mu_);
    if (down_) return Down();
    return values_.emplace(std::string(key), std::string(value)).first->second;
  }
  absl::Status Put(absl::string_view key, absl::string_view value,
                   absl::Duration) override {
    MutexLock lock(&mu_);
    if (down_) return Down();
    values_[std::string(key)] = std::string(value);
    return absl::OkStatus();
  }
  absl::Status PutAll(
      absl::Span<const std::pair<std::string, std::string>> values,
      absl::Duration) override {
    MutexLock lock(&mu_);
    if (down_) return Down();
    for (const auto& [key, value] : values) values_[key] = value;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<std::string>> Take(
      absl::string_view key) override {
    MutexLock lock(&mu_);
    if (down_) return Down();
    auto it = values_.find(std::string(key));
    if (it == values_.end()) return std::optional<std::string>();
    std::optional<std::string> value = std::move(it->second);
    values_.erase(it);
    return value;
  }
  absl::StatusOr<std::optional<std::string>> Get(
      absl::string_view key) override {
    MutexLock lock(&mu_);
    if (down_) return Down();
    auto it = values_.find(std::string(key));
    if (it == values_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  absl::Status Remove(absl::string_view key) override {
    MutexLock lock(&mu_);
    if (down_) return Down();
    values_.erase(std::string(key));
    streams_.erase(std::string(key));
    return absl::OkStatus();
  }
  absl::StatusOr<bool> Lease(absl::string_view key, absl::string_view owner,
                             absl::Duration) override {
    MutexLock lock(&mu_);
    if (down_) return Down();
    auto [it, inserted] = values_.emplace(std::string(key), std::string(owner));
    return inserted || it->second == owner;
  }
  absl::Status TrimBefore(absl::string_view stream,
                          absl::string_view min_id) override {
    MutexLock lock(&mu_);
    if (down_) return Down();
    const LogPosition min = LogPosition::Parse(min_id).value_or(LogPosition());
    std::vector<LogRecord>& records = streams_[std::string(stream)].records;
    std::erase_if(records, [&](const LogRecord& r) {
      return *LogPosition::Parse(r.id) < min;
    });
    return absl::OkStatus();
  }

 private:
  struct Stream {
    std::vector<LogRecord> records;
    uint64_t entries_added = 0;
  };
  static absl::Status Down() {
    return absl::UnavailableError("the in-memory log is down");
  }

  Mutex mu_;
  CondVar appended_cv_;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t ms_ ABSL_GUARDED_BY(mu_) = 1700000000000;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t appended_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, Stream> streams_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> values_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lepton

#endif  // LEPTON_TESTS_CORE_IN_MEMORY_SHARED_LOG_H_
