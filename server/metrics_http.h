// MetricsHttpServer: serves GET /metrics (Prometheus text format 0.0.4)
// over HTTP with civetweb, Debian's embeddable HTTP server, rather than a
// hand-written one: it parses HTTP, queues connections and times out slow
// clients for us.
//
//   absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http =
//       MetricsHttpServer::Start("0.0.0.0:9090", [&] { return Render(); });
//   (*http)->port();  // the bound port (useful with port 0)
//
// Only /metrics is served (GET or HEAD; other methods 405, other paths 404):
// no files, no directory listing. Each scrape calls `render` on one of
// civetweb's kThreads worker threads. A connection holds a worker from the
// moment it is accepted to its response, and is closed after that (no
// keep-alive); one that sends no complete request within kRequestTimeout is
// dropped. So a scrape is answered at once while fewer than kThreads other
// connections are open; beyond that it waits in civetweb's queue until a
// worker is free (at most about kRequestTimeout behind idle connections).
//
// Ownership and thread safety: the object owns the civetweb context; the
// destructor (or Stop()) stops it and waits for scrapes in progress, so
// whatever `render` uses must outlive that. `render` may be called
// concurrently with anything else, and with itself (two scrapers).
#ifndef LEPTON_SERVER_METRICS_HTTP_H_
#define LEPTON_SERVER_METRICS_HTTP_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct mg_context;
struct mg_connection;

namespace lepton::server {

class MetricsHttpServer {
 public:
  static constexpr int kThreads = 16;
  static constexpr absl::Duration kRequestTimeout = absl::Seconds(2);

  // Listens on `listen`: "ip:port", "[ipv6]:port" or "port" (every
  // interface); port 0 picks a free one. UNAVAILABLE (naming
  // metrics_listen) if it cannot.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen, std::function<std::string()> render);
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }
  // Stops serving; waits for scrapes in progress. Idempotent.
  void Stop();

 private:
  MetricsHttpServer(std::string listen, std::function<std::string()> render)
      : listen_(std::move(listen)), render_(std::move(render)) {}
  static int HandleMetrics(mg_connection* conn, void* self);
  // Opens and closes one connection to the listening port.
  void Poke() const;

  const std::string listen_;
  const std::function<std::string()> render_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_METRICS_HTTP_H_
