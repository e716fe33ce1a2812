// MetricsInterceptorFactory: a gRPC server interceptor that counts every
// call by method and status code and times it (metrics.h), so that no
// handler has to. It also logs each call at debug level (method, code,
// seconds: never the request) and, at error level, the ModelService calls
// that failed on the server's side (UNKNOWN, INTERNAL, DATA_LOSS) with
// their message.
//
// A call is timed from the interceptor's creation (gRPC creates it as the
// call starts) to the moment its status is about to be sent
// (PRE_SEND_STATUS). A call that ends without a status (the server cancels
// it at the end of a shutdown's grace) counts as CANCELLED when gRPC
// destroys it.
//
// Works with the callback API (gRPC 1.51): register it with
// ServerBuilder::experimental().SetInterceptorCreators().
//
// Ownership and thread safety: the factory borrows `metrics`, which must
// outlive the grpc::Server. gRPC calls the factory from its threads
// concurrently; each interceptor serves one call.
#ifndef LEPTON_SERVER_METRICS_INTERCEPTOR_H_
#define LEPTON_SERVER_METRICS_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include "server/metrics.h"

namespace lepton::server {

class MetricsInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  Metrics* const metrics_;
};

}  // namespace lepton::server

#endif  // LEPTON_SERVER_METRICS_INTERCEPTOR_H_
