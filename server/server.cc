#include "server/server.h"

#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <chrono>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/util/file_system.h"
#include "server/cluster/cluster_address.h"
#include "server/cluster/redis_shared_log.h"
#include "server/log.h"
#include "server/metrics_interceptor.h"

namespace lepton::server {
namespace {

constexpr char kServiceName[] = "lepton.v1.ModelService";

// The service's options, with the message limit the server was given.
ServiceOptions ServiceOptionsOf(const ServerOptions& options) {
  ServiceOptions service = options.service;
  service.max_message_bytes = options.max_message_bytes;
  return service;
}
constexpr char kInferenceServiceName[] = "inference.GRPCInferenceService";

absl::Status ValidateOptions(const ServerOptions& o) {
  if (o.max_message_bytes < 1024) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_message_bytes: must be at least 1024, got ", o.max_message_bytes));
  }
  if (o.service.max_batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_batch: must be at least 1, got ", o.service.max_batch));
  }
  if (o.serving_threads < 1 || o.serving_threads > 64) {
    return absl::InvalidArgumentError(absl::StrCat(
        "serving_threads: must be 1 to 64, got ", o.serving_threads));
  }
  if (o.service.predict_threads < 1 || o.service.predict_threads > 64) {
    return absl::InvalidArgumentError(absl::StrCat(
        "predict_threads: must be 1 to 64, got ", o.service.predict_threads));
  }
  if (o.service.update_threads < 1 || o.service.update_threads > 64) {
    return absl::InvalidArgumentError(absl::StrCat(
        "update_threads: must be 1 to 64, got ", o.service.update_threads));
  }
  if (o.service.update_nice < 0 || o.service.update_nice > 19) {
    return absl::InvalidArgumentError(absl::StrCat(
        "update_nice: must be 0 to 19, got ", o.service.update_nice));
  }
  if (o.store.keep_checkpoints < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("keep_checkpoints: must be at least 1, got ",
                     o.store.keep_checkpoints));
  }
  if (o.store.checkpoint_log_bytes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint_log_bytes: must be at least 1, got ",
                     o.store.checkpoint_log_bytes));
  }
  if (o.store.checkpoint_every_updates < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint_every_updates: must be at least 1, got ",
                     o.store.checkpoint_every_updates));
  }
  if (o.store.fsync_interval <= absl::ZeroDuration() ||
      o.store.checkpoint_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "fsync_interval and checkpoint_interval: must be positive");
  }
  if (o.max_concurrent_streams < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_concurrent_streams: must be >= 0, got ",
                     o.max_concurrent_streams));
  }
  if (o.max_transport_bytes != 0 &&
      o.max_transport_bytes < int64_t{2} * o.max_message_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_transport_bytes: must be 0 (no quota) or at least twice "
        "max_message_bytes (",
        int64_t{2} * o.max_message_bytes,
        "), or a message at the size limit could be refused; got ",
        o.max_transport_bytes));
  }
  if (o.store.max_models < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_models: must be >= 0, got ", o.store.max_models));
  }
  if (o.cluster.min_replicas < 0 || o.cluster.digest_every < 0 ||
      o.cluster.snapshot_every < 0) {
    return absl::InvalidArgumentError(
        "cluster_min_replicas, cluster_digest_every and "
        "cluster_snapshot_every_updates: must be >= 0");
  }
  if (o.store.retained_versions < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("retained_versions: must be at least 1, got ",
                     o.store.retained_versions));
  }
  return absl::OkStatus();
}

ReplicationOptions ReplicationOptionsOf(const ServerOptions& o) {
  ReplicationOptions options;
  options.node_id = o.cluster.node_id;
  options.digest_every = o.cluster.digest_every;
  options.snapshot_every = o.cluster.snapshot_every;
  options.checkpoint_every = o.store.checkpoint_every_updates;
  options.fs = o.store.fs;
  return options;
}

}  // namespace

Server::Server(const ServerOptions& options, std::unique_ptr<ModelStore> store,
               RecoveryReport recovery, std::unique_ptr<AccessControl> access,
               std::unique_ptr<SharedLog> cluster_log,
               const ReplicationOptions& replication)
    : options_(options),
      store_(std::move(store)),
      cluster_log_(std::move(cluster_log)),
      replicated_(cluster_log_ == nullptr
                      ? nullptr
                      : std::make_unique<ReplicatedStore>(
                            store_.get(), cluster_log_.get(),
                            WithCatalogListener(replication))),
      recovery_(std::move(recovery)),
      access_(std::move(access)),
      service_(store_.get(), ServiceOptionsOf(options), access_.get(),
               replicated_.get()),
      inference_(store_.get(), &service_, &serving_, options.max_message_bytes),
      reflection_({kServiceName, kInferenceServiceName,
                   grpc::health::v1::Health::service_full_name()}) {
  if (replicated_ == nullptr) return;
  catalog_listener_.store(&service_);
  // The models the node made before the listener was there (Follow is
  // idempotent and ignores a model deleted since).
  for (const ModelInfo& info : store_->ListModels()) {
    service_.OnCatalogChange(info.name, true);
  }
}

ReplicationOptions Server::WithCatalogListener(ReplicationOptions options) {
  options.on_catalog = [this](const std::string& name, bool exists) {
    if (ModelService* service = catalog_listener_.load()) {
      service->OnCatalogChange(name, exists);
    }
  };
  return options;
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerOptions& options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  // Security settings first: a typo in a path should not cost a recovery.
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  std::unique_ptr<AccessControl> access;
  if (!options.auth_tokens_file.empty()) {
    absl::StatusOr<std::unique_ptr<AccessControl>> loaded =
        AccessControl::FromFile(options.auth_tokens_file);
    if (!loaded.ok()) return loaded.status();
    access = *std::move(loaded);
  }
  std::unique_ptr<SharedLog> cluster_log;
  StoreOptions store_options = options.store;
  ReplicationOptions replication = ReplicationOptionsOf(options);
  if (!options.cluster.address.empty()) {
    absl::StatusOr<ClusterAddress> address =
        ParseClusterAddress(options.cluster.address);
    if (!address.ok()) return address.status();
    if (!options.store.data_dir.empty()) {
      replication.checkpoint_dir = JoinPath(
          options.store.data_dir, absl::StrCat("cluster-", address->name));
      if (absl::Status s =
              options.store.fs->CreateDirectories(replication.checkpoint_dir);
          !s.ok()) {
        return s;
      }
    }
    store_options.data_dir = "";  // the log holds the models
    store_options.applies_shared_log = true;
    RedisSharedLog::Options log_options;
    log_options.min_replicas = options.cluster.min_replicas;
    absl::StatusOr<std::unique_ptr<RedisSharedLog>> log =
        RedisSharedLog::Connect(*address, log_options);
    if (!log.ok()) return log.status();
    cluster_log = *std::move(log);
  }
  RecoveryReport recovery;
  absl::StatusOr<std::unique_ptr<ModelStore>> store =
      ModelStore::Open(store_options, &recovery);
  if (!store.ok()) return store.status();
  std::unique_ptr<Server> server(
      new Server(options, *std::move(store), std::move(recovery),
                 std::move(access), std::move(cluster_log), replication));

  grpc::ServerBuilder builder;
  if (!options.listen.empty()) {
    builder.AddListeningPort(options.listen, *credentials, &server->port_);
  }
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  if (options.max_transport_bytes > 0) {
    grpc::ResourceQuota quota("lepton_transport");
    quota.Resize(static_cast<size_t>(options.max_transport_bytes));
    builder.SetResourceQuota(quota);  // the builder keeps a reference
  }
  if (options.max_concurrent_streams > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                               options.max_concurrent_streams);
  }
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      std::make_unique<MetricsInterceptorFactory>(&server->metrics_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.RegisterService(server->service_.grpc_service());
  builder.RegisterService(server->inference_.grpc_service());
  builder.RegisterService(server->health_.grpc_service());
  builder.RegisterService(server->reflection_.grpc_service());
  for (int i = 0; i < options.serving_threads; ++i) {
    server->pollers_.push_back(
        std::make_unique<rpc::CallPoller>(builder.AddCompletionQueue()));
  }
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr ||
      (!options.listen.empty() && server->port_ == 0)) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on \"", options.listen, "\""));
  }
  // Every method on every queue: a call is served, start to end, by the
  // thread of the queue it arrived on.
  for (const std::unique_ptr<rpc::CallPoller>& poller : server->pollers_) {
    server->service_.Serve(poller.get());
    server->inference_.Serve(poller.get());
    server->health_.Serve(poller.get());
    server->reflection_.Serve(poller.get());
    poller->Start();
  }
  if (server->replicated_ == nullptr) {
    server->SetServing(true);
  } else {
    server->SetServing(false);
    Server* s = server.get();
    server->cluster_health_ = std::thread([s] { s->FollowClusterHealth(); });
  }
  if (!options.metrics_listen.empty()) {
    Server* s = server.get();
    server->dashboard_ = std::make_unique<Dashboard>(server->store_.get(),
                                                     server->access_.get());
    server->dashboard_->Start();
    Dashboard* dashboard = server->dashboard_.get();
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http =
        MetricsHttpServer::Start(
            options.metrics_listen, [s] { return s->RenderMetrics(); },
            [dashboard](const HttpRequest& r) { return dashboard->Handle(r); });
    if (!http.ok()) return http.status();
    server->metrics_http_ = *std::move(http);
  }
  return server;
}

void Server::FollowClusterHealth() {
  std::optional<ReplicatedStore::State> reported;
  while (!shutting_down_.load()) {
    const ReplicatedStore::State state = replicated_->state();
    if (state != reported) {
      SetServing(state == ReplicatedStore::State::kServing);
      if (state == ReplicatedStore::State::kServing) {
        Log(LogLevel::kInfo, "cluster_caught_up",
            {{"node", replicated_->node_id()}});
      } else if (state == ReplicatedStore::State::kDiverged) {
        Log(LogLevel::kError, "cluster_diverged",
            {{"node", replicated_->node_id()},
             {"error", replicated_->ServingStatus().message()}});
      }
      reported = state;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

void Server::SetServing(bool serving) {
  for (const char* service : {"", kServiceName, kInferenceServiceName}) {
    health_.SetServing(service, serving);
  }
  serving_.store(serving);
}

int Server::metrics_port() const {
  return metrics_http_ != nullptr ? metrics_http_->port() : 0;
}

std::string Server::RenderMetrics() {
  ScrapeState state;
  state.models = store_->ListModels();
  state.update_queue_depth = service_.UpdateQueueDepth();
  state.model_queue_depth = service_.QueuedByModel();
  state.resident_memory_bytes = ResidentMemoryBytes();
  state.memory_budget_bytes = store_->options().max_memory_bytes;
  state.memory_used_bytes = store_->MemoryUsed();
  state.now = absl::Now();
  return metrics_.Render(state);
}

Server::~Server() {
  Shutdown();
  // Start() may have failed before Shutdown() could run: the node's threads
  // end here, before the service they report to.
  if (replicated_ != nullptr) replicated_->Stop();
}

absl::Status Server::ReloadAuthTokens() {
  if (access_ == nullptr) {
    return absl::FailedPreconditionError(
        "auth_tokens: the server runs without access control");
  }
  return access_->Reload();
}

std::shared_ptr<grpc::Channel> Server::InProcessChannel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options_.max_message_bytes);
  args.SetMaxSendMessageSize(options_.max_message_bytes);
  return grpc_server_->InProcessChannel(args);
}

void Server::Shutdown() {
  if (grpc_server_ == nullptr) return;  // Start() failed
  absl::call_once(shutdown_once_, [this] {
    // Calls are refused before health says NOT_SERVING, so that a client
    // that saw NOT_SERVING never has a call accepted.
    const absl::Time drain_start = absl::Now();
    service_.BeginShutdown();
    shutting_down_.store(true);
    if (cluster_health_.joinable()) cluster_health_.join();
    SetServing(false);
    health_.EndWatches();
    Log(LogLevel::kInfo, "not_serving",
        {{"drain_seconds", options_.shutdown_grace}});
    // New calls get UNAVAILABLE while the accepted updates finish; only then
    // does gRPC stop taking calls (and cancel those left at the limit).
    const absl::Time limit = drain_start + options_.shutdown_grace;
    service_.WaitForUpdates(limit);
    if (replicated_ != nullptr) {
      // A node's changes are answered once it applies them, by its own
      // threads: they get until the limit, then UNAVAILABLE, so that every
      // call ends before gRPC's Shutdown() waits for them.
      replicated_->WaitIdle(limit);
      replicated_->Stop();
    }
    grpc_server_->Shutdown(absl::ToChronoTime(limit));
    const absl::Duration drained = absl::Now() - drain_start;
    // At the limit, gRPC cancelled the calls still open.
    Log(drained >= options_.shutdown_grace ? LogLevel::kWarn : LogLevel::kInfo,
        "calls_drained",
        {{"seconds", drained},
         {"cancelled_at_limit", drained >= options_.shutdown_grace}});
    // Only now: until every call has ended, a call may still queue an update
    // (and gRPC's Shutdown() waits for the workers to answer the queued
    // ones). By now the queue is empty, so this just joins the workers.
    // gRPC's Shutdown() does not wait for the ends of async calls: they may
    // still be on the queues, and a call cancelled at the limit may still
    // wait for an update worker to answer it.
    for (const std::unique_ptr<rpc::CallPoller>& poller : pollers_) {
      poller->WaitForCalls();
    }
    service_.DrainUpdates();
    for (const std::unique_ptr<rpc::CallPoller>& poller : pollers_) {
      poller->ShutdownAndJoin();
    }
    if (metrics_http_ != nullptr) metrics_http_->Stop();
    if (dashboard_ != nullptr) dashboard_->Stop();
    const absl::Time close_start = absl::Now();
    close_status_ = store_->Close();
    if (close_status_.ok()) {
      Log(LogLevel::kInfo, "store_closed",
          {{"seconds", absl::Now() - close_start}});
    } else {
      Log(LogLevel::kError, "store_close_failed",
          {{"error", close_status_.message()}});
    }
  });
}

void Server::Wait() {
  if (grpc_server_ != nullptr) grpc_server_->Wait();
}

}  // namespace lepton::server
