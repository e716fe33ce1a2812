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

void Finish(rpc::UnaryResponder* call, const absl::Status& status) {
  call->Finish(ToGrpcStatus(status));
}

// A worker's task: finishes `call` with work()'s status, or with the call's
// own if it ended while it waited for the worker (nothing applied).
std::function<void()> FinishWith(rpc::UnaryResponder* call,
                                 std::function<absl::Status()> work) {
  return [call, work = std::move(work)] {
    absl::Status alive = ModelService::CallAlive(*call->context());
    Finish(call, alive.ok() ? work() : alive);
  };
}

void RefuseForShutdown(rpc::UnaryResponder* call, absl::string_view what) {
  call->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            absl::StrCat("server shutting down: ", what)));
}

// A streaming call refused before it started: finishes at once and deletes
// itself when done.
template <typename Reactor, typename Call>
class RefusedStream final : public Reactor {
 public:
  RefusedStream(Call* call, const absl::Status& status) : Reactor(call) {
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
      updates_(options.update_threads, options.update_nice),
      predictions_(options.predict_threads, 0) {
  for (const ModelInfo& info : store_->ListModels()) {
    event_logger_.Follow(info.name);
  }
}

void ModelService::Serve(rpc::CallPoller* poller) {
  using Async = v1::ModelService::AsyncService;
  rpc::Serve(&async_, &Async::RequestCreateModel, this,
             &ModelService::CreateModel, poller);
  rpc::Serve(&async_, &Async::RequestGetModel, this, &ModelService::GetModel,
             poller);
  rpc::Serve(&async_, &Async::RequestListModels, this,
             &ModelService::ListModels, poller);
  rpc::Serve(&async_, &Async::RequestDeleteModel, this,
             &ModelService::DeleteModel, poller);
  rpc::Serve(&async_, &Async::RequestPredict, this, &ModelService::Predict,
             poller);
  rpc::Serve(&async_, &Async::RequestUpdate, this, &ModelService::Update,
             poller);
  rpc::Serve(&async_, &Async::RequestStreamUpdate, this,
             &ModelService::StreamUpdate, poller);
  rpc::Serve(&async_, &Async::RequestRollback, this, &ModelService::Rollback,
             poller);
  rpc::Serve(&async_, &Async::RequestAddClasses, this,
             &ModelService::AddClasses, poller);
  rpc::Serve(&async_, &Async::RequestExportModel, this,
             &ModelService::ExportModel, poller);
  rpc::Serve(&async_, &Async::RequestImportModel, this,
             &ModelService::ImportModel, poller);
  rpc::Serve(&async_, &Async::RequestWatchModel, this,
             &ModelService::WatchModel, poller);
}

absl::Status ModelService::CallAlive(const grpc::ServerContextBase& context) {
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

absl::Status ModelService::Admit(const grpc::ServerContextBase* context,
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

void ModelService::CreateModel(
    rpc::UnaryCall<v1::CreateModelRequest, v1::ModelInfo>* call) {
  if (absl::Status s = Admit(call->context(), Method::kCreateModel); !s.ok()) {
    return Finish(call, s);
  }
  const v1::CreateModelRequest& request = *call->request();
  absl::StatusOr<ModelSpec> spec = SpecFromProto(request.spec());
  if (!spec.ok()) return Finish(call, spec.status());
  auto created = [this, call](absl::StatusOr<ModelInfo> info) {
    if (info.ok()) {
      FillInfo(*info, call->response());
      Log(LogLevel::kInfo, "model_created",
          {{"model", info->name}, {"version", info->version}});
      event_logger_.Follow(info->name);
    }
    return info.status();
  };
  if (cluster_ != nullptr) {
    cluster_->CreateModel(request.name(), *spec,
                          [call, created](absl::StatusOr<ModelInfo> info) {
                            Finish(call, created(std::move(info)));
                          });
    return;
  }
  // Zeroing a large model and writing its first checkpoint would hold every
  // other call on the polling thread meanwhile.
  OnWorker(call, request.name(),
           [this, call, created, spec = *std::move(spec)] {
             return created(store_->CreateModel(call->request()->name(), spec));
           });
}

void ModelService::GetModel(
    rpc::UnaryCall<v1::GetModelRequest, v1::ModelInfo>* call) {
  if (absl::Status s = Admit(call->context(), Method::kGetModel); !s.ok()) {
    return Finish(call, s);
  }
  absl::StatusOr<ModelInfo> info = store_->GetModel(call->request()->name());
  if (info.ok()) FillInfo(*info, call->response());
  Finish(call, info.status());
}

void ModelService::ListModels(
    rpc::UnaryCall<v1::ListModelsRequest, v1::ListModelsResponse>* call) {
  if (absl::Status s = Admit(call->context(), Method::kListModels); !s.ok()) {
    return Finish(call, s);
  }
  for (const ModelInfo& info : store_->ListModels()) {
    FillInfo(info, call->response()->add_models());
  }
  Finish(call, absl::OkStatus());
}

void ModelService::DeleteModel(
    rpc::UnaryCall<v1::DeleteModelRequest, v1::DeleteModelResponse>* call) {
  if (absl::Status s = Admit(call->context(), Method::kDeleteModel); !s.ok()) {
    return Finish(call, s);
  }
  const std::string& name = call->request()->name();
  auto deleted = [this, name](absl::Status status) {
    if (status.ok()) {
      Log(LogLevel::kInfo, "model_deleted", {{"model", name}});
      event_logger_.Unfollow(name);
    }
    return status;
  };
  if (cluster_ != nullptr) {
    cluster_->DeleteModel(name, [call, deleted](absl::Status status) {
      Finish(call, deleted(std::move(status)));
    });
    return;
  }
  // Deleting syncs the model's log and its directory: not on the polling
  // thread.
  OnWorker(call, name, [this, name, deleted] {
    return deleted(store_->DeleteModel(name));
  });
}

void ModelService::Predict(
    rpc::UnaryCall<v1::PredictRequest, v1::PredictResponse>* call) {
  if (absl::Status s = Admit(call->context(), Method::kPredict); !s.ok()) {
    return Finish(call, s);
  }
  const v1::PredictRequest& request = *call->request();
  absl::Status status = CheckBatch("instances", request.instances_size());
  if (!status.ok()) return Finish(call, status);
  if (request.min_version() > 0) return WaitForVersion(call);
  if (request.instances_size() <= kInlinePredictInstances) {
    return Finish(call, PredictNow(request, call->response()));
  }
  PredictOnWorker(call, [this, call] {
    return PredictNow(*call->request(), call->response());
  });
}

void ModelService::PredictOnWorker(rpc::UnaryResponder* call,
                                   std::function<absl::Status()> work) {
  if (!SubmitPrediction(FinishWith(call, std::move(work)))) {
    RefuseForShutdown(call, "not predicted");
  }
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

void ModelService::WaitForVersion(
    rpc::UnaryCall<v1::PredictRequest, v1::PredictResponse>* call) {
  auto wait = std::make_shared<MinVersionWait>(
      store_, call, call->request(),
      [this, call] { return PredictNow(*call->request(), call->response()); },
      [this](MinVersionWait* ended) {
        MutexLock lock(&streams_mu_);
        waits_.erase(ended);
      });
  {
    MutexLock lock(&streams_mu_);
    waits_.emplace(wait.get(), wait);
  }
  wait->Start();
  // Registered before draining() is read: BeginShutdown either sees this
  // wait or this sees draining().
  if (draining()) wait->EndForShutdown();
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

void ModelService::Update(
    rpc::UnaryCall<v1::UpdateRequest, v1::UpdateResponse>* call) {
  if (absl::Status s = Admit(call->context(), Method::kUpdate); !s.ok()) {
    return Finish(call, s);
  }
  // The call's request and response stay valid until Finish().
  const bool queued = SubmitUpdate(call->request()->model(), [this, call] {
    if (absl::Status alive = CallAlive(*call->context()); !alive.ok()) {
      return Finish(call, alive);
    }
    ApplyUpdate(*call->request(), call->response(),
                [call](absl::Status status) { Finish(call, status); });
  });
  if (!queued) RefuseForShutdown(call, "update not applied");
}

void ModelService::StreamUpdate(
    rpc::BidiCall<v1::UpdateRequest, v1::UpdateResponse>* call) {
  if (absl::Status s = Admit(call->context(), Method::kStreamUpdate); !s.ok()) {
    new RefusedStream<rpc::BidiReactor<v1::UpdateRequest, v1::UpdateResponse>,
                      rpc::BidiCall<v1::UpdateRequest, v1::UpdateResponse>>(
        call, s);
    return;
  }
  new StreamUpdateReactor(this, call);
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

void ModelService::OnWorker(rpc::UnaryResponder* call, const std::string& model,
                            std::function<absl::Status()> work) {
  if (!SubmitUpdate(model, FinishWith(call, std::move(work)))) {
    RefuseForShutdown(call, "not applied");
  }
}

void ModelService::Rollback(
    rpc::UnaryCall<v1::RollbackRequest, v1::ModelInfo>* call) {
  if (absl::Status s = Admit(call->context(), Method::kRollback); !s.ok()) {
    return Finish(call, s);
  }
  const v1::RollbackRequest* request = call->request();
  v1::ModelInfo* response = call->response();
  OnWorker(call, request->name(), [this, request, response] {
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

void ModelService::AddClasses(
    rpc::UnaryCall<v1::AddClassesRequest, v1::ModelInfo>* call) {
  if (absl::Status s = Admit(call->context(), Method::kAddClasses); !s.ok()) {
    return Finish(call, s);
  }
  const v1::AddClassesRequest* request = call->request();
  v1::ModelInfo* response = call->response();
  OnWorker(call, request->name(), [this, request, response] {
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

void ModelService::ExportModel(
    rpc::UnaryCall<v1::ExportModelRequest, v1::ExportModelResponse>* call) {
  if (absl::Status s = Admit(call->context(), Method::kExportModel); !s.ok()) {
    return Finish(call, s);
  }
  const v1::ExportModelRequest* request = call->request();
  v1::ExportModelResponse* response = call->response();
  OnWorker(call, request->name(), [this, request, response] {
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

void ModelService::ImportModel(
    rpc::UnaryCall<v1::ImportModelRequest, v1::ModelInfo>* call) {
  if (absl::Status s = Admit(call->context(), Method::kImportModel); !s.ok()) {
    return Finish(call, s);
  }
  const v1::ImportModelRequest* request = call->request();
  v1::ModelInfo* response = call->response();
  OnWorker(call, request->name(), [this, request, response] {
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

void ModelService::WatchModel(
    rpc::WriterCall<v1::WatchModelRequest, v1::ModelEvent>* call) {
  if (absl::Status s = Admit(call->context(), Method::kWatchModel); !s.ok()) {
    new RefusedStream<rpc::WriteReactor<v1::ModelEvent>,
                      rpc::WriterCall<v1::WatchModelRequest, v1::ModelEvent>>(
        call, s);
    return;
  }
  new WatchModelReactor(this, *store_, call);
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
