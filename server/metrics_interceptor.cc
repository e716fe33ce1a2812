#include "server/metrics_interceptor.h"

#include <atomic>
#include <chrono>
#include <string>

#include "absl/time/time.h"
#include "server/log.h"

namespace lepton::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(Metrics* metrics, int method)
      : metrics_(metrics),
        method_(method),
        start_(std::chrono::steady_clock::now()) {}

  ~MetricsInterceptor() override {
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, ""));
  }

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS)) {
      Finish(methods->GetSendStatus());
    }
    methods->Proceed();
  }

 private:
  // Records the call once: the first status wins.
  void Finish(const grpc::Status& status) {
    if (recorded_.exchange(true)) return;
    const absl::Duration latency =
        absl::FromChrono(std::chrono::steady_clock::now() - start_);
    const int code = static_cast<int>(status.error_code());
    metrics_->Record(method_, code, latency);
    // Ours only: gRPC's health service ends a Watch cancelled at the end of
    // a drain with UNKNOWN, which is no server error.
    const bool server_error =
        method_ != Metrics::kOther && (code == grpc::StatusCode::UNKNOWN ||
                                       code == grpc::StatusCode::INTERNAL ||
                                       code == grpc::StatusCode::DATA_LOSS);
    const LogLevel level = server_error ? LogLevel::kError : LogLevel::kDebug;
    if (!LogEnabled(level)) return;
    const absl::string_view code_name =
        Metrics::CodeName(code >= 0 && code < Metrics::kCodes ? code : 2);
    if (server_error) {
      // The store's own messages (files, offsets, model names): no data.
      Log(level, "rpc_failed",
          {{"method", Metrics::MethodName(method_)},
           {"code", code_name},
           {"seconds", latency},
           {"error", status.error_message()}});
    } else {
      Log(level, "rpc",
          {{"method", Metrics::MethodName(method_)},
           {"code", code_name},
           {"seconds", latency}});
    }
  }

  Metrics* const metrics_;
  const int method_;
  const std::chrono::steady_clock::time_point start_;
  // A stream's send and receive hooks may run on different threads.
  std::atomic<bool> recorded_{false};
};

}  // namespace

grpc::experimental::Interceptor*
MetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new MetricsInterceptor(metrics_, Metrics::MethodIndex(info->method()));
}

}  // namespace lepton::server
