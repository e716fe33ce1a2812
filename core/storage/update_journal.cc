#include "core/storage/update_journal.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/storage/update_log_format.h"

namespace lepton {

std::string SegmentFileName(uint64_t first_version) {
  return absl::StrFormat("wal-%020u.log", first_version);
}

bool ParseSegmentFileName(absl::string_view name, uint64_t* first_version) {
  constexpr absl::string_view kPrefix = "wal-", kSuffix = ".log";
  if (name.size() != kPrefix.size() + 20 + kSuffix.size() ||
      !absl::StartsWith(name, kPrefix) || !absl::EndsWith(name, kSuffix)) {
    return false;
  }
  return absl::SimpleAtoi(name.substr(kPrefix.size(), 20), first_version);
}

UpdateJournal::UpdateJournal(FileSystem* fs, std::string dir)
    : fs_(fs), dir_(std::move(dir)) {}

UpdateJournal::~UpdateJournal() {
  MutexLock lock(&mu_);
  for (Segment& s : segments_) {
    if (s.file != nullptr) s.file->Close().IgnoreError();
  }
}

absl::StatusOr<std::unique_ptr<UpdateJournal>> UpdateJournal::Open(
    FileSystem* fs, std::string dir, uint64_t first_version) {
  std::unique_ptr<UpdateJournal> journal(new UpdateJournal(fs, dir));
  absl::StatusOr<std::vector<std::string>> names = fs->ListDirectory(dir);
  if (!names.ok()) return names.status();
  MutexLock lock(&journal->mu_);
  for (const std::string& name : *names) {
    uint64_t first;
    if (ParseSegmentFileName(name, &first) && first < first_version) {
      journal->segments_.push_back(
          {first, JoinPath(dir, name), nullptr, /*directory_synced=*/true});
    }
  }
  absl::StatusOr<Segment> segment = journal->NewSegment(first_version);
  if (!segment.ok()) return segment.status();
  journal->segments_.push_back(*std::move(segment));
  return journal;
}

absl::StatusOr<UpdateJournal::Segment> UpdateJournal::NewSegment(
    uint64_t first_version) {
  Segment segment;
  segment.first_version = first_version;
  segment.path = JoinPath(dir_, SegmentFileName(first_version));
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      fs_->OpenForAppend(segment.path);
  if (!file.ok()) return file.status();
  segment.file = *std::move(file);
  // A leftover of the same name (a crash right after creating it, before any
  // record) holds nothing the model needs.
  absl::Status s = segment.file->Truncate(0);
  if (s.ok()) s = segment.file->Append(EncodeSegmentHeader(first_version));
  if (!s.ok()) {
    // No stray, half-written segment may stay behind: once it is no longer
    // the newest, recovery would take its torn header for corruption.
    segment.file->Close().IgnoreError();
    if (absl::Status r = fs_->RemoveFile(segment.path); !r.ok()) {
      Break(r).IgnoreError();
    }
    return s;
  }
  current_size_ = kSegmentHeaderBytes;
  return segment;
}

absl::Status UpdateJournal::Break(absl::Status error) {
  if (status_.ok()) {
    status_ = absl::Status(
        error.code(),
        absl::StrCat(error.message(),
                     "; the update log is unusable until the server restarts "
                     "and recovers from it"));
  }
  return status_;
}

absl::StatusOr<uint64_t> UpdateJournal::Append(absl::string_view record) {
  MutexLock lock(&mu_);
  if (!status_.ok()) return status_;
  WritableFile& file = *segments_.back().file;
  if (absl::Status s = file.Append(record); !s.ok()) {
    // Leave no partial record behind: the next one must start on a record
    // boundary, and a later recovery must not see a torn record mid-log.
    if (absl::Status t = file.Truncate(current_size_); !t.ok()) {
      Break(t).IgnoreError();
    }
    return s;
  }
  current_size_ += record.size();
  appended_ += record.size();
  return appended_;
}

absl::Status UpdateJournal::Rotate(uint64_t first_version) {
  MutexLock lock(&mu_);
  if (!status_.ok()) return status_;
  if (segments_.back().first_version == first_version) {
    return absl::OkStatus();  // nothing was appended since the last rotation
  }
  const uint64_t old_size = current_size_;
  absl::StatusOr<Segment> segment = NewSegment(first_version);
  if (!segment.ok()) {
    current_size_ = old_size;
    return segment.status();
  }
  segments_.push_back(*std::move(segment));
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> UpdateJournal::Sync() {
  MutexLock sync_lock(&sync_mu_);
  std::vector<std::shared_ptr<WritableFile>> files;
  uint64_t target;
  size_t covered;  // segments_[0, covered) existed when this sync began
  bool sync_directory = false;
  {
    MutexLock lock(&mu_);
    if (!status_.ok()) return status_;
    target = appended_;
    covered = segments_.size();
    for (const Segment& s : segments_) {
      if (s.file != nullptr) files.push_back(s.file);
      sync_directory |= !s.directory_synced;
    }
    if (target == durable_ && !sync_directory && files.size() <= 1) {
      return durable_;
    }
  }
  // The slow part, without mu_: appends go on meanwhile.
  absl::Status s;
  for (const auto& file : files) {
    s = file->Sync();
    if (!s.ok()) break;
  }
  if (s.ok() && sync_directory) s = fs_->SyncDirectory(dir_);

  MutexLock lock(&mu_);
  if (!s.ok()) return Break(s);
  durable_ = std::max(durable_, target);
  // Only Sync() removes or closes segments, and sync_mu_ is held: the first
  // `covered` entries are the ones seen above.
  for (size_t i = 0; i < covered; ++i) {
    Segment& segment = segments_[i];
    segment.directory_synced = true;
    // Only a segment that was already closed to appends when this sync
    // began is complete and durable now. The one that was current may have
    // taken records after the snapshot (and been rotated away since): it
    // stays open for the next sync to cover them.
    if (i + 1 < covered && segment.file != nullptr) {
      segment.file->Close().IgnoreError();
      segment.file = nullptr;
    }
  }
  return durable_;
}

uint64_t UpdateJournal::appended() const {
  MutexLock lock(&mu_);
  return appended_;
}

uint64_t UpdateJournal::durable() const {
  MutexLock lock(&mu_);
  return durable_;
}

absl::Status UpdateJournal::status() const {
  MutexLock lock(&mu_);
  return status_;
}

void UpdateJournal::Fail(const absl::Status& error) {
  MutexLock lock(&mu_);
  Break(error).IgnoreError();
}

absl::Status UpdateJournal::RemoveSegmentsBefore(uint64_t version) {
  MutexLock sync_lock(&sync_mu_);  // Sync() indexes segments_ unlocked
  std::vector<std::string> doomed;
  {
    MutexLock lock(&mu_);
    size_t n = 0;
    while (n + 1 < segments_.size() &&
           segments_[n + 1].first_version <= version) {
      ++n;
    }
    for (size_t i = 0; i < n; ++i) {
      if (segments_[i].file != nullptr)
        segments_[i].file->Close().IgnoreError();
      doomed.push_back(segments_[i].path);
    }
    segments_.erase(segments_.begin(), segments_.begin() + n);
  }
  absl::Status result;
  for (const std::string& path : doomed) {
    if (absl::Status s = fs_->RemoveFile(path); !s.ok() && result.ok()) {
      result = s;
    }
  }
  // So that a removed segment does not come back after a power cut.
  if (!doomed.empty() && result.ok()) result = fs_->SyncDirectory(dir_);
  return result;
}

}  // namespace lepton
