#include "server/metrics_http.h"

#include <civetweb.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"

namespace lepton::server {
namespace {

void InitCivetwebOnce() {
  static std::once_flag once;
  // Plain HTTP only: no TLS library to load.
  std::call_once(once, [] { mg_init_library(MG_FEATURES_DEFAULT); });
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, std::function<std::string()> render,
    HttpHandler app) {
  InitCivetwebOnce();
  std::unique_ptr<MetricsHttpServer> server(
      new MetricsHttpServer(listen, std::move(render), std::move(app)));
  // No document_root: civetweb serves no files. Each open connection holds
  // a worker thread, so idle ones must neither outnumber the threads nor
  // last: many threads, a short timeout, and no keep-alive (a scraper's
  // connection would otherwise hold a thread between scrapes).
  const std::string threads = absl::StrCat(kThreads);
  const std::string timeout_ms =
      absl::StrCat(absl::ToInt64Milliseconds(kRequestTimeout));
  const char* options[] = {"listening_ports",
                           listen.c_str(),
                           "num_threads",
                           threads.c_str(),
                           "request_timeout_ms",
                           timeout_ms.c_str(),
                           "enable_keep_alive",
                           "no",
                           nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  // civetweb's own messages (a failed bind) go to the error buffer below
  // rather than to stderr.
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  mg_init_data init;
  std::memset(&init, 0, sizeof(init));
  init.callbacks = &callbacks;
  init.user_data = server.get();
  init.configuration_options = options;
  char error_text[256] = "";
  unsigned error_code = 0;
  mg_error_data error;
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);
  server->ctx_ = mg_start2(&init, &error);
  if (server->ctx_ == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "metrics_listen: cannot serve metrics on \"", listen, "\": ",
        error_text[0] != '\0' ? error_text : "civetweb failed to start"));
  }
  // civetweb tries the handlers in the order they were set: /metrics first,
  // then the app for every other path.
  mg_set_request_handler(server->ctx_, "/metrics$", &HandleMetrics,
                         server.get());
  if (server->app_ != nullptr) {
    mg_set_request_handler(server->ctx_, "/", &HandleApp, server.get());
  }
  mg_server_port ports[4];
  std::memset(ports, 0, sizeof(ports));
  const int n = mg_get_server_ports(server->ctx_, 4, ports);
  if (n < 1 || ports[0].port <= 0) {
    return absl::UnavailableError(absl::StrCat(
        "metrics_listen: cannot tell the port bound for \"", listen, "\""));
  }
  server->port_ = ports[0].port;
  return server;
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

void MetricsHttpServer::Stop() {
  if (ctx_ == nullptr) return;
  // civetweb's listener thread notices the stop only when its poll() returns,
  // which is every 2 s when no one connects: connect to it until it is
  // done, so that a shutdown does not wait those 2 s.
  std::atomic<bool> stopped{false};
  std::thread stopper([this, &stopped] {
    mg_stop(ctx_);
    stopped.store(true);
  });
  while (!stopped.load()) {
    Poke();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stopper.join();
  ctx_ = nullptr;
}

void MetricsHttpServer::Poke() const {
  // The bound host, or loopback for a wildcard address.
  std::string host = "127.0.0.1";
  const size_t colon = listen_.rfind(':');
  if (colon != std::string::npos && colon > 0) {
    host = listen_.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    if (host == "0.0.0.0") host = "127.0.0.1";
    if (host == "::") host = "::1";
  }
  addrinfo hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_flags = AI_NUMERICSERV;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addresses = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port_).c_str(), &hints,
                  &addresses) != 0) {
    return;
  }
  for (addrinfo* a = addresses; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    const bool connected = connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    close(fd);
    if (connected) break;
  }
  freeaddrinfo(addresses);
}

int MetricsHttpServer::HandleMetrics(mg_connection* conn, void* self) {
  const mg_request_info* request = mg_get_request_info(conn);
  const bool head = std::strcmp(request->request_method, "HEAD") == 0;
  if (!head && std::strcmp(request->request_method, "GET") != 0) {
    mg_printf(conn,
              "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"
              "Connection: close\r\nContent-Length: 0\r\n\r\n");
    return 405;
  }
  const std::string body = static_cast<MetricsHttpServer*>(self)->render_();
  const std::string header = absl::StrCat(
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
      "Cache-Control: no-store\r\n"
      "Connection: close\r\n"
      "Content-Length: ",
      body.size(), "\r\n\r\n");
  mg_write(conn, header.data(), header.size());
  if (!head) mg_write(conn, body.data(), body.size());
  return 200;
}

int MetricsHttpServer::HandleApp(mg_connection* conn, void* self) {
  const mg_request_info* request = mg_get_request_info(conn);
  HttpRequest in;
  in.method = request->request_method;
  in.path = request->local_uri != nullptr ? request->local_uri : "/";
  if (const char* auth = mg_get_header(conn, "Authorization")) {
    in.authorization = auth;
  }
  const HttpResponse out = static_cast<MetricsHttpServer*>(self)->app_(in);
  std::string header = absl::StrCat("HTTP/1.1 ", out.status, " ",
                                    mg_get_response_code_text(conn, out.status),
                                    "\r\nContent-Type: ", out.content_type,
                                    "\r\nCache-Control: no-store\r\n"
                                    "X-Content-Type-Options: nosniff\r\n");
  for (const auto& [name, value] : out.headers) {
    absl::StrAppend(&header, name, ": ", value, "\r\n");
  }
  absl::StrAppend(&header,
                  "Connection: close\r\nContent-Length: ", out.body.size(),
                  "\r\n\r\n");
  mg_write(conn, header.data(), header.size());
  if (in.method != "HEAD") mg_write(conn, out.body.data(), out.body.size());
  return out.status;
}

}  // namespace lepton::server
