#include "core/replication/replicated_store.h"

#include <algorithm>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/learning/added_classes.h"
#include "core/learning/model_version.h"
#include "core/storage/model_state.h"
#include "core/storage/update_log_format.h"
#include "core/util/crc32c.h"

namespace lepton {
namespace {

std::string RandomNodeId() {
  std::random_device random;
  return absl::StrFormat("%08x%08x", random(), random());
}

absl::Status NotInLog(absl::string_view what, const absl::Status& why) {
  return absl::UnavailableError(absl::StrCat(
      what, " could not be written to the cluster log (", why.message(),
      "): it may or may not be in the log; retry with the same update_id"));
}

// The digest of a version: its number and its parameters, bit for bit.
LogEntry Entry(LogEntryKind kind, std::string model) {
  LogEntry entry;
  entry.kind = kind;
  entry.model = std::move(model);
  return entry;
}

std::string Digest(const ModelState& state) {
  const uint32_t crc =
      Crc32cExtend(Crc32cExtend(0, &state.version, sizeof(state.version)),
                   state.params.data(), state.params.size() * sizeof(float));
  return absl::StrFormat("%08x", crc);
}

// Where a prediction kept for a delayed label is shared.
std::string PredictionKey(absl::string_view name, uint64_t id) {
  return absl::StrCat("prediction:", name, ":", id);
}

}  // namespace

ReplicatedStore::Applied ReplicatedStore::Failed(absl::Status status) {
  Applied applied;
  applied.status = std::move(status);
  return applied;
}

std::string ReplicatedStore::ModelStream(absl::string_view name,
                                         absl::string_view created_by) {
  return absl::StrCat("model:", name, ":", created_by);
}

ReplicatedStore::ReplicatedStore(ModelStore* store, SharedLog* log,
                                 const ReplicationOptions& options)
    : store_(store),
      log_(log),
      options_(options),
      node_id_(options.node_id.empty() ? RandomNodeId() : options.node_id) {
  appender_ = std::thread([this] { RunAppender(); });
  follower_ = std::thread([this] { RunFollower(); });
}

ReplicatedStore::~ReplicatedStore() { Stop(); }

void ReplicatedStore::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  appender_wake_.SignalAll();
  appender_.join();
  follower_.join();
  std::vector<AppliedCallback> unanswered;
  {
    MutexLock lock(&mu_);
    for (auto& [sequence, waiting] : waiting_) {
      unanswered.push_back(std::move(waiting.done));
    }
    waiting_.clear();
    idle_.SignalAll();
  }
  for (AppliedCallback& done : unanswered) {
    done(Failed(absl::UnavailableError(
        "the node stopped before it applied this change: it may or "
        "may not be in the cluster log; retry with the same "
        "update_id")));
  }
}

bool ReplicatedStore::WaitIdle(absl::Time deadline) {
  MutexLock lock(&mu_);
  while (!waiting_.empty()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    idle_.WaitWithTimeout(&mu_, left);
  }
  return true;
}

void ReplicatedStore::Submit(LogEntry entry, std::string stream,
                             AppliedCallback done) {
  entry.origin = node_id_;
  entry.sequence = next_sequence_.fetch_add(1);
  Outgoing outgoing;
  outgoing.sequence = entry.sequence;
  outgoing.append.stream = std::move(stream);
  outgoing.append.payload = EncodeLogEntry(entry);
  absl::Status refused;
  {
    MutexLock lock(&mu_);
    if (stopping_) {
      refused = absl::UnavailableError("the node is stopping: not applied");
    } else if (outgoing.append.stream.empty()) {
      auto it = followed_.find(entry.model);
      if (it == followed_.end()) {
        refused = absl::NotFoundError(
            absl::StrCat("model \"", entry.model, "\" not found"));
      } else {
        outgoing.append.stream = it->second.stream;
      }
    }
    if (refused.ok()) {
      waiting_.emplace(outgoing.sequence,
                       Waiting{outgoing.append.stream, std::move(done)});
      queue_.push_back(std::move(outgoing));
    }
  }
  if (!refused.ok()) {
    done(Failed(refused));
    return;
  }
  appender_wake_.Signal();
}

void ReplicatedStore::RunAppender() {
  while (true) {
    std::vector<Outgoing> batch;
    {
      MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) appender_wake_.Wait(&mu_);
      if (stopping_) return;  // Stop() answers whatever still waits
      while (!queue_.empty() &&
             static_cast<int32_t>(batch.size()) < options_.append_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    std::vector<LogAppend> appends;
    appends.reserve(batch.size());
    for (Outgoing& o : batch) appends.push_back(std::move(o.append));
    std::vector<absl::StatusOr<std::string>> ids = log_->Append(appends);
    std::vector<std::pair<AppliedCallback, absl::Status>> failed;
    {
      MutexLock lock(&mu_);
      for (size_t i = 0; i < batch.size(); ++i) {
        if (i < ids.size() && ids[i].ok()) continue;
        const absl::Status why = i < ids.size()
                                     ? ids[i].status()
                                     : absl::UnavailableError("no reply");
        auto it = waiting_.find(batch[i].sequence);
        // Gone: the follower already applied it (a reply lost on the way
        // back) or failed it with its model's deletion.
        if (it == waiting_.end()) continue;
        failed.emplace_back(std::move(it->second.done),
                            NotInLog("this change", why));
        waiting_.erase(it);
      }
      if (waiting_.empty()) idle_.SignalAll();
    }
    for (auto& [done, status] : failed) done(Failed(status));
  }
}

void ReplicatedStore::RunFollower() {
  while (true) {
    std::vector<std::pair<std::string, std::string>> after;
    // Catching up, a read does not wait for entries that may never come:
    // the heads say when it is done.
    absl::Duration wait = options_.read_wait;
    {
      MutexLock lock(&mu_);
      if (stopping_) return;
      if (state_ == State::kCatchingUp) wait = absl::Milliseconds(5);
      after.emplace_back(std::string(kCatalogStream),
                         catalog_applied_.ToString());
      for (const auto& [name, f] : followed_) {
        after.emplace_back(f.stream, f.applied.ToString());
      }
    }
    absl::StatusOr<std::vector<StreamRecords>> read =
        log_->Read(after, options_.read_batch, wait);
    if (!read.ok()) {
      absl::SleepFor(options_.retry_delay);
      continue;
    }
    {
      MutexLock lock(&mu_);
      last_contact_ = absl::Now();
    }
    RenewLease();
    // A model's entries before the catalog's: an update read together with
    // its model's deletion was appended before it (the stream is read only
    // once its creation is applied, so creations need no such care).
    for (const StreamRecords& s : *read) {
      if (s.stream == kCatalogStream) continue;
      for (const LogRecord& r : s.records) ApplyRecord(s.stream, r);
    }
    for (const StreamRecords& s : *read) {
      if (s.stream != kCatalogStream) continue;
      for (const LogRecord& r : s.records) ApplyRecord(s.stream, r);
    }
    LookAtHeads();
  }
}

void ReplicatedStore::ApplyRecord(const std::string& stream,
                                  const LogRecord& record) {
  const std::optional<LogPosition> position = LogPosition::Parse(record.id);
  if (!position.has_value()) return;  // not an id the log gives
  absl::StatusOr<LogEntry> entry = DecodeLogEntry(record.payload);
  const bool catalog_kind =
      entry.ok() && (entry->kind == LogEntryKind::kCreate ||
                     entry->kind == LogEntryKind::kImport ||
                     entry->kind == LogEntryKind::kDelete);
  if (entry.ok() && catalog_kind != (stream == kCatalogStream)) {
    entry = absl::DataLossError("log entry: of a kind this stream never holds");
  }
  if (stream != kCatalogStream) {
    MutexLock lock(&mu_);
    // A stream no longer followed (its model was deleted in this read) is
    // not applied further, as on every node.
    auto it = followed_.begin();
    while (it != followed_.end() && it->second.stream != stream) ++it;
    if (it == followed_.end()) return;
    // No node writes an entry of one model into another's stream.
    if (entry.ok() && entry->model != it->first) {
      entry = absl::DataLossError("log entry: in another model's stream");
    }
  }
  // An entry that does not decode is passed over, as every node passes it
  // over; its position still counts.
  Applied applied;
  if (entry.ok()) applied = ApplyEntry(stream, record.id, *entry);
  AppliedCallback done;
  bool digest_due = false;
  bool snapshot_due = false;
  bool checkpoint_due = false;
  uint64_t entries = 0;
  {
    MutexLock lock(&mu_);
    if (stream == kCatalogStream) {
      catalog_applied_ = *position;
    } else if (auto it =
                   entry.ok() ? followed_.find(entry->model) : followed_.end();
               it != followed_.end() && it->second.stream == stream) {
      it->second.applied = *position;
      ++it->second.applied_entries;
      entries = it->second.applied_entries;
      const auto every = [entries](int64_t n) {
        return n > 0 && entries % static_cast<uint64_t>(n) == 0;
      };
      digest_due = every(options_.digest_every);
      snapshot_due = every(options_.snapshot_every);
      checkpoint_due =
          !options_.checkpoint_dir.empty() && every(options_.checkpoint_every);
    } else if (!entry.ok()) {
      for (auto& [name, f] : followed_) {
        if (f.stream != stream) continue;
        f.applied = *position;
        ++f.applied_entries;
      }
    }
    if (entry.ok() && entry->origin == node_id_) {
      auto it = waiting_.find(entry->sequence);
      if (it != waiting_.end()) {
        done = std::move(it->second.done);
        waiting_.erase(it);
        if (waiting_.empty()) idle_.SignalAll();
      }
    }
  }
  // The digest before the answer: a node's own writes are checked by the
  // time its callers see them.
  if (digest_due) CheckDigest(stream, record.id, entry->model);
  if (done) done(std::move(applied));
  snapshot_due = snapshot_due && holds_lease_;
  if (snapshot_due || checkpoint_due) {
    SaveSnapshots(stream, record.id, entries, entry->model, snapshot_due,
                  checkpoint_due);
  }
}

ReplicatedStore::Applied ReplicatedStore::ApplyEntry(const std::string& stream,
                                                     const std::string& id,
                                                     const LogEntry& entry) {
  Applied applied;
  switch (entry.kind) {
    case LogEntryKind::kCreate:
    case LogEntryKind::kImport: {
      // A snapshot (or this node's checkpoint) of the model's stream stands
      // for the entries it includes, which may be trimmed from the log.
      Followed followed;
      followed.stream = ModelStream(entry.model, id);
      std::optional<ModelSnapshot> snapshot = LoadSnapshot(followed.stream);
      absl::StatusOr<ModelInfo> info = absl::UnknownError("no snapshot");
      if (snapshot.has_value()) {
        info = store_->ImportModel(entry.model, snapshot->model_state);
      }
      if (info.ok()) {
        followed.applied =
            LogPosition::Parse(snapshot->position).value_or(LogPosition());
        followed.applied_entries = snapshot->entries;
      } else {
        info = entry.kind == LogEntryKind::kCreate
                   ? store_->CreateModel(entry.model, entry.spec)
                   : store_->ImportModel(entry.model, entry.model_state);
      }
      if (info.ok()) {
        MutexLock lock(&mu_);
        followed_[entry.model] = std::move(followed);
      }
      if (info.ok() && options_.on_catalog)
        options_.on_catalog(entry.model, true);
      applied.status = info.status();
      if (info.ok()) applied.info = *std::move(info);
      break;
    }
    case LogEntryKind::kDelete: {
      applied.status = store_->DeleteModel(entry.model);
      std::string deleted;
      {
        MutexLock lock(&mu_);
        auto it = followed_.find(entry.model);
        if (it != followed_.end()) {
          deleted = it->second.stream;
          followed_.erase(it);
        }
      }
      if (applied.status.ok() && options_.on_catalog) {
        options_.on_catalog(entry.model, false);
      }
      if (!deleted.empty()) {
        DropSnapshots(deleted);
        FailWaiting(deleted, absl::NotFoundError(absl::StrCat(
                                 "model \"", entry.model,
                                 "\" was deleted before this change applied")));
      }
      break;
    }
    case LogEntryKind::kUpdate: {
      absl::StatusOr<LoggedUpdate> update =
          DecodeUpdateRecord(entry.update_record, stream);
      if (!update.ok()) {
        applied.status = update.status();
        break;
      }
      std::vector<ExampleView> views;
      views.reserve(update->examples.size());
      for (const Example& e : update->examples) views.push_back(e.view());
      absl::StatusOr<UpdateResult> result = store_->Update(
          entry.model, views, update->options, update->update_id);
      applied.status = result.status();
      if (result.ok()) applied.update = *result;
      break;
    }
    case LogEntryKind::kRollback: {
      absl::StatusOr<ModelInfo> info =
          store_->Rollback(entry.model, entry.version);
      applied.status = info.status();
      if (info.ok()) applied.info = *std::move(info);
      break;
    }
    case LogEntryKind::kAddClasses: {
      absl::StatusOr<ModelInfo> info =
          store_->AddClasses(entry.model, entry.num_classes);
      applied.status = info.status();
      if (info.ok()) applied.info = *std::move(info);
      break;
    }
  }
  return applied;
}

void ReplicatedStore::FailWaiting(const std::string& stream,
                                  const absl::Status& status) {
  std::vector<AppliedCallback> failed;
  {
    MutexLock lock(&mu_);
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->second.stream == stream) {
        failed.push_back(std::move(it->second.done));
        waiting_.erase(it++);
      } else {
        ++it;
      }
    }
    if (waiting_.empty()) idle_.SignalAll();
  }
  for (AppliedCallback& done : failed) done(Failed(status));
}

void ReplicatedStore::CheckDigest(const std::string& stream,
                                  const std::string& id,
                                  const std::string& name) {
  // The newest version is the one this entry produced: only this thread
  // changes the store's models.
  absl::StatusOr<std::string> blob = store_->ExportModel(name, 0);
  if (!blob.ok()) return;
  absl::StatusOr<ModelState> state = DecodeModelState(*blob);
  if (!state.ok()) return;
  const std::string mine = Digest(*state);
  absl::StatusOr<std::string> first = log_->PutIfAbsent(
      absl::StrCat("digest:", stream, ":", id), mine, options_.digest_ttl);
  if (!first.ok() || *first == mine) return;
  MutexLock lock(&mu_);
  if (state_ == State::kDiverged) return;
  SetStateLocked(State::kDiverged);
  diverged_ = absl::StrCat("this node's model \"", name,
                           "\" differs from the cluster's after log "
                           "entry ",
                           id, " (version and weights digest ", mine,
                           ", the cluster's ", *first,
                           "): the node stopped serving; restart it");
}

std::string ReplicatedStore::CheckpointPath(const std::string& stream) const {
  return JoinPath(options_.checkpoint_dir, absl::StrCat(stream, ".snapshot"));
}

std::optional<ModelSnapshot> ReplicatedStore::LoadSnapshot(
    const std::string& stream) {
  std::optional<ModelSnapshot> best;
  const auto consider = [&best](absl::string_view bytes) {
    absl::StatusOr<ModelSnapshot> s = DecodeModelSnapshot(bytes);
    if (!s.ok()) return;  // a torn or foreign file: the other one, or none
    const std::optional<LogPosition> at = LogPosition::Parse(s->position);
    if (!at.has_value()) return;
    if (!best.has_value() || *LogPosition::Parse(best->position) < *at) {
      best = *std::move(s);
    }
  };
  if (options_.snapshot_every > 0) {
    absl::StatusOr<std::optional<std::string>> in_log =
        log_->Get(absl::StrCat("snapshot:", stream));
    if (in_log.ok() && in_log->has_value()) consider(**in_log);
  }
  if (!options_.checkpoint_dir.empty()) {
    absl::StatusOr<std::string> on_disk =
        options_.fs->ReadFile(CheckpointPath(stream));
    if (on_disk.ok()) consider(*on_disk);
  }
  return best;
}

void ReplicatedStore::SaveSnapshots(const std::string& stream,
                                    const std::string& id, uint64_t entries,
                                    const std::string& name, bool to_log,
                                    bool to_disk) {
  // The newest version is the one this entry produced: only this thread
  // changes the store's models.
  absl::StatusOr<std::string> state = store_->ExportModel(name, 0);
  if (!state.ok()) return;
  ModelSnapshot snapshot;
  snapshot.position = id;
  snapshot.entries = entries;
  snapshot.model_state = *std::move(state);
  const std::string bytes = EncodeModelSnapshot(snapshot);
  if (to_disk) {
    WriteFileAtomically(*options_.fs, CheckpointPath(stream), bytes)
        .IgnoreError();  // the previous checkpoint stays, or none
  }
  if (!to_log) return;
  // The stream is trimmed below the previous snapshot, not this one, so
  // that a node lagging behind this one still finds its next entries.
  const std::string at_key = absl::StrCat("snapshot-at:", stream);
  absl::StatusOr<std::optional<std::string>> previous = log_->Get(at_key);
  if (!log_->Put(absl::StrCat("snapshot:", stream), bytes,
                 absl::InfiniteDuration())
           .ok() ||
      !log_->Put(at_key, id, absl::InfiniteDuration()).ok()) {
    return;
  }
  if (previous.ok() && previous->has_value()) {
    log_->TrimBefore(stream, **previous).IgnoreError();
  }
}

void ReplicatedStore::DropSnapshots(const std::string& stream) {
  if (!options_.checkpoint_dir.empty()) {
    options_.fs->RemoveFile(CheckpointPath(stream)).IgnoreError();
  }
  if (!holds_lease_) return;
  for (const std::string& key :
       {absl::StrCat("snapshot:", stream), absl::StrCat("snapshot-at:", stream),
        stream}) {
    log_->Remove(key).IgnoreError();
  }
}

void ReplicatedStore::RenewLease() {
  if (options_.snapshot_every <= 0) return;
  const absl::Time now = absl::Now();
  if (now - lease_renewed_at_ < options_.lease_ttl / 3) return;
  absl::StatusOr<bool> held =
      log_->Lease("snapshot-lease", node_id_, options_.lease_ttl);
  holds_lease_ = held.ok() && *held;
  if (held.ok()) lease_renewed_at_ = now;
}

void ReplicatedStore::LookAtHeads() {
  std::vector<std::string> streams;
  bool need_catalog_target = false;
  {
    MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (state_ != State::kCatchingUp &&
        now - heads_looked_at_ < 5 * options_.read_wait) {
      return;
    }
    heads_looked_at_ = now;
    need_catalog_target = !catalog_target_.has_value();
    for (const auto& [name, f] : followed_) streams.push_back(f.stream);
  }
  if (need_catalog_target) {
    absl::StatusOr<StreamHead> head = log_->Head(kCatalogStream);
    if (!head.ok()) return;
    MutexLock lock(&mu_);
    catalog_target_ = LogPosition::Parse(head->last_id).value_or(LogPosition());
    return;  // the models' targets once the catalog is applied up to it
  }
  std::map<std::string, StreamHead> heads;
  for (const std::string& stream : streams) {
    absl::StatusOr<StreamHead> head = log_->Head(stream);
    if (head.ok()) heads[stream] = *std::move(head);
  }
  std::set<std::string> kept;
  {
    MutexLock lock(&mu_);
    const bool catalog_done = catalog_applied_ >= *catalog_target_;
    bool caught_up = catalog_done;
    for (auto& [name, f] : followed_) {
      auto head = heads.find(f.stream);
      if (head != heads.end()) f.head = head->second;
      if (!catalog_done) continue;
      if (!f.caught_up_target.has_value()) {
        if (head == heads.end()) {
          caught_up = false;
          continue;
        }
        f.caught_up_target =
            LogPosition::Parse(f.head.last_id).value_or(LogPosition());
      }
      if (f.applied < *f.caught_up_target) caught_up = false;
    }
    for (const auto& [name, f] : followed_) {
      // At the stream's head but short of its count: entries were trimmed
      // before this node applied them.
      if (heads.count(f.stream) > 0 && f.applied.ToString() == f.head.last_id &&
          f.applied_entries != f.head.entries_added &&
          state_ != State::kDiverged) {
        SetStateLocked(State::kDiverged);
        diverged_ = absl::StrCat(
            "this node fell behind model \"", name, "\"'s trimmed log (",
            f.applied_entries, " of its ", f.head.entries_added,
            " entries applied): restart it to load a snapshot");
      }
    }
    if (state_ != State::kCatchingUp || !caught_up) return;
    SetStateLocked(State::kServing);
    if (options_.checkpoint_dir.empty()) return;
    for (const auto& [name, f] : followed_) {
      kept.insert(absl::StrCat(f.stream, ".snapshot"));
    }
  }
  // Checkpoints of models deleted while this node was away.
  absl::StatusOr<std::vector<std::string>> files =
      options_.fs->ListDirectory(options_.checkpoint_dir);
  if (!files.ok()) return;
  for (const std::string& file : *files) {
    if (absl::EndsWith(file, ".snapshot") && kept.count(file) == 0) {
      options_.fs->RemoveFile(JoinPath(options_.checkpoint_dir, file))
          .IgnoreError();
    }
  }
}

void ReplicatedStore::SetStateLocked(State state) {
  state_ = state;
  serving_.store(state == State::kServing, std::memory_order_release);
}

ReplicatedStore::State ReplicatedStore::state() const {
  MutexLock lock(&mu_);
  return state_;
}

absl::Status ReplicatedStore::ServingStatus() const {
  // Every call asks: the answer while serving takes no lock.
  if (serving_.load(std::memory_order_acquire)) return absl::OkStatus();
  MutexLock lock(&mu_);
  switch (state_) {
    case State::kServing:
      return absl::OkStatus();
    case State::kCatchingUp:
      return absl::UnavailableError(
          "this node is catching up with the cluster log: retry on another "
          "node");
    case State::kDiverged:
      return absl::FailedPreconditionError(diverged_);
  }
  return absl::OkStatus();
}

std::optional<ReplicationPosition> ReplicatedStore::PositionOf(
    absl::string_view name) const {
  MutexLock lock(&mu_);
  auto it = followed_.find(name);
  if (it == followed_.end()) return std::nullopt;
  const Followed& f = it->second;
  ReplicationPosition p;
  p.log_position = f.applied.ToString();
  if (f.head.entries_added > f.applied_entries) {
    p.lag_entries = f.head.entries_added - f.applied_entries;
  }
  const LogPosition head =
      LogPosition::Parse(f.head.last_id).value_or(LogPosition());
  if (head.ms > f.applied.ms && p.lag_entries > 0) {
    p.lag_seconds = static_cast<double>(head.ms - f.applied.ms) / 1000.0;
  }
  const absl::Duration silent = absl::Now() - last_contact_;
  if (silent > 5 * options_.read_wait + options_.retry_delay) {
    p.lag_seconds += absl::ToDoubleSeconds(silent);
  }
  return p;
}

void ReplicatedStore::CreateModel(absl::string_view name, const ModelSpec& spec,
                                  InfoCallback done) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return done(s);
  if (absl::Status s = ValidateModelSpec(spec); !s.ok()) return done(s);
  if (store_->AcquireVersion(name).ok()) {
    return done(absl::AlreadyExistsError(
        absl::StrCat("model \"", name, "\" already exists")));
  }
  LogEntry entry = Entry(LogEntryKind::kCreate, std::string(name));
  entry.spec = spec;
  Submit(std::move(entry), std::string(kCatalogStream),
         [done = std::move(done)](Applied a) {
           if (!a.status.ok()) return done(a.status);
           done(std::move(a.info));
         });
}

void ReplicatedStore::DeleteModel(absl::string_view name, StatusCallback done) {
  if (absl::Status s = store_->AcquireVersion(name).status(); !s.ok()) {
    return done(s);
  }
  LogEntry entry = Entry(LogEntryKind::kDelete, std::string(name));
  Submit(std::move(entry), std::string(kCatalogStream),
         [done = std::move(done)](Applied a) { done(a.status); });
}

absl::Status ReplicatedStore::SharePredictions(absl::string_view name,
                                               absl::Span<const uint64_t> ids) {
  if (ids.empty()) return absl::OkStatus();
  absl::StatusOr<std::vector<RememberedPrediction>> kept =
      store_->RememberedPredictions(name, ids);
  if (!kept.ok()) return kept.status();
  const absl::Duration ttl = store_->options().prediction_ttl;
  const absl::Time expires = absl::Now() + ttl;
  std::vector<std::pair<std::string, std::string>> values;
  values.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    values.emplace_back(PredictionKey(name, ids[i]),
                        EncodeSharedPrediction((*kept)[i], expires));
  }
  absl::Status shared = log_->PutAll(values, ttl);
  if (!shared.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "the prediction ids could not be shared with the cluster (",
        shared.message(), "): ask again"));
  }
  return absl::OkStatus();
}

absl::Status ReplicatedStore::TakePredictions(
    absl::string_view name, std::vector<ExampleView>* views,
    std::vector<Example>* owned,
    std::vector<std::pair<std::string, std::string>>* taken) {
  int32_t num_outputs = 0;
  for (size_t i = 0; i < views->size(); ++i) {
    ExampleView& v = (*views)[i];
    if (v.prediction_id == 0) continue;
    if (num_outputs == 0) {
      absl::StatusOr<std::shared_ptr<const ModelVersion>> newest =
          store_->AcquireVersion(name);
      if (!newest.ok()) return newest.status();
      num_outputs = (*newest)->spec().num_outputs();
    }
    if (!v.features.dense.empty() || !v.features.indices.empty() ||
        !v.features.namespaces.empty() || !v.served_outputs.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("examples[", i,
                       "]: an example with a prediction_id carries no "
                       "features and no served outputs"));
    }
    const std::string key = PredictionKey(name, v.prediction_id);
    absl::StatusOr<std::optional<std::string>> value = log_->Take(key);
    if (!value.ok()) {
      return absl::UnavailableError(
          absl::StrCat("examples[", i,
                       "].prediction_id: the cluster's kept predictions "
                       "could not be reached (",
                       value.status().message(), ")"));
    }
    absl::Time expires;
    absl::StatusOr<RememberedPrediction> p =
        value->has_value() ? DecodeSharedPrediction(**value, &expires)
                           : absl::NotFoundError("");
    if (!p.ok()) {
      return absl::NotFoundError(absl::StrCat(
          "examples[", i, "].prediction_id: ", v.prediction_id,
          " is unknown or expired, or its label was already given"));
    }
    taken->emplace_back(key, **value);
    Example& e = (*owned)[i];
    e.features = std::move(p->features);
    e.served_outputs = PadServedOutputs(p->outputs, num_outputs);
    v.features = e.features.view();
    v.served_outputs = e.served_outputs;
    v.prediction_id = 0;
  }
  return absl::OkStatus();
}

void ReplicatedStore::GiveBack(
    const std::vector<std::pair<std::string, std::string>>& taken) {
  for (const auto& [key, value] : taken) {
    absl::Time expires;
    if (!DecodeSharedPrediction(value, &expires).ok()) continue;
    const absl::Duration left = expires - absl::Now();
    if (left > absl::ZeroDuration()) log_->Put(key, value, left).IgnoreError();
  }
}

void ReplicatedStore::StartUpdate(absl::string_view name,
                                  absl::Span<const ExampleView> examples,
                                  const UpdateOptions& options,
                                  absl::string_view update_id,
                                  UpdateCallback done) {
  // Delayed labels are taken from the predictions every node shares, so a
  // prediction made on one node is labeled through any, once.
  std::vector<ExampleView> views(examples.begin(), examples.end());
  std::vector<Example> owned;
  std::vector<std::pair<std::string, std::string>> taken;
  const bool labels =
      std::any_of(views.begin(), views.end(),
                  [](const ExampleView& v) { return v.prediction_id != 0; });
  if (labels) {
    // A retry of an applied update is answered before its ids are looked
    // for (they are used).
    if (std::optional<UpdateResult> original =
            store_->AppliedUpdate(name, update_id)) {
      return done(*original);
    }
    owned.resize(views.size());
    if (absl::Status s = TakePredictions(name, &views, &owned, &taken);
        !s.ok()) {
      GiveBack(taken);
      return done(s);
    }
  }
  absl::StatusOr<PreparedUpdate> prepared =
      store_->PrepareUpdate(name, views, options, update_id);
  if (!prepared.ok() || prepared->original.has_value()) GiveBack(taken);
  if (!prepared.ok()) return done(prepared.status());
  if (prepared->original.has_value()) return done(*prepared->original);
  LogEntry entry = Entry(LogEntryKind::kUpdate, std::string(name));
  entry.update_record = std::move(prepared->record);
  Submit(std::move(entry), "",
         [this, done = std::move(done), settle = std::move(prepared->settle),
          taken = std::move(taken)](Applied a) {
           settle(a.status.ok());
           if (!a.status.ok()) {
             GiveBack(taken);
             return done(a.status);
           }
           done(a.update);
         });
}

void ReplicatedStore::Rollback(absl::string_view name, uint64_t version,
                               InfoCallback done) {
  // A version this node no longer keeps is gone on every node.
  if (absl::Status s = store_->AcquireVersion(name, version).status();
      !s.ok()) {
    return done(s);
  }
  LogEntry entry = Entry(LogEntryKind::kRollback, std::string(name));
  entry.version = version;
  Submit(std::move(entry), "", [done = std::move(done)](Applied a) {
    if (!a.status.ok()) return done(a.status);
    done(std::move(a.info));
  });
}

void ReplicatedStore::AddClasses(absl::string_view name, int32_t num_classes,
                                 InfoCallback done) {
  absl::StatusOr<std::shared_ptr<const ModelVersion>> newest =
      store_->AcquireVersion(name);
  if (!newest.ok()) return done(newest.status());
  if (absl::Status s = CheckAddClasses((*newest)->spec(), num_classes, name);
      !s.ok()) {
    return done(s);
  }
  // The same number: nothing to change (a safe retry).
  if (num_classes == (*newest)->spec().num_classes) {
    return done(store_->GetModel(name));
  }
  LogEntry entry = Entry(LogEntryKind::kAddClasses, std::string(name));
  entry.num_classes = num_classes;
  Submit(std::move(entry), "", [done = std::move(done)](Applied a) {
    if (!a.status.ok()) return done(a.status);
    done(std::move(a.info));
  });
}

void ReplicatedStore::ImportModel(absl::string_view name,
                                  absl::string_view blob, InfoCallback done) {
  absl::StatusOr<std::string> model = store_->CheckImport(name, blob);
  if (!model.ok()) return done(model.status());
  LogEntry entry = Entry(LogEntryKind::kImport, *model);
  entry.model_state = std::string(blob);
  Submit(std::move(entry), std::string(kCatalogStream),
         [done = std::move(done)](Applied a) {
           if (!a.status.ok()) return done(a.status);
           done(std::move(a.info));
         });
}

}  // namespace lepton
