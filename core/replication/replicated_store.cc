#include "core/replication/replicated_store.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/learning/added_classes.h"
#include "core/learning/model_version.h"
#include "core/storage/update_log_format.h"

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

LogEntry Entry(LogEntryKind kind, std::string model) {
  LogEntry entry;
  entry.kind = kind;
  entry.model = std::move(model);
  return entry;
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

std::string ReplicatedStore::ModelOfStream(absl::string_view stream) {
  // Model names hold no ':' (ValidateModelName).
  absl::string_view rest = stream.substr(std::min(stream.size(), size_t{6}));
  return std::string(rest.substr(0, rest.find(':')));
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
  const std::string model =
      stream == kCatalogStream ? "" : ModelOfStream(stream);
  if (stream != kCatalogStream) {
    MutexLock lock(&mu_);
    // A stream no longer followed (its model was deleted in this read) is
    // not applied further, as on every node.
    auto it = followed_.find(model);
    if (it == followed_.end() || it->second.stream != stream) return;
    // No node writes an entry of one model into another's stream.
    if (entry.ok() && entry->model != model) {
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
    } else if (auto it = followed_.find(model); it != followed_.end()) {
      it->second.applied = *position;
      entries = ++it->second.applied_entries;
      const auto every = [entries](int64_t n) {
        return n > 0 && entries % static_cast<uint64_t>(n) == 0;
      };
      digest_due = entry.ok() && every(options_.digest_every);
      snapshot_due =
          entry.ok() && holds_lease_ && every(options_.snapshot_every);
      checkpoint_due = entry.ok() && !options_.checkpoint_dir.empty() &&
                       every(options_.checkpoint_every);
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
  // The model as this entry left it, exported once for whatever is due: the
  // newest version is this entry's, since only this thread changes models.
  std::optional<std::string> state;
  if (digest_due || snapshot_due || checkpoint_due) {
    absl::StatusOr<std::string> blob = store_->ExportModel(model, 0);
    if (blob.ok()) state = *std::move(blob);
  }
  // The digest before the answer: a node's own writes are checked by the
  // time its callers see them.
  if (digest_due && state.has_value()) {
    CheckDigest(stream, record.id, model, *state);
  }
  if (done) done(std::move(applied));
  if ((snapshot_due || checkpoint_due) && state.has_value()) {
    SaveSnapshots(stream, record.id, entries, *std::move(state), snapshot_due,
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
  std::vector<std::string> followed;
  {
    MutexLock lock(&mu_);
    const bool catalog_done = catalog_applied_ >= *catalog_target_;
    bool caught_up = catalog_done;
    for (auto& [name, f] : followed_) {
      auto head = heads.find(f.stream);
      if (head == heads.end()) {
        caught_up = caught_up && f.caught_up_target.has_value() &&
                    f.applied >= *f.caught_up_target;
        continue;
      }
      f.head = head->second;
      // At the stream's head but short of its count: entries were trimmed
      // before this node applied them.
      if (f.applied.ToString() == f.head.last_id &&
          f.applied_entries != f.head.entries_added &&
          state_ != State::kDiverged) {
        SetStateLocked(State::kDiverged);
        diverged_ = absl::StrCat(
            "this node fell behind model \"", name, "\"'s trimmed log (",
            f.applied_entries, " of its ", f.head.entries_added,
            " entries applied): restart it to load a snapshot");
      }
      if (!catalog_done) continue;
      if (!f.caught_up_target.has_value()) {
        f.caught_up_target =
            LogPosition::Parse(f.head.last_id).value_or(LogPosition());
      }
      if (f.applied < *f.caught_up_target) caught_up = false;
    }
    if (state_ != State::kCatchingUp || !caught_up) return;
    SetStateLocked(State::kServing);
    for (const auto& [name, f] : followed_) followed.push_back(f.stream);
  }
  DropOtherCheckpoints(followed);
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
  if (absl::Status s = store_->CheckCreate(name, spec); !s.ok()) {
    return done(s);
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

void ReplicatedStore::StartUpdate(absl::string_view name,
                                  absl::Span<const ExampleView> examples,
                                  const UpdateOptions& options,
                                  absl::string_view update_id,
                                  UpdateCallback done) {
  // Delayed labels are taken from the predictions every node shares, so a
  // prediction made on one node is labeled through any, once.
  // Only then are the views copied, to be rewritten.
  std::vector<ExampleView> views;
  std::vector<Example> owned;
  std::vector<std::pair<std::string, std::string>> taken;
  if (std::any_of(examples.begin(), examples.end(),
                  [](const ExampleView& v) { return v.prediction_id != 0; })) {
    // A retry of an applied update is answered before its ids are looked
    // for (they are used).
    if (std::optional<UpdateResult> original =
            store_->AppliedUpdate(name, update_id)) {
      return done(*original);
    }
    views.assign(examples.begin(), examples.end());
    owned.resize(views.size());
    if (absl::Status s = TakePredictions(name, &views, &owned, &taken);
        !s.ok()) {
      GiveBack(taken);
      return done(s);
    }
    examples = views;
  }
  absl::StatusOr<PreparedUpdate> prepared =
      store_->PrepareUpdate(name, examples, options, update_id);
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
  if (absl::Status s = store_->CheckAddClasses(name, num_classes); !s.ok()) {
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
