// lepton_server: parses flags, starts the Server, and shuts it down
// gracefully on SIGINT or SIGTERM (exit status 0).
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
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "on SIGINT/SIGTERM, how long calls in flight may take to finish "
          "before they are cancelled");

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
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  lepton::server::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.service.max_batch = absl::GetFlag(FLAGS_max_batch);
  options.service.update_threads = absl::GetFlag(FLAGS_update_threads);
  options.service.update_nice = absl::GetFlag(FLAGS_update_nice);
  options.store.retained_versions = absl::GetFlag(FLAGS_retained_versions);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);

  absl::StatusOr<std::unique_ptr<lepton::server::Server>> server =
      lepton::server::Server::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "lepton_server: %s\n",
                 std::string(server.status().message()).c_str());
    return 1;
  }
  std::fprintf(stderr, "lepton_server: serving on port %d (listen %s)\n",
               (*server)->port(), options.listen.c_str());

  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::fprintf(stderr, "lepton_server: %s, shutting down\n",
               signal == SIGINT ? "SIGINT" : "SIGTERM");
  (*server)->Shutdown();
  std::fprintf(stderr, "lepton_server: stopped\n");
  return 0;
}
