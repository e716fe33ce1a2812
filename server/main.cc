// lepton_server: parses flags, starts the Server, and shuts it down
// gracefully on SIGINT or SIGTERM (exit status 0). SIGHUP re-reads the
// --auth_tokens file (a bad file leaves the tokens in force as they were).
// Everything it reports goes to stderr as structured log lines
// (server/log.h).
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/log.h"
#include "server/memory_limit.h"
#include "server/server.h"

namespace lepton {

// --fsync as a typed flag: a bad value stops the server at start.
bool AbslParseFlag(absl::string_view text, FsyncPolicy* policy,
                   std::string* error) {
  if (text == "always") {
    *policy = FsyncPolicy::kAlways;
  } else if (text == "interval") {
    *policy = FsyncPolicy::kInterval;
  } else if (text == "never") {
    *policy = FsyncPolicy::kNever;
  } else {
    *error = "must be always, interval or never";
    return false;
  }
  return true;
}

std::string AbslUnparseFlag(FsyncPolicy policy) {
  switch (policy) {
    case FsyncPolicy::kAlways:
      return "always";
    case FsyncPolicy::kInterval:
      return "interval";
    case FsyncPolicy::kNever:
      return "never";
  }
  return "always";
}

}  // namespace lepton

ABSL_FLAG(std::string, listen, "0.0.0.0:50051",
          "host:port to serve on; port 0 picks a free port (printed at start)");
ABSL_FLAG(int32_t, max_message_bytes, 64 << 20,
          "largest request or response message, in bytes");
ABSL_FLAG(int32_t, max_batch, 16384,
          "most instances per Predict or examples per Update request; larger "
          "batches get RESOURCE_EXHAUSTED");
ABSL_FLAG(int32_t, serving_threads, 1,
          "threads that serve the calls, each polling its own completion "
          "queue: 1 answers a call with one thread wake-up; more use more "
          "cores at a few more wake-ups a call");
ABSL_FLAG(int32_t, predict_threads, 2,
          "worker threads that compute the Predict calls of more than 16 "
          "instances, off the serving thread");
ABSL_FLAG(int32_t, update_threads, 2,
          "worker threads that apply Update and StreamUpdate requests, off "
          "the threads that serve predictions");
ABSL_FLAG(int32_t, update_nice, 0,
          "how much nicer (0 to 19) the update workers run than the server; "
          "higher values favour predictions over learning on a busy CPU");
ABSL_FLAG(int32_t, retained_versions, 8,
          "versions of each model kept available for pinned predictions");
ABSL_FLAG(std::string, data_dir, "./lepton-data",
          "where models, their checkpoints and update logs live; empty: "
          "memory only (everything is lost when the server stops)");
ABSL_FLAG(lepton::FsyncPolicy, fsync, lepton::FsyncPolicy::kAlways,
          "when an update is answered: 'always' (after its log record is "
          "fsynced; concurrent updates share one fsync), 'interval' (at once; "
          "fsync at most every --fsync_interval, so a machine crash can lose "
          "that window), 'never' (at once; the OS writes back when it likes)");
ABSL_FLAG(absl::Duration, fsync_interval, absl::Milliseconds(10),
          "with --fsync=interval, the longest time between log fsyncs");
ABSL_FLAG(int64_t, checkpoint_every_updates, 10000,
          "write a model's checkpoint after this many updates");
ABSL_FLAG(absl::Duration, checkpoint_interval, absl::Seconds(60),
          "write a changed model's checkpoint at least this often");
ABSL_FLAG(int64_t, checkpoint_log_bytes, int64_t{256} << 20,
          "write a model's checkpoint once this many bytes were logged since "
          "the last one (bounds what a restart replays)");
ABSL_FLAG(int32_t, keep_checkpoints, 5,
          "checkpoints kept per model (Rollback and ExportModel targets)");
ABSL_FLAG(int32_t, remembered_update_ids, 10000,
          "update ids each model remembers for idempotent retries");
ABSL_FLAG(int64_t, prediction_cache_entries, 100000,
          "predictions asked with return_prediction_ids that each model keeps "
          "(features and served outputs) for labels sent later by id; the "
          "oldest go first when full; 0 disables prediction ids");
ABSL_FLAG(int64_t, prediction_cache_bytes, int64_t{256} << 20,
          "about how many bytes each model's kept predictions may take; the "
          "oldest go first beyond it");
ABSL_FLAG(absl::Duration, prediction_ttl, absl::Hours(1),
          "how long a prediction id stays usable; a label sent later is "
          "NOT_FOUND");
ABSL_FLAG(int32_t, drain_seconds, 10,
          "on SIGINT/SIGTERM: new calls get UNAVAILABLE and health turns "
          "NOT_SERVING, then calls in flight get this many seconds to finish "
          "before they are cancelled; then final checkpoints are written and "
          "the server exits 0");
ABSL_FLAG(std::string, metrics_listen, "0.0.0.0:9090",
          "ip:port of the Prometheus endpoint (GET /metrics over HTTP); port "
          "0 picks a free port (printed at start); empty: no endpoint");
ABSL_FLAG(lepton::server::LogLevel, log_level, lepton::server::LogLevel::kInfo,
          "least severe log events written to stderr: debug (adds one line "
          "per call), info, warn or error");
ABSL_FLAG(int32_t, max_concurrent_streams, 0,
          "calls one client connection may have open at once (HTTP/2 "
          "streams); a client queues calls beyond it. 0: gRPC's default, no "
          "limit");
ABSL_FLAG(int64_t, max_memory_bytes, -1,
          "memory budget of the models, in bytes (parameters of the retained "
          "versions, optimizer state, holdout sets, held updates, remembered "
          "predictions): CreateModel, ImportModel, AddClasses and updates "
          "that could cross it get RESOURCE_EXHAUSTED. -1: 80% of the memory "
          "limit (the container's cgroup limit, else the machine's memory); "
          "0: no budget");
ABSL_FLAG(int64_t, max_transport_bytes, -1,
          "memory gRPC may hold for all connections (requests received and "
          "not yet read, answers not yet sent); near it gRPC slows senders, "
          "at it it refuses calls (RESOURCE_EXHAUSTED) and closes connections "
          "(UNAVAILABLE). -1: 10% of the memory limit, at least twice "
          "--max_message_bytes; 0: no quota");
ABSL_FLAG(int32_t, max_models, 0,
          "most models the server holds; CreateModel and ImportModel beyond "
          "it get RESOURCE_EXHAUSTED (models recovered at start all count, "
          "and are all served). 0: no limit");

ABSL_FLAG(std::string, cluster, "",
          "redis://HOST[:PORT]/NAME: run as a node of cluster NAME, whose "
          "update log is kept in that Redis (docs/cluster.md); --data_dir "
          "then keeps only this node's checkpoints (every "
          "--checkpoint_every_updates entries of a model). Empty: a single "
          "server");
ABSL_FLAG(int32_t, cluster_min_replicas, 0,
          "with --cluster: Redis replicas that must have a change before it "
          "is acknowledged (Redis WAIT); 0: the Redis primary alone");
ABSL_FLAG(int64_t, cluster_digest_every, 1000,
          "with --cluster: entries of a model's log between two checks that "
          "this node's weights equal the cluster's; 0: never");
ABSL_FLAG(int64_t, cluster_snapshot_every_updates, 10000,
          "with --cluster: entries of a model's log between two snapshots of "
          "it in Redis (written by one node at a time); the log is trimmed "
          "below the previous snapshot. 0: no snapshots, no trimming");
ABSL_FLAG(std::string, cluster_node_id, "",
          "with --cluster: this node's name in the log and the logs (unique "
          "among live nodes); empty: a random one");

ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of the server; with --tls_key the port "
          "speaks TLS only (empty: plaintext)");
ABSL_FLAG(std::string, tls_key, "",
          "PEM private key (unencrypted) of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificate(s): mutual TLS, every client must present a "
          "certificate signed by one of them");
ABSL_FLAG(std::string, auth_tokens, "",
          "file of '<token> <role>' lines (role reader, writer or admin); "
          "every ModelService call then needs 'authorization: Bearer "
          "<token>'; re-read on SIGHUP. Empty: no access control");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Lepton: a gRPC server of models that learn while they serve.\n"
      "Usage: lepton_server [--listen=0.0.0.0:50051] [flags]");
  // --help lists this file's flags (the server's), named by their path in
  // the source tree rather than in the build machine's.
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "server/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  usage.normalize_filename = [](absl::string_view file) {
    const size_t server = file.rfind("server/");
    return std::string(server == absl::string_view::npos ? file
                                                         : file.substr(server));
  };
  absl::SetFlagsUsageConfig(usage);
  absl::ParseCommandLine(argc, argv);
  using lepton::server::Log;
  using lepton::server::LogLevel;
  lepton::server::SetLogLevel(absl::GetFlag(FLAGS_log_level));
  // Debian builds Abseil with its lock-graph deadlock detector on, which
  // costs every lock on the Predict path. Our lock order is fixed,
  // documented (core/store/model.h) and checked by clang's thread-safety
  // analysis.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Block the stop signals in every thread (gRPC's threads inherit this
  // mask) so that only the sigwait() below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);  // reload, not stop: see the loop below
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  lepton::server::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.service.max_batch = absl::GetFlag(FLAGS_max_batch);
  options.service.update_threads = absl::GetFlag(FLAGS_update_threads);
  options.serving_threads = absl::GetFlag(FLAGS_serving_threads);
  options.service.predict_threads = absl::GetFlag(FLAGS_predict_threads);
  options.service.update_nice = absl::GetFlag(FLAGS_update_nice);
  options.store.retained_versions = absl::GetFlag(FLAGS_retained_versions);
  if (absl::GetFlag(FLAGS_drain_seconds) < 0) {
    Log(LogLevel::kError, "invalid_flag",
        {{"flag", "drain_seconds"}, {"error", "must be >= 0"}});
    return 2;
  }
  options.shutdown_grace = absl::Seconds(absl::GetFlag(FLAGS_drain_seconds));
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  options.store.max_models = absl::GetFlag(FLAGS_max_models);
  options.store.max_memory_bytes = absl::GetFlag(FLAGS_max_memory_bytes);
  if (options.store.max_memory_bytes < -1) {
    Log(LogLevel::kError, "invalid_flag",
        {{"flag", "max_memory_bytes"}, {"error", "must be >= -1"}});
    return 2;
  }
  options.max_transport_bytes = absl::GetFlag(FLAGS_max_transport_bytes);
  if (options.max_transport_bytes < -1) {
    Log(LogLevel::kError, "invalid_flag",
        {{"flag", "max_transport_bytes"}, {"error", "must be >= -1"}});
    return 2;
  }
  lepton::server::MemoryLimit memory_limit;
  if (options.store.max_memory_bytes == -1 ||
      options.max_transport_bytes == -1) {
    memory_limit = lepton::server::ProcessMemoryLimit();
  }
  if (options.store.max_memory_bytes == -1) {
    options.store.max_memory_bytes = memory_limit.bytes / 5 * 4;
  }
  if (options.max_transport_bytes == -1) {
    options.max_transport_bytes =
        memory_limit.bytes == 0
            ? 0
            : std::max(memory_limit.bytes / 10,
                       int64_t{2} * options.max_message_bytes);
  }
  options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.auth_tokens_file = absl::GetFlag(FLAGS_auth_tokens);
  options.store.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.cluster.address = absl::GetFlag(FLAGS_cluster);
  options.cluster.min_replicas = absl::GetFlag(FLAGS_cluster_min_replicas);
  options.cluster.digest_every = absl::GetFlag(FLAGS_cluster_digest_every);
  options.cluster.node_id = absl::GetFlag(FLAGS_cluster_node_id);
  options.cluster.snapshot_every =
      absl::GetFlag(FLAGS_cluster_snapshot_every_updates);
  options.store.fsync = absl::GetFlag(FLAGS_fsync);
  options.store.fsync_interval = absl::GetFlag(FLAGS_fsync_interval);
  options.store.checkpoint_every_updates =
      absl::GetFlag(FLAGS_checkpoint_every_updates);
  options.store.checkpoint_interval = absl::GetFlag(FLAGS_checkpoint_interval);
  options.store.checkpoint_log_bytes =
      absl::GetFlag(FLAGS_checkpoint_log_bytes);
  options.store.keep_checkpoints = absl::GetFlag(FLAGS_keep_checkpoints);
  options.store.remembered_update_ids =
      absl::GetFlag(FLAGS_remembered_update_ids);
  options.store.prediction_cache_entries =
      absl::GetFlag(FLAGS_prediction_cache_entries);
  options.store.prediction_cache_bytes =
      absl::GetFlag(FLAGS_prediction_cache_bytes);
  options.store.prediction_ttl = absl::GetFlag(FLAGS_prediction_ttl);
  if (options.store.prediction_cache_entries < 0 ||
      options.store.prediction_cache_bytes < 0 ||
      options.store.prediction_ttl <= absl::ZeroDuration()) {
    Log(LogLevel::kError, "invalid_flag",
        {{"flag", "prediction_cache_entries"},
         {"error",
          "--prediction_cache_entries and --prediction_cache_bytes must be "
          ">= 0, --prediction_ttl > 0"}});
    return 1;
  }
  Log(LogLevel::kInfo, "start",
      {{"listen", options.listen},
       {"metrics_listen", options.metrics_listen},
       {"data_dir", options.store.data_dir},
       {"fsync", AbslUnparseFlag(options.store.fsync)},
       {"serving_threads", options.serving_threads},
       {"predict_threads", options.service.predict_threads},
       {"update_threads", options.service.update_threads},
       {"max_models", options.store.max_models},
       {"max_memory_bytes", options.store.max_memory_bytes},
       {"max_transport_bytes", options.max_transport_bytes},
       {"max_concurrent_streams", options.max_concurrent_streams},
       {"max_batch", options.service.max_batch},
       {"drain_seconds", options.shutdown_grace},
       {"log_level",
        lepton::server::LogLevelName(lepton::server::GetLogLevel())}});
  if (!memory_limit.source.empty()) {
    Log(LogLevel::kInfo, "memory_budget",
        {{"max_memory_bytes", options.store.max_memory_bytes},
         {"max_transport_bytes", options.max_transport_bytes},
         {"memory_limit_bytes", memory_limit.bytes},
         {"from", memory_limit.source}});
  }
  if (!options.cluster.address.empty()) {
    Log(LogLevel::kInfo, "cluster",
        {{"address", options.cluster.address},
         {"min_replicas", options.cluster.min_replicas},
         {"digest_every", options.cluster.digest_every},
         {"snapshot_every", options.cluster.snapshot_every},
         {"data_dir", options.store.data_dir}});
  } else if (options.store.data_dir.empty()) {
    Log(LogLevel::kWarn, "memory_only",
        {{"msg",
          "--data_dir is empty: models live in memory only and are lost "
          "when the server stops"}});
  }

  absl::StatusOr<std::unique_ptr<lepton::server::Server>> server =
      lepton::server::Server::Start(options);
  if (!server.ok()) {
    Log(LogLevel::kError, "start_failed",
        {{"code", absl::StatusCodeToString(server.status().code())},
         {"error", server.status().message()}});
    return 1;
  }
  const lepton::RecoveryReport& recovery = (*server)->recovery_report();
  for (const std::string& note : recovery.notes) {
    Log(LogLevel::kWarn, "recovery_note", {{"note", note}});
  }
  for (const std::string& name : recovery.recovered) {
    absl::StatusOr<lepton::ModelInfo> info = (*server)->store().GetModel(name);
    if (!info.ok()) continue;  // deleted since: nothing to report
    Log(LogLevel::kInfo, "model_recovered",
        {{"model", name},
         {"version", info->version},
         {"examples_seen", info->counters.examples_seen}});
  }
  for (const auto& [name, status] : recovery.failed) {
    Log(LogLevel::kError, "model_not_recovered",
        {{"model", name}, {"error", status.message()}});
  }
  if (const lepton::ReplicatedStore* node = (*server)->cluster()) {
    Log(LogLevel::kInfo, "cluster_node",
        {{"node", node->node_id()},
         {"msg",
          "applying the cluster log; health turns SERVING once "
          "caught up"}});
  } else if (!options.store.data_dir.empty()) {
    Log(LogLevel::kInfo, "recovery_done",
        {{"data_dir", options.store.data_dir},
         {"fsync", AbslUnparseFlag(options.store.fsync)},
         {"recovered", recovery.recovered.size()},
         {"failed", recovery.failed.size()}});
  }
  // Never the tokens themselves: how many, and from where.
  if (const lepton::server::AccessControl* access =
          (*server)->access_control()) {
    Log(LogLevel::kInfo, "auth_tokens",
        {{"tokens", static_cast<int64_t>(access->size())},
         {"file", access->path()}});
  }
  if (options.tls.enabled()) {
    Log(LogLevel::kInfo, "tls",
        {{"mode", options.tls.client_ca_file.empty() ? "tls" : "mutual_tls"},
         {"cert", options.tls.cert_file}});
  }
  // `msg` keeps the words scripts and tests wait for ("serving on port N ").
  Log(LogLevel::kInfo, "serving",
      {{"msg", absl::StrCat("serving on port ", (*server)->port(), " (listen ",
                            options.listen, ")")},
       {"port", (*server)->port()},
       {"metrics_port", (*server)->metrics_port()}});

  int signal = 0;
  while (sigwait(&stop_signals, &signal) == 0 && signal == SIGHUP) {
    if ((*server)->access_control() == nullptr) {
      Log(LogLevel::kWarn, "sighup",
          {{"msg", "no --auth_tokens, nothing to reload"}});
    } else if (absl::Status s = (*server)->ReloadAuthTokens(); !s.ok()) {
      Log(LogLevel::kError, "auth_tokens_reload_failed",
          {{"msg",
            "SIGHUP: auth tokens not reloaded, the previous ones stay "
            "in force"},
           {"error", std::string(s.message())}});
    } else {
      Log(LogLevel::kInfo, "auth_tokens_reloaded",
          {{"tokens",
            static_cast<int64_t>((*server)->access_control()->size())},
           {"file", (*server)->access_control()->path()}});
    }
  }
  Log(LogLevel::kInfo, "shutdown",
      {{"signal", signal == SIGINT ? "SIGINT" : "SIGTERM"}});
  (*server)->Shutdown();
  if (absl::Status s = (*server)->close_status(); !s.ok()) {
    Log(LogLevel::kError, "stopped", {{"exit_status", 1}});
    return 1;
  }
  Log(LogLevel::kInfo, "stopped", {{"exit_status", 0}});
  return 0;
}
