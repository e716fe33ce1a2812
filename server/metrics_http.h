// MetricsHttpServer: serves GET /metrics (Prometheus text format 0.0.4)
// over HTTP with civetweb, Debian's embeddable HTTP server, rather than a
// hand-written one: it parses HTTP, queues connections and times out slow
// clients for us.
//
//   absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http =
//       MetricsHttpServer::Start("0.0.0.0:9090", [&] { return Render(); });
//   (*http)->port();  // the bound port (useful with port 0)
//
// /metrics is served (GET or HEAD; other methods 405); every other path goes
// to the optional `app` handler (the dashboard, dashboard.h), or is 404
// without one: no files, no directory listing. Each scrape calls `render` on
// one of civetweb's kThreads worker threads. A connection holds a worker from
// the moment it is accepted to its response, and is closed after that (no
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
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct mg_context;
struct mg_connection;

namespace lepton::server {

// A request for `app`, reduced to what it needs.
struct HttpRequest {
  std::string method;         // "GET", "HEAD", ...
  std::string path;           // URL-decoded, without the query
  std::string authorization;  // the Authorization header; empty if none
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Extra headers (name, value), e.g. WWW-Authenticate.
  std::vector<std::pair<std::string, std::string>> headers;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class MetricsHttpServer {
 public:
  static constexpr int kThreads = 16;
  static constexpr absl::Duration kRequestTimeout = absl::Seconds(2);

  // Listens on `listen`: "ip:port", "[ipv6]:port" or "port" (every
  // interface); port 0 picks a free one. UNAVAILABLE (naming
  // metrics_listen) if it cannot.
  // `app` (optional) answers every path but /metrics, on the same worker
  // threads and with the same thread-safety contract as `render`.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen, std::function<std::string()> render,
      HttpHandler app = nullptr);
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }
  // Stops serving; waits for scrapes in progress. Idempotent.
  void Stop();

 private:
  MetricsHttpServer(std::string listen, std::function<std::string()> render,
                    HttpHandler app)
      : listen_(std::move(listen)),
        render_(std::move(render)),
        app_(std::move(app)) {}
  static int HandleMetrics(mg_connection* conn, void* self);
  static int HandleApp(mg_connection* conn, void* self);
  // Opens and closes one connection to the listening port.
  void Poke() const;

  const std::string listen_;
  const std::function<std::string()> render_;
  const HttpHandler app_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_METRICS_HTTP_H_
