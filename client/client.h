// Client: a blocking client of one Lepton server (lepton.v1.ModelService and
// grpc.health.v1.Health), returning absl::Status / absl::StatusOr<T>.
//
//   lepton::client::Client client("localhost:50051", {});
//   absl::StatusOr<v1::ModelInfo> info = client.GetModel("ctr");
//   if (!info.ok()) ...  // NOT_FOUND, UNAVAILABLE (no server), ...
//
// Errors: a failed RPC's grpc::Status becomes an absl::Status with the same
// code and message, so the server's field paths ("examples[7].label: ...")
// reach the caller unchanged. An unreachable server is UNAVAILABLE; a call
// that outlives ClientOptions::deadline is DEADLINE_EXCEEDED. Calls fail fast:
// they do not wait for a server that is not up yet.
//
// Streaming updates: StartUpdateStream() opens one StreamUpdate call as an
// UpdateStream (update_stream.h), which keeps several requests in flight.
// Watching: WatchModel() blocks, handing each of a model's events to a
// callback until the callback or the server ends the stream; StartWatch()
// reads them on a thread of its own (model_watch.h) until Stop().
//
// Security: ClientOptions::tls makes the channel speak TLS (verifying the
// server against a CA) and optionally present a client certificate (mutual
// TLS); ClientOptions::token is sent with every call as the metadata
// "authorization: Bearer <token>", over TLS or plaintext alike.
//
// Ownership and thread safety: the Client owns its channel (or shares the one
// it was given). Every method may be called from many threads at once, as on a
// grpc::Channel. An UpdateStream or a ModelWatch must not outlive its Client.
#ifndef LEPTON_CLIENT_CLIENT_H_
#define LEPTON_CLIENT_CLIENT_H_

#include <grpcpp/channel.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/model_watch.h"
#include "client/update_stream.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "lepton/v1/lepton.grpc.pb.h"

namespace lepton::client {

// TLS of the channel; PEM contents, not file names.
struct ClientTlsOptions {
  bool enabled = false;
  // The CA(s) the server's certificate must chain to; empty: the system's
  // (gRPC's default roots).
  std::string root_certs;
  // A client certificate chain and its key, for servers that require one
  // (mutual TLS). Both or neither.
  std::string cert_chain;
  std::string private_key;
  // Checked against the server certificate's names instead of the target's
  // host (for a target given as an IP address, say). Empty: the host.
  std::string server_name;
};

struct ClientOptions {
  // Largest request or response message, in bytes (the server's default
  // --max_message_bytes; gRPC's own default would refuse responses over 4 MB).
  int32_t max_message_bytes = 64 << 20;
  // Deadline of each unary call (and of Health). InfiniteDuration(): none.
  absl::Duration deadline = absl::Seconds(30);
  // Deadline of a whole StreamUpdate call; none by default, since a stream
  // lasts as long as the data it carries.
  absl::Duration stream_deadline = absl::InfiniteDuration();
  // Plaintext unless tls.enabled.
  ClientTlsOptions tls;
  // Sent as "authorization: Bearer <token>" on every call; empty: none.
  std::string token;
};

// The same code and message; OK for OK.
absl::Status FromGrpcStatus(const grpc::Status& status);

class Client {
 public:
  // A channel to `target` ("host:port", or any gRPC target URI), with TLS
  // as options.tls says. A target listing several addresses
  // ("ipv4:10.0.0.1:50051,10.0.0.2:50051": the nodes of a cluster) spreads
  // the calls over them with gRPC's round_robin policy. Does not connect
  // yet: an unreachable server shows up as UNAVAILABLE on the first call.
  Client(const std::string& target, const ClientOptions& options);
  // Over an existing channel (for example a server's in-process channel).
  Client(std::shared_ptr<grpc::ChannelInterface> channel,
         const ClientOptions& options);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  absl::StatusOr<v1::ModelInfo> CreateModel(const std::string& name,
                                            const v1::ModelSpec& spec);
  absl::StatusOr<v1::ModelInfo> GetModel(const std::string& name);
  // Every model, ordered by name.
  absl::StatusOr<std::vector<v1::ModelInfo>> ListModels();
  absl::Status DeleteModel(const std::string& name);
  absl::StatusOr<v1::PredictResponse> Predict(
      const v1::PredictRequest& request);
  // A non-empty request.update_id() makes a retry safe: if the model still
  // remembers that id (its newest --remembered_update_ids), the server
  // returns the original response and applies nothing.
  absl::StatusOr<v1::UpdateResponse> Update(const v1::UpdateRequest& request);

  // Publishes the state of the earlier `version` (retained or checkpointed)
  // as the model's next version; returns the model's description.
  // NOT_FOUND for no such model or a version no longer kept.
  absl::StatusOr<v1::ModelInfo> Rollback(const std::string& name,
                                         uint64_t version);
  // Grows softmax model `name` to `num_classes` classes (the new total;
  // equal to the model's: nothing changes); returns the model's description.
  // FAILED_PRECONDITION for a model that is not softmax, INVALID_ARGUMENT for
  // fewer classes.
  absl::StatusOr<v1::ModelInfo> AddClasses(const std::string& name,
                                           int32_t num_classes);
  // The model at `version` (0: the newest; otherwise a retained or
  // checkpointed one) as a portable, checksummed blob for ImportModel, and
  // the version it holds. A blob is bounded by ClientOptions::max_message_bytes
  // (and the server's own limit): RESOURCE_EXHAUSTED beyond it.
  absl::StatusOr<v1::ExportModelResponse> ExportModel(const std::string& name,
                                                      uint64_t version);
  // Creates the model `name` (empty: the name stored in the blob) from an
  // ExportModel blob, at the blob's version. INVALID_ARGUMENT for a corrupt
  // or incompatible blob, ALREADY_EXISTS for a name that is taken.
  absl::StatusOr<v1::ModelInfo> ImportModel(const std::string& name,
                                            std::string blob);

  // grpc.health.v1.Health/Check for `service` ("" = the whole server).
  // Returns the serving status the server reported (SERVING, NOT_SERVING);
  // an error only when the check itself failed (UNAVAILABLE if no server
  // answers, NOT_FOUND for a service the server does not know).
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> Health(
      const std::string& service = "");

  // Streams the events of the model request.name() (WatchModel), from now
  // on, to `on_event`, on the calling thread, until `on_event` returns false
  // (the call is then cancelled; OK), the model is deleted (OK, after its
  // MODEL_DELETED event) or the call fails: NOT_FOUND for no such model,
  // UNAVAILABLE when the server shuts down or cannot be reached. Bounded by
  // ClientOptions::stream_deadline.
  absl::Status WatchModel(
      const v1::WatchModelRequest& request,
      const std::function<bool(const v1::ModelEvent&)>& on_event);

  // Starts the WatchModel call of request.name() on a thread of its own,
  // handing each event to `on_event` there (see model_watch.h). Never fails
  // here: an error surfaces from WaitSubscribed() or Stop(). Bounded by
  // ClientOptions::stream_deadline.
  std::unique_ptr<ModelWatch> StartWatch(const v1::WatchModelRequest& request,
                                         ModelWatch::OnEvent on_event);

  // Opens a StreamUpdate call (see update_stream.h). Never fails here: a
  // connection error surfaces from the stream's first Send() or Finish().
  std::unique_ptr<UpdateStream> StartUpdateStream(
      const UpdateStreamOptions& options);

  const ClientOptions& options() const { return options_; }

 private:
  // A context carrying options_.deadline (and the token).
  std::unique_ptr<grpc::ClientContext> UnaryContext() const;
  // Adds options_.token, if any, to `context`.
  void Authenticate(grpc::ClientContext* context) const;

  const ClientOptions options_;
  std::shared_ptr<grpc::ChannelInterface> channel_;
  std::unique_ptr<v1::ModelService::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_stub_;
};

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_CLIENT_H_
