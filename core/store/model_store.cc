#include "core/store/model_store.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/learning/added_classes.h"
#include "core/storage/log_syncer.h"
#include "core/storage/model_files.h"
#include "core/storage/model_state.h"
#include "core/store/memory_budget.h"
#include "core/store/model.h"
#include "core/util/status_macros.h"

namespace lepton {
namespace {

absl::Status AlreadyExists(absl::string_view name) {
  return absl::AlreadyExistsError(
      absl::StrCat("model \"", name, "\" already exists"));
}

std::unique_ptr<ModelFiles::Options> FilesOptions(const StoreOptions& o) {
  if (o.data_dir.empty()) return nullptr;
  auto files = std::make_unique<ModelFiles::Options>();
  files->fs = o.fs;
  files->data_dir = o.data_dir;
  files->fsync = o.fsync;
  files->fsync_interval = o.fsync_interval;
  files->checkpoint_every_updates = o.checkpoint_every_updates;
  files->checkpoint_interval = o.checkpoint_interval;
  files->checkpoint_log_bytes = o.checkpoint_log_bytes;
  files->keep_checkpoints = o.keep_checkpoints;
  return files;
}

// Whether `dir` is what a CreateModel interrupted before it answered
// leaves: no checkpoint and no log (the first checkpoint is written before
// the log is opened). Anything else is for recovery to judge.
bool IsInterruptedCreate(FileSystem& fs, const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = fs.ListDirectory(dir);
  if (!names.ok()) return false;  // let recovery report the error
  for (const std::string& name : *names) {
    uint64_t version;
    if (ModelFiles::ParseCheckpointFileName(name, &version) ||
        ParseSegmentFileName(name, &version)) {
      return false;
    }
  }
  return true;
}

absl::Status Closed() {
  return absl::UnavailableError("the model store is shutting down");
}

}  // namespace

struct ModelStore::Wiring {
  explicit Wiring(const StoreOptions& options)
      : files_options(FilesOptions(options)) {
    if (files_options != nullptr && options.fsync != FsyncPolicy::kNever) {
      syncer = std::make_unique<LogSyncer>(
          options.fsync == FsyncPolicy::kInterval ? options.fsync_interval
                                                  : absl::ZeroDuration());
    }
    model_options.retained_versions = options.retained_versions;
    model_options.remembered_update_ids = options.remembered_update_ids;
    model_options.files = files_options.get();
    model_options.syncer = syncer.get();
    model_options.prediction_cache.max_entries =
        options.prediction_cache_entries;
    model_options.prediction_cache.max_bytes = options.prediction_cache_bytes;
    model_options.prediction_cache.ttl = options.prediction_ttl;
    model_options.prediction_cache.clock = options.prediction_clock;
  }

  // Storage (options.data_dir non-empty) only.
  const std::unique_ptr<ModelFiles::Options> files_options;
  std::unique_ptr<LogSyncer> syncer;
  ModelOptions model_options;
};

ModelStore::ModelStore(const StoreOptions& options)
    : options_(options),
      ledger_(options.memory_recount_period),
      wiring_(std::make_unique<Wiring>(options)) {
  if (wiring_->files_options != nullptr && options.background_checkpoints) {
    checkpointer_ = std::thread([this] { RunCheckpointer(); });
  }
}

ModelStore::~ModelStore() { Close().IgnoreError(); }

absl::StatusOr<std::unique_ptr<ModelStore>> ModelStore::Open(
    const StoreOptions& options, RecoveryReport* report) {
  RecoveryReport ignored;
  if (report == nullptr) report = &ignored;
  auto store = std::make_unique<ModelStore>(options);
  if (store->wiring_->files_options == nullptr) return store;
  FileSystem& fs = *options.fs;
  const std::string models =
      ModelFiles::ModelsDir(*store->wiring_->files_options);
  LEPTON_RETURN_IF_ERROR(fs.CreateDirectories(models));
  LEPTON_ASSIGN_OR_RETURN(std::vector<std::string> names,
                          fs.ListDirectory(models));
  for (const std::string& name : names) {
    if (absl::StartsWith(name, ".deleted-")) {
      // A DeleteModel interrupted by a crash: finish it.
      fs.RemoveAll(JoinPath(models, name)).IgnoreError();
      continue;
    }
    if (!ValidateModelName(name).ok()) {
      report->notes.push_back(absl::StrCat("ignored ", JoinPath(models, name),
                                           ": not a model name"));
      continue;
    }
    const std::string dir = JoinPath(models, name);
    if (IsInterruptedCreate(fs, dir)) {
      // Never acknowledged, and holds nothing.
      fs.RemoveAll(dir).IgnoreError();
      report->notes.push_back(
          absl::StrCat("removed ", dir,
                       ": an interrupted CreateModel (no checkpoint, no log)"));
      continue;
    }
    absl::StatusOr<std::shared_ptr<Model>> model =
        Model::Recover(name, store->wiring_->model_options, &report->notes);
    MutexLock lock(&store->mu_);
    if (model.ok()) {
      store->models_.emplace(name, *std::move(model));
      report->recovered.push_back(name);
    } else {
      // Whatever went wrong (a corrupt file, an unreadable one), the model's
      // data is not available: DATA_LOSS, with the reason.
      const absl::Status lost =
          absl::IsDataLoss(model.status())
              ? model.status()
              : absl::DataLossError(absl::StrCat(
                    "model \"", name,
                    "\" cannot be recovered: ", model.status().message()));
      store->unrecoverable_.emplace(name, lost);
      report->failed.emplace_back(name, lost);
    }
  }
  return store;
}

absl::StatusOr<ModelInfo> ModelStore::Add(
    absl::string_view name,
    const std::function<absl::StatusOr<std::shared_ptr<Model>>()>& make) {
  {
    MutexLock lock(&mu_);
    if (closed_) return Closed();
    if (models_.contains(name) || creating_.contains(name)) {
      return AlreadyExists(name);
    }
    if (auto it = unrecoverable_.find(name); it != unrecoverable_.end()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "model \"", name,
          "\" exists on disk but could not be recovered; delete it first (",
          it->second.message(), ")"));
    }
    // creating_ also holds names being deleted, which may still be in
    // models_: a delete in progress can make this refuse one model early.
    const size_t held = models_.size() + creating_.size();
    if (options_.max_models > 0 &&
        held >= static_cast<size_t>(options_.max_models)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "max_models: the server holds ", held,
          " models, at or above its limit of ", options_.max_models));
    }
    creating_.emplace(name, 0);
  }
  // Allocating the weights (and writing the first checkpoint) can take a
  // while for a large model: outside mu_.
  absl::StatusOr<std::shared_ptr<Model>> model = make();
  absl::flat_hash_map<uint64_t, std::function<void()>> waiting;
  {
    MutexLock lock(&mu_);
    creating_.erase(creating_.find(name));
    if (!model.ok()) return model.status();
    models_.emplace(std::string(name), *model);
    waiting.swap(creation_waiters_);
  }
  Recount(**model);
  // Outside mu_: callers waiting for a model to exist look again.
  for (auto& [id, ready] : waiting) ready();
  return (*model)->Info();
}

namespace {

// A wait on one model's versions.
class ModelVersionWait final : public VersionWait {
 public:
  ModelVersionWait(std::shared_ptr<Model> model, uint64_t version, uint64_t id)
      : model_(std::move(model)), version_(version), id_(id) {}
  bool Cancel() override { return model_->CancelWait(version_, id_); }

 private:
  const std::shared_ptr<Model> model_;
  const uint64_t version_;
  const uint64_t id_;
};

}  // namespace

// A wait for a model to be created.
class ModelStore::CreationWait final : public VersionWait {
 public:
  CreationWait(const ModelStore* store, uint64_t id) : store_(store), id_(id) {}
  bool Cancel() override {
    MutexLock lock(&store_->mu_);
    return store_->creation_waiters_.erase(id_) > 0;
  }

 private:
  const ModelStore* const store_;
  const uint64_t id_;
};

absl::StatusOr<std::unique_ptr<VersionWait>> ModelStore::WhenVersion(
    absl::string_view name, uint64_t version, std::function<void()> ready) {
  std::shared_ptr<Model> model;
  {
    MutexLock lock(&mu_);
    if (auto it = models_.find(name); it != models_.end()) {
      model = it->second;
    } else if (!unrecoverable_.contains(name)) {
      if (creation_waiters_.size() >= RetainedVersions::kMaxWaiters) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "min_version: more than ", RetainedVersions::kMaxWaiters,
            " calls wait for models to be created"));
      }
      const uint64_t id = next_creation_waiter_++;
      creation_waiters_.emplace(id, std::move(ready));
      return std::make_unique<CreationWait>(this, id);
    }
  }
  if (model == nullptr) return Find(name).status();  // DATA_LOSS
  LEPTON_ASSIGN_OR_RETURN(uint64_t id,
                          model->WhenVersion(version, std::move(ready)));
  if (id == 0) return nullptr;
  return std::make_unique<ModelVersionWait>(std::move(model), version, id);
}

namespace {

// What the memory budget's errors say a change is.
std::string Creating(absl::string_view name) {
  return absl::StrCat("creating model \"", name, "\"");
}
std::string Importing(absl::string_view name) {
  return absl::StrCat("importing model \"", name, "\"");
}
std::string Updating(absl::string_view name) {
  return absl::StrCat("this update of model \"", name, "\"");
}

// An imported model's parameters, and at most the blob's size for its
// holdout set and held updates.
int64_t ImportBytes(const ModelSpec& spec, absl::string_view blob,
                    int32_t retained_versions) {
  return ReservedModelBytes(spec, retained_versions) +
         static_cast<int64_t>(blob.size());
}

}  // namespace

absl::StatusOr<ModelInfo> ModelStore::CreateModel(absl::string_view name,
                                                  const ModelSpec& spec) {
  LEPTON_RETURN_IF_ERROR(ValidateModelName(name));
  LEPTON_RETURN_IF_ERROR(ValidateModelSpec(spec));
  MemoryLedger::Hold hold;
  if (!options_.applies_shared_log) {
    LEPTON_ASSIGN_OR_RETURN(
        hold,
        ReserveMemory(ReservedModelBytes(spec, options_.retained_versions),
                      Creating(name)));
  }
  return Add(name, [&] {
    return Model::Create(std::string(name), spec, wiring_->model_options);
  });
}

namespace {

// An ImportModel blob decoded and checked, and the model's name (`name`, or
// the blob's if empty).
absl::StatusOr<ModelState> DecodeImport(absl::string_view name,
                                        absl::string_view blob,
                                        std::string* model_name) {
  absl::StatusOr<ModelState> state = DecodeModelState(blob);
  if (!state.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model: ", state.status().message()));
  }
  *model_name = name.empty() ? state->name : std::string(name);
  LEPTON_RETURN_IF_ERROR(ValidateModelName(*model_name));
  // Room for the versions to come (version numbers must increase).
  constexpr uint64_t kMaxImportedVersion = uint64_t{1} << 62;
  if (state->version > kMaxImportedVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model: version ", state->version, " is above ", kMaxImportedVersion));
  }
  for (const RecentUpdate& r : state->recent_updates) {
    if (r.result.version > state->version) {
      return absl::InvalidArgumentError(
          absl::StrCat("model: the remembered update \"", r.update_id,
                       "\" produced version ", r.result.version,
                       ", after the model's version ", state->version));
    }
  }
  return state;
}

}  // namespace

absl::StatusOr<std::string> ModelStore::CheckImport(
    absl::string_view name, absl::string_view blob) const {
  std::string model_name;
  LEPTON_ASSIGN_OR_RETURN(ModelState state,
                          DecodeImport(name, blob, &model_name));
  LEPTON_RETURN_IF_ERROR(CheckNameFree(model_name));
  LEPTON_RETURN_IF_ERROR(
      CheckMemory(ImportBytes(state.spec, blob, options_.retained_versions),
                  Importing(model_name)));
  return model_name;
}

absl::Status ModelStore::CheckCreate(absl::string_view name,
                                     const ModelSpec& spec) const {
  LEPTON_RETURN_IF_ERROR(ValidateModelName(name));
  LEPTON_RETURN_IF_ERROR(ValidateModelSpec(spec));
  LEPTON_RETURN_IF_ERROR(CheckNameFree(name));
  return CheckMemory(ReservedModelBytes(spec, options_.retained_versions),
                     Creating(name));
}

absl::Status ModelStore::CheckNameFree(absl::string_view name) const {
  MutexLock lock(&mu_);
  if (models_.contains(name) || creating_.contains(name)) {
    return AlreadyExists(name);
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelInfo> ModelStore::ImportModel(absl::string_view name,
                                                  absl::string_view blob) {
  std::string model_name;
  absl::StatusOr<ModelState> state = DecodeImport(name, blob, &model_name);
  if (!state.ok()) return state.status();
  MemoryLedger::Hold hold;
  if (!options_.applies_shared_log) {
    LEPTON_ASSIGN_OR_RETURN(
        hold, ReserveMemory(
                  ImportBytes(state->spec, blob, options_.retained_versions),
                  Importing(model_name)));
  }
  return Add(model_name, [&] {
    return Model::CreateFromState(model_name, *std::move(state),
                                  wiring_->model_options);
  });
}

absl::StatusOr<std::shared_ptr<Model>> ModelStore::Find(absl::string_view name,
                                                        bool to_change) const {
  ReaderMutexLock lock(&mu_);
  if (to_change && closed_) return Closed();
  if (auto it = models_.find(name); it != models_.end()) return it->second;
  if (auto it = unrecoverable_.find(name); it != unrecoverable_.end()) {
    return it->second;
  }
  return absl::NotFoundError(absl::StrCat("model \"", name, "\" not found"));
}

namespace {

int64_t ChargeOf(const Model& model, int32_t retained_versions) {
  return std::max(model.MemoryBytes(),
                  ReservedModelBytes(model.spec(), retained_versions));
}

}  // namespace

std::vector<MemoryLedger::Charge> ModelStore::Charges() const {
  std::vector<MemoryLedger::Charge> charges;
  for (const std::shared_ptr<Model>& model : AllModels()) {
    charges.push_back(
        {model.get(), ChargeOf(*model, options_.retained_versions)});
  }
  return charges;
}

void ModelStore::Recount(const Model& model) const {
  if (options_.max_memory_bytes <= 0) return;
  ledger_.SetCharge(&model, [&] {
    // A model deleted meanwhile is charged nothing (its delete forgot it).
    {
      ReaderMutexLock lock(&mu_);
      const auto it = models_.find(model.name());
      if (it == models_.end() || it->second.get() != &model) return int64_t{0};
    }
    return ChargeOf(model, options_.retained_versions);
  });
}

int64_t ModelStore::MemoryUsed() const {
  int64_t used = 0;
  for (const MemoryLedger::Charge& c : Charges()) used += c.bytes;
  return used;
}

absl::StatusOr<MemoryLedger::Hold> ModelStore::ReserveMemory(
    int64_t more, absl::string_view what) const {
  return ledger_.Reserve(
      options_.max_memory_bytes, [this] { return Charges(); }, more, what);
}

absl::Status ModelStore::CheckMemory(int64_t more,
                                     absl::string_view what) const {
  return ReserveMemory(more, what).status();
}

std::vector<std::shared_ptr<Model>> ModelStore::AllModels() const {
  std::vector<std::shared_ptr<Model>> models;
  ReaderMutexLock lock(&mu_);
  for (const auto& [name, model] : models_) models.push_back(model);
  return models;
}

absl::StatusOr<ModelInfo> ModelStore::GetModel(absl::string_view name) const {
  LEPTON_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, Find(name));
  return model->Info();
}

std::vector<ModelInfo> ModelStore::ListModels() const {
  std::vector<ModelInfo> infos;
  for (const auto& m : AllModels()) infos.push_back(m->Info());
  return infos;
}

absl::Status ModelStore::DeleteModel(absl::string_view name) {
  std::shared_ptr<Model> model;
  std::shared_ptr<Model> doomed;  // destroyed outside the lock
  {
    MutexLock lock(&mu_);
    if (creating_.contains(name)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "model \"", name, "\" is being created or deleted; retry"));
    }
    if (!models_.contains(name) && !unrecoverable_.contains(name)) {
      return absl::NotFoundError(
          absl::StrCat("model \"", name, "\" not found"));
    }
    // Keeps the name taken until its files are gone.
    creating_.emplace(std::string(name), 0);
    if (auto it = models_.find(name); it != models_.end()) model = it->second;
  }
  absl::Status status;
  std::string trash;
  if (wiring_->files_options != nullptr) {
    // Nothing of the model may open a file by its path once the directory
    // has moved (a new log segment's directory sync, a checkpoint): its
    // changes stop and its log is synced first.
    if (model != nullptr) model->StopChanges();
    // Renamed first: a failed rename leaves the model as it was, and a crash
    // after it leaves no half-deleted model for recovery to trip on (Open
    // removes ".deleted-" leftovers).
    FileSystem& fs = *options_.fs;
    const std::string models = ModelFiles::ModelsDir(*wiring_->files_options);
    trash = JoinPath(models, absl::StrCat(".deleted-", name, "-",
                                          absl::ToUnixNanos(absl::Now())));
    status =
        fs.Rename(ModelFiles::ModelDir(*wiring_->files_options, name), trash);
    // Once renamed, the model is deleted here; if the directory sync fails,
    // a machine crash may bring it back at the next start.
    if (status.ok()) fs.SyncDirectory(models).IgnoreError();
    if (!status.ok() && model != nullptr) model->ResumeChanges();
  }
  {
    MutexLock lock(&mu_);
    if (status.ok()) {
      if (auto it = models_.find(name); it != models_.end()) {
        doomed = std::move(it->second);
        models_.erase(it);
      }
      unrecoverable_.erase(std::string(name));
    }
    if (!status.ok() || trash.empty()) creating_.erase(creating_.find(name));
  }
  if (!status.ok()) return status;
  if (doomed != nullptr) {
    Recount(*doomed);  // no longer in the store: charged nothing
    doomed->Retire();
  }
  if (!trash.empty()) {
    // The deletion is durable already; a leftover is removed at next start.
    options_.fs->RemoveAll(trash).IgnoreError();
    MutexLock lock(&mu_);
    creating_.erase(creating_.find(name));
  }
  return absl::OkStatus();
}

absl::StatusOr<Predictions> ModelStore::Predict(
    absl::string_view name, absl::Span<const FeaturesView> instances,
    uint64_t version, const PredictOptions& options) const {
  LEPTON_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, Find(name));
  return model->Predict(instances, version, options);
}

absl::StatusOr<UpdateResult> ModelStore::Update(
    absl::string_view name, absl::Span<const ExampleView> examples,
    const UpdateOptions& options, absl::string_view update_id) {
  LEPTON_ASSIGN_OR_RETURN(std::shared_ptr<Model> model,
                          Find(name, /*to_change=*/true));
  absl::StatusOr<UpdateResult> result =
      model->Update(examples, options, update_id);
  Recount(*model);
  return result;
}

void ModelStore::StartUpdate(absl::string_view name,
                             absl::Span<const ExampleView> examples,
                             const UpdateOptions& options,
                             absl::string_view update_id,
                             Model::UpdateCallback done) {
  absl::StatusOr<std::shared_ptr<Model>> model = Find(name, /*to_change=*/true);
  if (!model.ok()) {
    done(model.status());
    return;
  }
  absl::StatusOr<MemoryLedger::Hold> hold = ReserveMemory(
      UpdateBytesBound((*model)->spec(), examples), Updating(name));
  if (!hold.ok()) {
    done(hold.status());
    return;
  }
  if (options_.max_memory_bytes <= 0) {  // no budget: nothing to hold
    (*model)->StartUpdate(examples, options, update_id, std::move(done));
    return;
  }
  // Held until the update is answered, when its version is published and
  // counted in the model's charge.
  (*model)->StartUpdate(
      examples, options, update_id,
      [this, counted = *model,
       hold = std::make_shared<MemoryLedger::Hold>(*std::move(hold)),
       done = std::move(done)](absl::StatusOr<UpdateResult> result) {
        Recount(*counted);
        done(std::move(result));
      });
}

absl::StatusOr<std::vector<RememberedPrediction>>
ModelStore::RememberedPredictions(absl::string_view name,
                                  absl::Span<const uint64_t> ids) const {
  LEPTON_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, Find(name));
  return model->Remembered(ids);
}

std::optional<UpdateResult> ModelStore::AppliedUpdate(
    absl::string_view name, absl::string_view update_id) const {
  absl::StatusOr<std::shared_ptr<Model>> model = Find(name);
  if (!model.ok()) return std::nullopt;
  return (*model)->AppliedUpdate(update_id);
}

absl::StatusOr<PreparedUpdate> ModelStore::PrepareUpdate(
    absl::string_view name, absl::Span<const ExampleView> examples,
    const UpdateOptions& options, absl::string_view update_id) {
  LEPTON_ASSIGN_OR_RETURN(std::shared_ptr<Model> model,
                          Find(name, /*to_change=*/true));
  LEPTON_RETURN_IF_ERROR(
      CheckMemory(UpdateBytesBound(model->spec(), examples), Updating(name)));
  return model->PrepareUpdate(examples, options, update_id);
}

absl::StatusOr<ModelInfo> ModelStore::Rollback(absl::string_view name,
                                               uint64_t version) {
  LEPTON_ASSIGN_OR_RETURN(std::shared_ptr<Model> model,
                          Find(name, /*to_change=*/true));
  absl::StatusOr<ModelInfo> info = model->Rollback(version);
  Recount(*model);
  return info;
}

absl::StatusOr<ModelInfo> ModelStore::AddClasses(absl::string_view name,
                                                 int32_t num_classes) {
  LEPTON_ASSIGN_OR_RETURN(std::shared_ptr<Model> model,
                          Find(name, /*to_change=*/true));
  MemoryLedger::Hold hold;
  if (!options_.applies_shared_log) {
    LEPTON_ASSIGN_OR_RETURN(hold, ReserveAddClasses(*model, num_classes));
  }
  absl::StatusOr<ModelInfo> info = model->AddClasses(num_classes);
  Recount(*model);
  return info;
}

absl::Status ModelStore::CheckAddClasses(absl::string_view name,
                                         int32_t num_classes) const {
  LEPTON_ASSIGN_OR_RETURN(std::shared_ptr<Model> model,
                          Find(name, /*to_change=*/true));
  return ReserveAddClasses(*model, num_classes).status();
}

absl::StatusOr<MemoryLedger::Hold> ModelStore::ReserveAddClasses(
    const Model& model, int32_t num_classes) const {
  ModelSpec grown = model.spec();
  LEPTON_RETURN_IF_ERROR(
      ::lepton::CheckAddClasses(grown, num_classes, model.name()));
  if (grown.num_classes == num_classes) return MemoryLedger::Hold();
  // The older learner stays while a retained version is of it.
  grown.num_classes = num_classes;
  return ReserveMemory(
      ReservedModelBytes(grown, options_.retained_versions),
      absl::StrCat("adding classes to model \"", model.name(), "\""));
}

absl::StatusOr<std::string> ModelStore::ExportModel(
    absl::string_view name, uint64_t version,
    uint64_t* exported_version) const {
  LEPTON_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, Find(name));
  LEPTON_ASSIGN_OR_RETURN(ModelState state, model->State(version));
  if (exported_version != nullptr) *exported_version = state.version;
  return EncodeModelState(state);
}

absl::StatusOr<std::shared_ptr<const ModelVersion>> ModelStore::AcquireVersion(
    absl::string_view name, uint64_t version) const {
  LEPTON_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, Find(name));
  return model->Version(version);
}

namespace {

class ModelSubscription : public EventSubscription {
 public:
  ModelSubscription(std::shared_ptr<Model> model, uint64_t id)
      : model_(std::move(model)), id_(id) {}
  ~ModelSubscription() override { model_->events().Unsubscribe(id_); }

 private:
  const std::shared_ptr<Model> model_;
  const uint64_t id_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<EventSubscription>> ModelStore::Watch(
    absl::string_view name, EventHub::Listener listener) const {
  LEPTON_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, Find(name));
  const uint64_t id = model->events().Subscribe(std::move(listener));
  return std::make_unique<ModelSubscription>(std::move(model), id);
}

absl::Status ModelStore::Checkpoint(bool force) {
  absl::Status first;
  for (const auto& model : AllModels()) {
    absl::Status s = model->Checkpoint(force);
    if (!s.ok()) {
      std::fprintf(stderr, "lepton: checkpoint of model \"%s\" failed: %s\n",
                   model->name().c_str(), std::string(s.message()).c_str());
      if (first.ok()) first = s;
    }
  }
  return first;
}

void ModelStore::RunCheckpointer() {
  while (true) {
    {
      MutexLock lock(&mu_);
      if (!closed_) checkpointer_wake_.WaitWithTimeout(&mu_, absl::Seconds(1));
      if (closed_) return;
    }
    Checkpoint(/*force=*/false).IgnoreError();
  }
}

absl::Status ModelStore::Close() {
  {
    MutexLock lock(&mu_);
    if (closed_) return absl::OkStatus();
    closed_ = true;
    checkpointer_wake_.SignalAll();
  }
  if (checkpointer_.joinable()) checkpointer_.join();
  // Answers every update still waiting for its sync.
  if (wiring_->syncer != nullptr) wiring_->syncer->Stop();
  if (wiring_->files_options == nullptr) return absl::OkStatus();
  for (const auto& model : AllModels()) model->SyncLog();
  return Checkpoint(/*force=*/true);
}

}  // namespace lepton
