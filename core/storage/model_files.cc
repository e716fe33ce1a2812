#include "core/storage/model_files.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace lepton {

std::string ModelFiles::ModelsDir(const Options& options) {
  return JoinPath(options.data_dir, "models");
}

std::string ModelFiles::ModelDir(const Options& options,
                                 absl::string_view name) {
  return JoinPath(ModelsDir(options), name);
}

std::string ModelFiles::CheckpointFileName(uint64_t version) {
  return absl::StrFormat("checkpoint-%020u.ckpt", version);
}

bool ModelFiles::ParseCheckpointFileName(absl::string_view name,
                                         uint64_t* version) {
  constexpr absl::string_view kPrefix = "checkpoint-", kSuffix = ".ckpt";
  if (name.size() != kPrefix.size() + 20 + kSuffix.size() ||
      !absl::StartsWith(name, kPrefix) || !absl::EndsWith(name, kSuffix)) {
    return false;
  }
  return absl::SimpleAtoi(name.substr(kPrefix.size(), 20), version);
}

ModelFiles::ModelFiles(const Options* options, std::string dir,
                       std::unique_ptr<UpdateJournal> journal,
                       std::vector<uint64_t> checkpoints)
    : options_(options),
      dir_(std::move(dir)),
      journal_(std::move(journal)),
      checkpoints_(std::move(checkpoints)) {}

absl::StatusOr<std::unique_ptr<ModelFiles>> ModelFiles::Create(
    const Options* options, absl::string_view name, const ModelState& initial) {
  FileSystem& fs = *options->fs;
  const std::string models = ModelsDir(*options);
  const std::string dir = ModelDir(*options, name);
  if (absl::Status s = fs.CreateDirectories(models); !s.ok()) return s;
  if (absl::StatusOr<std::vector<std::string>> existing = fs.ListDirectory(dir);
      existing.ok() && !existing->empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the data directory already holds files of a model \"", name, "\" (",
        dir, ") that the server did not load; move them away"));
  }
  auto create = [&]() -> absl::StatusOr<std::unique_ptr<ModelFiles>> {
    if (absl::Status s = fs.CreateDirectories(dir); !s.ok()) return s;
    if (absl::Status s = fs.SyncDirectory(models); !s.ok()) return s;
    if (absl::Status s = WriteFileAtomically(
            fs, JoinPath(dir, CheckpointFileName(initial.version)),
            EncodeModelState(initial));
        !s.ok()) {
      return s;
    }
    absl::StatusOr<std::unique_ptr<UpdateJournal>> journal =
        UpdateJournal::Open(&fs, dir, initial.version + 1);
    if (!journal.ok()) return journal.status();
    return std::unique_ptr<ModelFiles>(
        new ModelFiles(options, dir, *std::move(journal), {initial.version}));
  };
  absl::StatusOr<std::unique_ptr<ModelFiles>> files = create();
  if (!files.ok()) fs.RemoveAll(dir).IgnoreError();  // so a retry can work
  return files;
}

absl::StatusOr<ModelFiles::Recovered> ModelFiles::Read(const Options* options,
                                                       absl::string_view name) {
  FileSystem& fs = *options->fs;
  const std::string dir = ModelDir(*options, name);
  absl::StatusOr<std::vector<std::string>> names = fs.ListDirectory(dir);
  if (!names.ok()) return names.status();
  std::vector<uint64_t> checkpoints;
  std::vector<std::pair<uint64_t, std::string>> segments;
  for (const std::string& n : *names) {
    uint64_t v;
    if (ParseCheckpointFileName(n, &v)) checkpoints.push_back(v);
    if (ParseSegmentFileName(n, &v)) segments.emplace_back(v, n);
  }
  std::sort(checkpoints.rbegin(), checkpoints.rend());
  std::sort(segments.begin(), segments.end());

  Recovered recovered;
  std::vector<std::string> rejected;
  bool found = false;
  for (uint64_t v : checkpoints) {
    const std::string path = JoinPath(dir, CheckpointFileName(v));
    absl::StatusOr<std::string> content =
        fs.ReadFile(path, kMaxModelStateBytes);
    absl::StatusOr<ModelState> state =
        content.ok() ? DecodeModelState(*content) : content.status();
    if (state.ok() && state->version != v) {
      state = absl::InvalidArgumentError(absl::StrCat(
          "holds version ", state->version, ", not the ", v, " of its name"));
    }
    if (!state.ok()) {
      // ReadFile's errors name the file; the decoder's do not.
      rejected.push_back(
          content.ok() ? absl::StrCat(path, ": ", state.status().message())
                       : std::string(state.status().message()));
      recovered.corrupt_checkpoints.push_back(v);
      continue;
    }
    recovered.state = *std::move(state);
    recovered.state.name = std::string(name);
    recovered.checkpoint_path = path;
    found = true;
    break;
  }
  if (!found) {
    return absl::DataLossError(absl::StrCat(
        "model \"", name, "\" cannot be recovered: no valid checkpoint in ",
        dir,
        rejected.empty()
            ? ""
            : absl::StrCat(" (", absl::StrJoin(rejected, "; "), ")")));
  }
  for (const std::string& r : rejected) {
    recovered.notes.push_back(
        absl::StrCat("skipped a corrupt checkpoint: ", r));
  }

  uint64_t expected = recovered.state.version + 1;
  for (size_t i = 0; i < segments.size(); ++i) {
    // Every segment is read, even one that should hold only versions the
    // checkpoint has: segment names say where a segment began, not that no
    // stray segment (created, then left empty by a crash) sits after it.
    const std::string path = JoinPath(dir, segments[i].second);
    absl::StatusOr<std::string> content =
        fs.ReadFile(path, kMaxLogSegmentBytes);
    if (!content.ok()) return content.status();
    if (i + 1 < segments.size() &&
        (content->size() < kSegmentHeaderBytes ||
         content->find_first_not_of('\0') == std::string::npos)) {
      // A segment whose header never reached the disk holds no record; the
      // version checks below still catch any record that is missing.
      recovered.notes.push_back(
          absl::StrCat(path, ": skipped an empty segment (", content->size(),
                       " bytes, no header)"));
      continue;
    }
    absl::StatusOr<LogSegment> segment =
        ReadLogSegment(*content, path, /*newest=*/i + 1 == segments.size());
    if (!segment.ok()) return segment.status();
    if (segment->torn) {
      recovered.notes.push_back(
          absl::StrCat(path, ": dropped a torn tail: ", segment->torn_reason));
    }
    if (segment->valid_bytes >= kSegmentHeaderBytes &&
        segment->first_version != segments[i].first) {
      return absl::DataLossError(
          absl::StrCat(path,
                       ": offset 0: the header says the segment starts "
                       "at version ",
                       segment->first_version));
    }
    std::vector<LoggedUpdate> kept;
    for (LoggedUpdate& record : segment->records) {
      if (record.version < expected) continue;
      if (record.version != expected) {
        return absl::DataLossError(absl::StrCat(
            path, ": offset ", record.offset, ": record produces version ",
            record.version, " but the model is at version ", expected - 1,
            " (a part of the log is missing)"));
      }
      ++expected;
      kept.push_back(std::move(record));
    }
    segment->records = std::move(kept);
    recovered.segments.push_back(*std::move(segment));
    recovered.segment_paths.push_back(path);
  }
  // A checkpoint file, valid or not, is only ever left for a version that
  // was durable: the model must get back at least there. (Falling back to an
  // older checkpoint works only while the log that bridges the gap is kept.)
  if (!checkpoints.empty() && expected - 1 < checkpoints.front()) {
    return absl::DataLossError(
        absl::StrCat("model \"", name,
                     "\" cannot be recovered: ", absl::StrJoin(rejected, "; "),
                     "; the older checkpoint and the log reach only version ",
                     expected - 1));
  }
  return recovered;
}

absl::StatusOr<std::unique_ptr<ModelFiles>> ModelFiles::Reopen(
    const Options* options, absl::string_view name, const Recovered& recovered,
    uint64_t version) {
  FileSystem& fs = *options->fs;
  const std::string dir = ModelDir(*options, name);
  if (!recovered.segments.empty() && recovered.segments.back().torn) {
    // Cut the torn tail off, so that this segment, no longer the newest
    // once the log is reopened, reads as complete at the next start.
    const LogSegment& last = recovered.segments.back();
    const std::string& path = recovered.segment_paths.back();
    if (last.valid_bytes < kSegmentHeaderBytes) {
      if (absl::Status s = fs.RemoveFile(path); !s.ok()) return s;
    } else {
      absl::StatusOr<std::unique_ptr<WritableFile>> file =
          fs.OpenForAppend(path);
      if (!file.ok()) return file.status();
      absl::Status s = (*file)->Truncate(last.valid_bytes);
      if (s.ok()) s = (*file)->Sync();
      if (absl::Status c = (*file)->Close(); s.ok()) s = c;
      if (!s.ok()) return s;
    }
  }
  // The replayed records may still be only in the page cache (a kill -9
  // before their fsync), and the checkpoint chosen may have been renamed
  // into place just before: make both durable before anything is built on
  // them.
  for (size_t i = 0; i < recovered.segment_paths.size(); ++i) {
    if (recovered.segments[i].valid_bytes < kSegmentHeaderBytes) continue;
    absl::StatusOr<std::unique_ptr<WritableFile>> file =
        fs.OpenForAppend(recovered.segment_paths[i]);
    if (!file.ok()) return file.status();
    absl::Status s = (*file)->Sync();
    if (absl::Status c = (*file)->Close(); s.ok()) s = c;
    if (!s.ok()) return s;
  }
  // Corrupt checkpoints newer than the one used: the log replayed past them
  // (Read checks that), so they are only in the way.
  for (uint64_t v : recovered.corrupt_checkpoints) {
    if (v > recovered.state.version) {
      fs.RemoveFile(JoinPath(dir, CheckpointFileName(v))).IgnoreError();
    }
  }
  absl::StatusOr<std::vector<std::string>> names = fs.ListDirectory(dir);
  if (!names.ok()) return names.status();
  std::vector<uint64_t> checkpoints;
  for (const std::string& n : *names) {
    uint64_t v;
    if (ParseSegmentFileName(n, &v) && v > version + 1) {
      // Started by a rotation whose records never reached the disk (Read
      // found none in it): it would mislead the next recovery.
      if (absl::Status s = fs.RemoveFile(JoinPath(dir, n)); !s.ok()) return s;
    } else if (absl::EndsWith(n, ".tmp")) {
      fs.RemoveFile(JoinPath(dir, n)).IgnoreError();  // an unfinished write
    } else if (ParseCheckpointFileName(n, &v)) {
      checkpoints.push_back(v);
    }
  }
  std::sort(checkpoints.begin(), checkpoints.end());
  if (absl::Status s = fs.SyncDirectory(dir); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<UpdateJournal>> journal =
      UpdateJournal::Open(&fs, dir, version + 1);
  if (!journal.ok()) return journal.status();
  return std::unique_ptr<ModelFiles>(new ModelFiles(
      options, dir, *std::move(journal), std::move(checkpoints)));
}

absl::Status ModelFiles::WriteCheckpoint(const ModelState& state) {
  FileSystem& fs = *options_->fs;
  const std::string path = JoinPath(dir_, CheckpointFileName(state.version));
  if (absl::Status s = WriteFileAtomically(fs, path, EncodeModelState(state));
      !s.ok()) {
    // The rename may have happened before the directory sync failed: a
    // checkpoint that was reported as not written must not be found at the
    // next start (for a rollback, its version number goes to the next
    // update). If even the removal fails, the caller must stop writing.
    absl::Status r = fs.RemoveFile(path);
    if (absl::IsNotFound(r)) r = absl::OkStatus();
    if (r.ok()) r = fs.SyncDirectory(dir_);  // the removal, made durable
    if (!r.ok()) {
      return absl::DataLossError(absl::StrCat(
          s.message(),
          "; and the partial checkpoint could not be removed: ", r.message()));
    }
    return s;
  }
  MutexLock lock(&mu_);
  auto it =
      std::lower_bound(checkpoints_.begin(), checkpoints_.end(), state.version);
  if (it == checkpoints_.end() || *it != state.version) {
    checkpoints_.insert(it, state.version);
  }
  return absl::OkStatus();
}

absl::Status ModelFiles::RemoveObsolete() {
  std::vector<uint64_t> doomed;
  uint64_t newest;
  {
    MutexLock lock(&mu_);
    const size_t keep =
        static_cast<size_t>(std::max(1, options_->keep_checkpoints));
    while (checkpoints_.size() > keep) {
      doomed.push_back(checkpoints_.front());
      checkpoints_.erase(checkpoints_.begin());
    }
    newest = checkpoints_.back();
  }
  FileSystem& fs = *options_->fs;
  absl::Status result;
  for (uint64_t v : doomed) {
    absl::Status s = fs.RemoveFile(JoinPath(dir_, CheckpointFileName(v)));
    if (!s.ok() && result.ok()) result = s;
  }
  if (absl::Status s = journal_->RemoveSegmentsBefore(newest + 1);
      !s.ok() && result.ok()) {
    result = s;
  }
  return result;
}

std::vector<uint64_t> ModelFiles::checkpoint_versions() const {
  MutexLock lock(&mu_);
  return checkpoints_;
}

absl::StatusOr<ModelState> ModelFiles::ReadCheckpoint(uint64_t version) const {
  {
    MutexLock lock(&mu_);
    if (!std::binary_search(checkpoints_.begin(), checkpoints_.end(),
                            version)) {
      return absl::NotFoundError(
          absl::StrCat("version ", version, " has no checkpoint"));
    }
  }
  const std::string path = JoinPath(dir_, CheckpointFileName(version));
  absl::StatusOr<std::string> content =
      options_->fs->ReadFile(path, kMaxModelStateBytes);
  if (!content.ok()) return content.status();
  absl::StatusOr<ModelState> state = DecodeModelState(*content);
  if (!state.ok()) {
    return absl::DataLossError(
        absl::StrCat(path, ": ", state.status().message()));
  }
  return state;
}

}  // namespace lepton
