#include "core/replication/replicated_store.h"

#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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
  }
  for (AppliedCallback& done : unanswered) {
    done(Failed(absl::UnavailableError(
        "the node stopped before it applied this change: it may or "
        "may not be in the cluster log; retry with the same "
        "update_id")));
  }
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
    }
    for (auto& [done, status] : failed) done(Failed(status));
  }
}

void ReplicatedStore::RunFollower() {
  while (true) {
    std::vector<std::pair<std::string, std::string>> after;
    {
      MutexLock lock(&mu_);
      if (stopping_) return;
      after.emplace_back(std::string(kCatalogStream),
                         catalog_applied_.ToString());
      for (const auto& [name, f] : followed_) {
        after.emplace_back(f.stream, f.applied.ToString());
      }
    }
    absl::StatusOr<std::vector<StreamRecords>> read =
        log_->Read(after, options_.read_batch, options_.read_wait);
    if (!read.ok()) {
      absl::SleepFor(options_.retry_delay);
      continue;
    }
    {
      MutexLock lock(&mu_);
      last_contact_ = absl::Now();
    }
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
  Applied applied;
  if (entry.ok()) {
    {
      // An entry of a stream no longer followed (its model was deleted in
      // this read) is skipped, as every node skips it.
      MutexLock lock(&mu_);
      if (stream != kCatalogStream) {
        auto it = followed_.find(entry->model);
        if (it == followed_.end() || it->second.stream != stream) return;
      }
    }
    applied = ApplyEntry(stream, record.id, *entry);
  }
  AppliedCallback done;
  bool digest_due = false;
  {
    MutexLock lock(&mu_);
    if (stream == kCatalogStream) {
      catalog_applied_ = *position;
    } else if (entry.ok()) {
      auto it = followed_.find(entry->model);
      if (it != followed_.end() && it->second.stream == stream) {
        it->second.applied = *position;
        ++it->second.applied_entries;
        digest_due = options_.digest_every > 0 &&
                     it->second.applied_entries % options_.digest_every == 0;
      }
    }
    if (entry.ok() && entry->origin == node_id_) {
      auto it = waiting_.find(entry->sequence);
      if (it != waiting_.end()) {
        done = std::move(it->second.done);
        waiting_.erase(it);
      }
    }
  }
  if (done) done(std::move(applied));
  if (digest_due) CheckDigest(stream, record.id, entry->model);
}

ReplicatedStore::Applied ReplicatedStore::ApplyEntry(const std::string& stream,
                                                     const std::string& id,
                                                     const LogEntry& entry) {
  Applied applied;
  const auto follow = [&](absl::StatusOr<ModelInfo> info) {
    if (info.ok()) {
      MutexLock lock(&mu_);
      Followed followed;
      followed.stream = ModelStream(entry.model, id);
      followed_[entry.model] = std::move(followed);
    }
    applied.status = info.status();
    if (info.ok()) applied.info = *std::move(info);
  };
  switch (entry.kind) {
    case LogEntryKind::kCreate:
      follow(store_->CreateModel(entry.model, entry.spec));
      break;
    case LogEntryKind::kImport:
      follow(store_->ImportModel(entry.model, entry.model_state));
      break;
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
      if (!deleted.empty()) {
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
  absl::StatusOr<std::string> first =
      log_->PutIfAbsent(absl::StrCat("digest:", stream, ":", id), mine);
  if (!first.ok() || *first == mine) return;
  MutexLock lock(&mu_);
  if (state_ == State::kDiverged) return;
  state_ = State::kDiverged;
  diverged_ = absl::StrCat("this node's model \"", name,
                           "\" differs from the cluster's after log "
                           "entry ",
                           id, " (version and weights digest ", mine,
                           ", the cluster's ", *first,
                           "): the node stopped serving; restart it");
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
  if (state_ == State::kCatchingUp && caught_up) state_ = State::kServing;
}

ReplicatedStore::State ReplicatedStore::state() const {
  MutexLock lock(&mu_);
  return state_;
}

absl::Status ReplicatedStore::ServingStatus() const {
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
  if (store_->GetModel(name).ok()) {
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
  if (absl::Status s = store_->GetModel(name).status(); !s.ok()) {
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
  absl::StatusOr<PreparedUpdate> prepared =
      store_->PrepareUpdate(name, examples, options, update_id);
  if (!prepared.ok()) return done(prepared.status());
  if (prepared->original.has_value()) return done(*prepared->original);
  LogEntry entry = Entry(LogEntryKind::kUpdate, std::string(name));
  entry.update_record = std::move(prepared->record);
  Submit(std::move(entry), "",
         [done = std::move(done),
          settle = std::move(prepared->settle)](Applied a) {
           settle(a.status.ok());
           if (!a.status.ok()) return done(a.status);
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
  absl::StatusOr<ModelInfo> info = store_->GetModel(name);
  if (!info.ok()) return done(info.status());
  // The same number: nothing to change (a safe retry). Anything else is
  // decided at apply: refused there, the same way on every node.
  if (num_classes == info->spec.num_classes) return done(*std::move(info));
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
