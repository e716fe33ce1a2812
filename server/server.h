// Server: builds, starts and stops one Lepton gRPC server: the model store,
// the lepton.v1.ModelService, the Open Inference Protocol's
// inference.GRPCInferenceService over the same store (inference_service.h),
// gRPC's standard health service (grpc.health.v1.Health, health_service.h)
// and server reflection (reflection_service.h), all on one port, all served
// on gRPC's async API by options.serving_threads threads (rpc/call_poller.h).
//
//   absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
//   ...                        // serving; (*server)->port() is the bound port
//   (*server)->Shutdown();     // graceful: see below
//
// Start-up: with options.store.data_dir, the store recovers every model from
// its checkpoints and logs (core/store/model_store.h) before the server
// listens, so a client never sees a model before it is whole; recovery_report()
// says what was found. Health: SERVING for "", "lepton.v1.ModelService" and
// "inference.GRPCInferenceService" once Start() returns, NOT_SERVING from the
// moment Shutdown() begins; the Open Inference Protocol's ServerReady says
// the same.
//
// Cluster mode (options.cluster.address): the server is a node of a cluster
// (core/replication/replicated_store.h) over the cluster's Redis
// (server/cluster/redis_shared_log.h); Start() fails if Redis cannot be
// reached. The node rebuilds its models from its checkpoints, the cluster's
// snapshots and the log, and health is NOT_SERVING until it has caught up
// (and again if it diverges).
//
// Shutdown(): marks the server NOT_SERVING, stops accepting calls, lets the
// calls in flight finish (open StreamUpdate calls end after their current
// request), and after `shutdown_grace` (lepton_server's --drain_seconds)
// cancels whatever is left; then it joins the update workers
// (model_service.h), stops the metrics endpoint and closes the store (final
// log sync and checkpoints; close_status() says how that went). Each step is
// logged (log.h). Idempotent; the destructor calls it.
//
// Metrics (metrics.h): every call is counted and timed by an interceptor
// (metrics_interceptor.h); with `metrics_listen`, GET /metrics serves them
// with the models' gauges over HTTP (metrics_http.h) from Start() until the
// end of Shutdown().
//
// Security: options.tls makes the port speak TLS or mutual TLS (tls.h);
// options.auth_tokens_file turns on bearer tokens with roles for every
// lepton.v1.ModelService call and every inference.GRPCInferenceService call
// but ServerLive and ServerReady (access_control.h), re-read by
// ReloadAuthTokens(). Health, reflection, ServerLive and ServerReady stay
// open either way, for probes. The in-process channel bypasses TLS but not the
// tokens.
//
// Thread safety: Start() builds the object; every other method may be called
// from any thread, Shutdown() concurrently with serving.
#ifndef LEPTON_SERVER_SERVER_H_
#define LEPTON_SERVER_SERVER_H_

#include <grpcpp/channel.h>
#include <grpcpp/server.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/replication/replicated_store.h"
#include "core/replication/shared_log.h"
#include "core/store/model_store.h"
#include "server/access_control.h"
#include "server/dashboard.h"
#include "server/health_service.h"
#include "server/inference_service.h"
#include "server/metrics.h"
#include "server/metrics_http.h"
#include "server/model_service.h"
#include "server/reflection_service.h"
#include "server/rpc/call_poller.h"
#include "server/tls.h"

namespace lepton::server {

// A node of a cluster (replicated_store.h; docs/cluster.md).
struct ClusterOptions {
  // redis://HOST[:PORT]/NAME (cluster_address.h); empty: a single server.
  std::string address;
  // Redis replicas that must have an update before it is acknowledged.
  int32_t min_replicas = 0;
  // Entries of a model's stream between two digests of its weights.
  int64_t digest_every = 1000;
  // Entries of a model's stream between two snapshots in Redis.
  int64_t snapshot_every = 10000;
  // This node's name in the log (empty: a random one).
  std::string node_id;
};

struct ServerOptions {
  // host:port to listen on; port 0 picks a free one (see port()). Empty: no
  // network port at all (in-process channels only, for tests).
  std::string listen = "0.0.0.0:50051";
  // Largest request or response message, in bytes.
  int32_t max_message_bytes = 64 << 20;
  // Threads that serve the calls, each polling a completion queue of its own
  // (rpc/call_poller.h). One costs a call a single thread wake-up; more let
  // calls use more cores, at two or three more wake-ups a call
  // (docs/benchmarks.md#the-grpc-stacks-floor).
  int32_t serving_threads = 1;
  ServiceOptions service;
  StoreOptions store;
  // How long Shutdown() lets calls in flight finish (the drain).
  absl::Duration shutdown_grace = absl::Seconds(10);
  // TLS for the listening port; plaintext by default.
  TlsOptions tls;
  // The --auth_tokens file; empty: no access control.
  std::string auth_tokens_file;
  // host:port of the Prometheus endpoint (metrics_http.h); port 0 picks a
  // free one (see metrics_port()). Empty: none (lepton_server's default is
  // 0.0.0.0:9090).
  std::string metrics_listen = "";
  // HTTP/2 streams (calls) one client connection may have open at once
  // (GRPC_ARG_MAX_CONCURRENT_STREAMS); a client queues calls beyond it. 0:
  // gRPC's default (no limit).
  int32_t max_concurrent_streams = 0;
  // Memory gRPC's transport may hold for all connections (requests received
  // and not yet read, answers not yet sent): a grpc::ResourceQuota. Near it
  // gRPC shrinks the connections' flow-control windows; at it, it refuses
  // calls (RESOURCE_EXHAUSTED) and closes connections (GOAWAY). 0: no quota.
  int64_t max_transport_bytes = 0;
  // Cluster mode: the store is in memory (the cluster's log holds the
  // models); store.data_dir, if any, keeps the node's checkpoints, one per
  // model, in a directory "cluster-NAME", written every
  // store.checkpoint_every_updates entries of the model's log.
  ClusterOptions cluster;
};

class Server {
 public:
  // UNAVAILABLE if the address cannot be bound; INVALID_ARGUMENT for an
  // option out of range; a TLS or token file that cannot be read or parsed
  // is an error naming it (checked before the store is opened).
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (0 when not listening on the network).
  int port() const { return port_; }
  // The metrics endpoint's bound port (0 without metrics_listen).
  int metrics_port() const;
  // What GET /metrics answers (metrics.h), also without metrics_listen.
  std::string RenderMetrics();
  // A channel to this server that bypasses the network.
  std::shared_ptr<grpc::Channel> InProcessChannel();
  ModelStore& store() { return *store_; }
  // Null unless options.cluster.address was given.
  ReplicatedStore* cluster() { return replicated_.get(); }
  ModelService& service() { return service_; }
  const RecoveryReport& recovery_report() const { return recovery_; }

  // Re-reads the auth tokens file: OK and the new tokens serve every call
  // from now on; on error the old ones stay in force. FAILED_PRECONDITION
  // without options.auth_tokens_file.
  absl::Status ReloadAuthTokens();
  // Null without options.auth_tokens_file.
  const AccessControl* access_control() const { return access_.get(); }

  void Shutdown();
  // The outcome of closing the store, once Shutdown() returned.
  absl::Status close_status() const { return close_status_; }
  // Blocks until Shutdown() has completed.
  void Wait();

 private:
  Server(const ServerOptions& options, std::unique_ptr<ModelStore> store,
         RecoveryReport recovery, std::unique_ptr<AccessControl> access,
         std::unique_ptr<SharedLog> cluster_log,
         const ReplicationOptions& replication);
  // `options` reporting the models the node creates and deletes to
  // catalog_listener_.
  ReplicationOptions WithCatalogListener(ReplicationOptions options);
  // Cluster mode: health follows the node's state (NOT_SERVING until it has
  // caught up with the log, and once diverged), until Shutdown().
  void FollowClusterHealth();
  // Sets the health of every service, and serving_, to `serving`.
  void SetServing(bool serving);

  const ServerOptions options_;
  const std::unique_ptr<ModelStore> store_;
  // Where the node reports the models it creates and deletes: service_,
  // once it is built (null before).
  std::atomic<ModelService*> catalog_listener_{nullptr};
  // Cluster mode: the log and the node applying it to store_; before
  // service_, which borrows the node.
  const std::unique_ptr<SharedLog> cluster_log_;
  const std::unique_ptr<ReplicatedStore> replicated_;
  const RecoveryReport recovery_;
  // Before service_, which borrows it.
  const std::unique_ptr<AccessControl> access_;
  Metrics metrics_;
  ModelService service_;
  // What health says for "" (SetServing()); before inference_, which reads
  // it.
  std::atomic<bool> serving_{false};
  // After service_, whose gate and update workers it uses.
  InferenceService inference_;
  HealthService health_;
  ReflectionService reflection_;
  absl::Status close_status_;
  // The page and JSON API of the metrics port (dashboard.h); its sampler
  // reads store_. Stopped by Shutdown() before the store closes, after
  // metrics_http_, which calls it.
  std::unique_ptr<Dashboard> dashboard_;
  // Stopped by Shutdown() before the store closes; it reads service_,
  // store_ and dashboard_.
  std::unique_ptr<MetricsHttpServer> metrics_http_;
  // The threads serving the calls; their queues outlive grpc_server_.
  std::vector<std::unique_ptr<rpc::CallPoller>> pollers_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  absl::once_flag shutdown_once_;
  std::atomic<bool> shutting_down_{false};
  std::thread cluster_health_;
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_SERVER_H_
