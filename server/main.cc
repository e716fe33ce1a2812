// lepton_server: parses flags, starts the Server, and shuts it down
// gracefully on SIGINT or SIGTERM (exit status 0). SIGHUP re-reads the
// --auth_tokens file (a bad file leaves the tokens in force as they were).
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/server.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:50051",
          "host:port to serve on; port 0 picks a free port (printed at start)");
ABSL_FLAG(int32_t, max_message_bytes, 64 << 20,
          "largest request or response message, in bytes");
ABSL_FLAG(int32_t, max_batch, 16384,
          "most instances per Predict or examples per Update request; larger "
          "batches get RESOURCE_EXHAUSTED");
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
ABSL_FLAG(std::string, fsync, "always",
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
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "on SIGINT/SIGTERM, how long calls in flight may take to finish "
          "before they are cancelled");

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
  absl::ParseCommandLine(argc, argv);
  // Debian builds Abseil with its lock-graph deadlock detector on: it showed
  // as 7 % of the server's CPU samples under a Predict load. Our lock order
  // is fixed and documented (core/model.h, server/model_service.h).
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
  options.service.update_nice = absl::GetFlag(FLAGS_update_nice);
  options.store.retained_versions = absl::GetFlag(FLAGS_retained_versions);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.auth_tokens_file = absl::GetFlag(FLAGS_auth_tokens);
  options.store.data_dir = absl::GetFlag(FLAGS_data_dir);
  const std::string fsync = absl::GetFlag(FLAGS_fsync);
  if (fsync == "always") {
    options.store.fsync = lepton::FsyncPolicy::kAlways;
  } else if (fsync == "interval") {
    options.store.fsync = lepton::FsyncPolicy::kInterval;
  } else if (fsync == "never") {
    options.store.fsync = lepton::FsyncPolicy::kNever;
  } else {
    std::fprintf(stderr,
                 "lepton_server: --fsync must be always, interval or never, "
                 "got \"%s\"\n",
                 fsync.c_str());
    return 2;
  }
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
    std::fprintf(stderr,
                 "lepton_server: --prediction_cache_entries and "
                 "--prediction_cache_bytes must be >= 0, --prediction_ttl "
                 "> 0\n");
    return 1;
  }
  if (options.store.data_dir.empty()) {
    std::fprintf(stderr,
                 "lepton_server: WARNING: --data_dir is empty: models live in "
                 "memory only and are lost when the server stops\n");
  }

  absl::StatusOr<std::unique_ptr<lepton::server::Server>> server =
      lepton::server::Server::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "lepton_server: %s\n",
                 std::string(server.status().message()).c_str());
    return 1;
  }
  const lepton::RecoveryReport& recovery = (*server)->recovery_report();
  for (const std::string& note : recovery.notes) {
    std::fprintf(stderr, "lepton_server: recovery: %s\n", note.c_str());
  }
  for (const auto& [name, status] : recovery.failed) {
    std::fprintf(stderr,
                 "lepton_server: ERROR: model \"%s\" is not served: %s\n",
                 name.c_str(), std::string(status.message()).c_str());
  }
  if (!options.store.data_dir.empty()) {
    std::fprintf(stderr,
                 "lepton_server: data in %s (--fsync=%s): %zu models "
                 "recovered, %zu not\n",
                 options.store.data_dir.c_str(), fsync.c_str(),
                 recovery.recovered.size(), recovery.failed.size());
  }
  // Never the tokens themselves: how many, and from where.
  if (const lepton::server::AccessControl* access =
          (*server)->access_control()) {
    std::fprintf(stderr, "lepton_server: auth: %zu tokens from %s\n",
                 access->size(), access->path().c_str());
  }
  if (options.tls.enabled()) {
    std::fprintf(stderr, "lepton_server: %s with certificate %s\n",
                 options.tls.client_ca_file.empty() ? "TLS" : "mutual TLS",
                 options.tls.cert_file.c_str());
  }
  std::fprintf(stderr, "lepton_server: serving on port %d (listen %s)\n",
               (*server)->port(), options.listen.c_str());

  int signal = 0;
  while (sigwait(&stop_signals, &signal) == 0 && signal == SIGHUP) {
    if ((*server)->access_control() == nullptr) {
      std::fprintf(stderr,
                   "lepton_server: SIGHUP: no --auth_tokens, nothing to "
                   "reload\n");
    } else if (absl::Status s = (*server)->ReloadAuthTokens(); !s.ok()) {
      std::fprintf(stderr,
                   "lepton_server: ERROR: SIGHUP: auth tokens not reloaded, "
                   "the previous ones stay in force: %s\n",
                   std::string(s.message()).c_str());
    } else {
      std::fprintf(stderr, "lepton_server: SIGHUP: auth: %zu tokens from %s\n",
                   (*server)->access_control()->size(),
                   (*server)->access_control()->path().c_str());
    }
  }
  std::fprintf(stderr, "lepton_server: %s, shutting down\n",
               signal == SIGINT ? "SIGINT" : "SIGTERM");
  (*server)->Shutdown();
  if (absl::Status s = (*server)->close_status(); !s.ok()) {
    std::fprintf(stderr, "lepton_server: closing the store: %s\n",
                 std::string(s.message()).c_str());
    return 1;
  }
  std::fprintf(stderr, "lepton_server: stopped\n");
  return 0;
}
