#include "server/model_service.h"

#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"
#include "server/convert.h"
#include "server/log.h"
#include "server/min_version_wait.h"
#include "server/status_mapping.h"
#include "server/stream_update_reactor.h"
#include "server/watch_model_reactor.h"

namespace lepton::server {
namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context,
                                 const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// A streaming call refused before it started: finishes at once (gRPC holds
// the Finish until the reactor is bound) and deletes itself when done.
template <typename Reactor>
class RefusedStream final : public Reactor {
 public:
  explicit RefusedStream(const absl::Status& status) {
    this->Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

}  // namespace

ModelService::ModelService(ModelStore* store, const ServiceOptions& options,
                           const AccessControl* access_control,
                           ReplicatedStore* cluster)
    : store_(store),
      options_(options),
      access_control_(access_control),
      cluster_(cluster),
      event_logger_(store),
      updates_(options.update_threads, options.update_nice) {
  for (const ModelInfo& info : store_->ListModels()) {
    event_logger_.Follow(info.name);
  }
}

absl::Status ModelService::CallAlive(
    const grpc::CallbackServerContext& context) {
  if (context.deadline() <= std::chrono::system_clock::now()) {
    return absl::DeadlineExceededError(
        "the call's deadline passed before its work started: nothing was "
        "applied");
  }
  if (context.IsCancelled()) {
    return absl::CancelledError(
        "the call was cancelled before its work started: nothing was "
        "applied");
  }
  return absl::OkStatus();
}

absl::Status ModelService::Admit(const grpc::CallbackServerContext* context,
                                 Method method) const {
  if (draining()) {
    return absl::UnavailableError(
        "the server is shutting down: retry on another replica");
  }
  if (cluster_ != nullptr) {
    if (absl::Status s = cluster_->ServingStatus(); !s.ok()) return s;
  }
  if (access_control_ == nullptr) return absl::OkStatus();
  return access_control_->Authorize(context->client_metadata(), method);
}

void ModelService::FillInfo(const ModelInfo& info, v1::ModelInfo* proto) const {
  InfoToProto(info, proto);
  if (cluster_ == nullptr) return;
  if (std::optional<ReplicationPosition> p = cluster_->PositionOf(info.name)) {
    proto->set_log_position(p->log_position);
    proto->set_lag_entries(p->lag_entries);
    proto->set_lag_seconds(p->lag_seconds);
  }
}

absl::StatusOr<ModelInfo> ModelService::Await(
    const std::function<void(ReplicatedStore::InfoCallback)>& change) {
  std::promise<absl::StatusOr<ModelInfo>> answered;
  change([&answered](absl::StatusOr<ModelInfo> info) {
    answered.set_value(std::move(info));
  });
  return answered.get_future().get();
}

absl::Status ModelService::CheckBatch(absl::string_view field,
                                      int64_t size) const {
  if (size > options_.max_batch) {
    return absl::ResourceExhaustedError(
        absl::StrCat(field, ": ", size, " items exceed the server's limit of ",
                     options_.max_batch, " (--max_batch)"));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* ModelService::CreateModel(
    grpc::CallbackServerContext* context, const v1::CreateModelRequest* request,
    v1::ModelInfo* response) {
  if (absl::Status s = Admit(context, Method::kCreateModel); !s.ok()) {
    return Finish(context, s);
  }
  absl::StatusOr<ModelSpec> spec = SpecFromProto(request->spec());
  if (!spec.ok()) return Finish(context, spec.status());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto created = [this, reactor, response](absl::StatusOr<ModelInfo> info) {
    if (info.ok()) {
      FillInfo(*info, response);
      Log(LogLevel::kInfo, "model_created",
          {{"model", info->name}, {"version", info->version}});
      event_logger_.Follow(info->name);
    }
    reactor->Finish(ToGrpcStatus(info.status()));
  };
  if (cluster_ != nullptr) {
    cluster_->CreateModel(request->name(), *spec, std::move(created));
  } else {
    created(store_->CreateModel(request->name(), *spec));
  }
  return reactor;
}

grpc::ServerUnaryReactor* ModelService::GetModel(
    grpc::CallbackServerContext* context, const v1::GetModelRequest* request,
    v1::ModelInfo* response) {
  if (absl::Status s = Admit(context, Method::kGetModel); !s.ok()) {
    return Finish(context, s);
  }
  absl::StatusOr<ModelInfo> info = store_->GetModel(request->name());
  if (info.ok()) FillInfo(*info, response);
  return Finish(context, info.status());
}

grpc::ServerUnaryReactor* ModelService::ListModels(
    grpc::CallbackServerContext* context, const v1::ListModelsRequest* request,
    v1::ListModelsResponse* response) {
  if (absl::Status s = Admit(context, Method::kListModels); !s.ok()) {
    return Finish(context, s);
  }
  for (const ModelInfo& info : store_->ListModels()) {
    FillInfo(info, response->add_models());
  }
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ModelService::DeleteModel(
    grpc::CallbackServerContext* context, const v1::DeleteModelRequest* request,
    v1::DeleteModelResponse* response) {
  if (absl::Status s = Admit(context, Method::kDeleteModel); !s.ok()) {
    return Finish(context, s);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto deleted = [this, reactor, name = request->name()](absl::Status status) {
    if (status.ok()) {
      Log(LogLevel::kInfo, "model_deleted", {{"model", name}});
      event_logger_.Unfollow(name);
    }
    reactor->Finish(ToGrpcStatus(status));
  };
  if (cluster_ != nullptr) {
    cluster_->DeleteModel(request->name(), std::move(deleted));
  } else {
    deleted(store_->DeleteModel(request->name()));
  }
  return reactor;
}

grpc::ServerUnaryReactor* ModelService::Predict(
    grpc::CallbackServerContext* context, const v1::PredictRequest* request,
    v1::PredictResponse* response) {
  if (absl::Status s = Admit(context, Method::kPredict); !s.ok()) {
    return Finish(context, s);
  }
  absl::Status status = CheckBatch("instances", request->instances_size());
  if (!status.ok()) return Finish(context, status);
  if (request->min_version() > 0) {
    return WaitForVersion(context, request, response);
  }
  return Finish(context, PredictNow(*request, response));
}

absl::Status ModelService::PredictNow(const v1::PredictRequest& request,
                                      v1::PredictResponse* response) {
  NamedFeatureViews named;  // alive until Predict returns
  std::vector<FeaturesView> instances = InstancesOf(request, &named);
  PredictOptions options = PredictOptionsOf(request);
  options.max_output_bytes = options_.max_message_bytes;
  absl::StatusOr<Predictions> predictions =
      store_->Predict(request.model(), instances, request.version(), options);
  if (!predictions.ok()) return predictions.status();
  // A cluster node shares the kept predictions before it answers, so that
  // any node takes their labels.
  if (cluster_ != nullptr && !predictions->prediction_ids.empty()) {
    LEPTON_RETURN_IF_ERROR(cluster_->SharePredictions(
        request.model(), predictions->prediction_ids));
  }
  PredictionsToProto(*predictions, response);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* ModelService::WaitForVersion(
    grpc::CallbackServerContext* context, const v1::PredictRequest* request,
    v1::PredictResponse* response) {
  auto wait = std::make_shared<MinVersionWait>(
      store_, context, request,
      [this, request, response] { return PredictNow(*request, response); },
      [this](MinVersionWait* ended) {
        MutexLock lock(&streams_mu_);
        waits_.erase(ended);
      });
  {
    MutexLock lock(&streams_mu_);
    waits_.emplace(wait.get(), wait);
  }
  grpc::ServerUnaryReactor* reactor = wait->Start();
  // Registered before draining() is read: BeginShutdown either sees this
  // wait or this sees draining().
  if (draining()) wait->EndForShutdown();
  return reactor;
}

void ModelService::ApplyUpdate(const v1::UpdateRequest& request,
                               v1::UpdateResponse* response,
                               std::function<void(absl::Status)> done) {
  if (absl::Status s = CheckBatch("examples", request.examples_size());
      !s.ok()) {
    done(s);
    return;
  }
  // The core uses the views only inside StartUpdate() (the log record holds
  // its own copy), so they live long enough here.
  NamedFeatureViews named;
  std::vector<ExampleView> examples = ExamplesOf(request, &named);
  UpdateCallback answer =
      [response, done = std::move(done)](absl::StatusOr<UpdateResult> result) {
        if (result.ok()) UpdateResultToProto(*result, response);
        done(result.status());
      };
  StartUpdate(request.model(), examples, UpdateOptionsOf(request),
              request.update_id(), std::move(answer));
}

void ModelService::StartUpdate(const std::string& model,
                               absl::Span<const ExampleView> examples,
                               const UpdateOptions& options,
                               absl::string_view update_id,
                               UpdateCallback done) {
  if (cluster_ != nullptr) {
    cluster_->StartUpdate(model, examples, options, update_id, std::move(done));
    return;
  }
  store_->StartUpdate(model, examples, options, update_id, std::move(done));
}

grpc::ServerUnaryReactor* ModelService::Update(
    grpc::CallbackServerContext* context, const v1::UpdateRequest* request,
    v1::UpdateResponse* response) {
  if (absl::Status s = Admit(context, Method::kUpdate); !s.ok()) {
    return Finish(context, s);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // request and response stay valid until Finish().
  const bool queued = SubmitUpdate(
      request->model(), [this, context, reactor, request, response] {
        if (absl::Status alive = CallAlive(*context); !alive.ok()) {
          reactor->Finish(ToGrpcStatus(alive));
          return;
        }
        ApplyUpdate(*request, response, [reactor](absl::Status status) {
          reactor->Finish(ToGrpcStatus(status));
        });
      });
  if (!queued) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "server shutting down: update not applied"));
  }
  return reactor;
}

grpc::ServerBidiReactor<v1::UpdateRequest, v1::UpdateResponse>*
ModelService::StreamUpdate(grpc::CallbackServerContext* context) {
  if (absl::Status s = Admit(context, Method::kStreamUpdate); !s.ok()) {
    return new RefusedStream<
        grpc::ServerBidiReactor<v1::UpdateRequest, v1::UpdateResponse>>(s);
  }
  return new StreamUpdateReactor(this, context);
}

bool ModelService::SubmitUpdate(const std::string& model,
                                std::function<void()> task) {
  {
    MutexLock lock(&queued_mu_);
    ++queued_[model];
  }
  auto started = [this, model] {
    MutexLock lock(&queued_mu_);
    auto it = queued_.find(model);
    if (--it->second == 0) queued_.erase(it);
  };
  const bool queued = updates_.Submit([started, task = std::move(task)] {
    started();
    task();
  });
  if (!queued) started();  // dropped: it never waits
  return queued;
}

void ModelService::OnCatalogChange(const std::string& name, bool exists) {
  if (exists) {
    event_logger_.Follow(name);
  } else {
    event_logger_.Unfollow(name);
  }
}

absl::flat_hash_map<std::string, int64_t> ModelService::QueuedByModel() const {
  MutexLock lock(&queued_mu_);
  return queued_;
}

grpc::ServerUnaryReactor* ModelService::OnWorker(
    grpc::CallbackServerContext* context, const std::string& model,
    std::function<absl::Status()> work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const bool queued =
      SubmitUpdate(model, [context, reactor, work = std::move(work)] {
        absl::Status alive = CallAlive(*context);
        reactor->Finish(ToGrpcStatus(alive.ok() ? work() : alive));
      });
  if (!queued) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "server shutting down: not applied"));
  }
  return reactor;
}

grpc::ServerUnaryReactor* ModelService::Rollback(
    grpc::CallbackServerContext* context, const v1::RollbackRequest* request,
    v1::ModelInfo* response) {
  if (absl::Status s = Admit(context, Method::kRollback); !s.ok()) {
    return Finish(context, s);
  }
  return OnWorker(context, request->name(), [this, request, response] {
    absl::StatusOr<ModelInfo> info =
        cluster_ == nullptr
            ? store_->Rollback(request->name(), request->version())
            : Await([&](ReplicatedStore::InfoCallback done) {
                cluster_->Rollback(request->name(), request->version(),
                                   std::move(done));
              });
    if (info.ok()) {
      FillInfo(*info, response);
      Log(LogLevel::kInfo, "model_rolled_back",
          {{"model", info->name},
           {"to_version", request->version()},
           {"version", info->version}});
    }
    return info.status();
  });
}

grpc::ServerUnaryReactor* ModelService::AddClasses(
    grpc::CallbackServerContext* context, const v1::AddClassesRequest* request,
    v1::ModelInfo* response) {
  if (absl::Status s = Admit(context, Method::kAddClasses); !s.ok()) {
    return Finish(context, s);
  }
  return OnWorker(context, request->name(), [this, request, response] {
    absl::StatusOr<ModelInfo> info =
        cluster_ == nullptr
            ? store_->AddClasses(request->name(), request->num_classes())
            : Await([&](ReplicatedStore::InfoCallback done) {
                cluster_->AddClasses(request->name(), request->num_classes(),
                                     std::move(done));
              });
    if (info.ok()) FillInfo(*info, response);
    return info.status();
  });
}

grpc::ServerUnaryReactor* ModelService::ExportModel(
    grpc::CallbackServerContext* context, const v1::ExportModelRequest* request,
    v1::ExportModelResponse* response) {
  if (absl::Status s = Admit(context, Method::kExportModel); !s.ok()) {
    return Finish(context, s);
  }
  return OnWorker(context, request->name(), [this, request, response] {
    uint64_t version = 0;
    absl::StatusOr<std::string> blob =
        store_->ExportModel(request->name(), request->version(), &version);
    if (blob.ok()) {
      *response->mutable_model() = *std::move(blob);
      response->set_version(version);
    }
    return blob.status();
  });
}

grpc::ServerUnaryReactor* ModelService::ImportModel(
    grpc::CallbackServerContext* context, const v1::ImportModelRequest* request,
    v1::ModelInfo* response) {
  if (absl::Status s = Admit(context, Method::kImportModel); !s.ok()) {
    return Finish(context, s);
  }
  return OnWorker(context, request->name(), [this, request, response] {
    absl::StatusOr<ModelInfo> info =
        cluster_ == nullptr
            ? store_->ImportModel(request->name(), request->model())
            : Await([&](ReplicatedStore::InfoCallback done) {
                cluster_->ImportModel(request->name(), request->model(),
                                      std::move(done));
              });
    if (info.ok()) {
      FillInfo(*info, response);
      Log(LogLevel::kInfo, "model_imported",
          {{"model", info->name}, {"version", info->version}});
      event_logger_.Follow(info->name);
    }
    return info.status();
  });
}

grpc::ServerWriteReactor<v1::ModelEvent>* ModelService::WatchModel(
    grpc::CallbackServerContext* context,
    const v1::WatchModelRequest* request) {
  if (absl::Status s = Admit(context, Method::kWatchModel); !s.ok()) {
    return new RefusedStream<grpc::ServerWriteReactor<v1::ModelEvent>>(s);
  }
  return new WatchModelReactor(this, *store_, *request);
}

void ModelService::BeginShutdown() {
  draining_.store(true);
  std::vector<std::shared_ptr<MinVersionWait>> waits;
  {
    MutexLock lock(&streams_mu_);
    for (StreamUpdateReactor* stream : streams_) stream->EndForShutdown();
    for (WatchModelReactor* watch : watches_) watch->EndForShutdown();
    for (const auto& [raw, wait] : waits_) waits.push_back(wait);
  }
  // Outside streams_mu_, which an ended wait takes to unregister.
  for (const std::shared_ptr<MinVersionWait>& wait : waits) {
    wait->EndForShutdown();
  }
}

void ModelService::RegisterStream(StreamUpdateReactor* stream) {
  MutexLock lock(&streams_mu_);
  streams_.insert(stream);
}

void ModelService::UnregisterStream(StreamUpdateReactor* stream) {
  MutexLock lock(&streams_mu_);
  streams_.erase(stream);
}

void ModelService::RegisterWatch(WatchModelReactor* watch) {
  MutexLock lock(&streams_mu_);
  watches_.insert(watch);
}

void ModelService::UnregisterWatch(WatchModelReactor* watch) {
  MutexLock lock(&streams_mu_);
  watches_.erase(watch);
}

}  // namespace lepton::server
