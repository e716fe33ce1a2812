#include "client/client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <utility>

namespace lepton::client {
namespace {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target,
                                           const ClientOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  // Several addresses ("ipv4:127.0.0.1:50051,127.0.0.1:50052", the nodes of
  // a cluster): spread the calls over them instead of using the first.
  if (target.find(',') != std::string::npos) {
    args.SetLoadBalancingPolicyName("round_robin");
  }
  if (!options.tls.enabled) {
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                     args);
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = options.tls.root_certs;
  ssl.pem_cert_chain = options.tls.cert_chain;
  ssl.pem_private_key = options.tls.private_key;
  if (!options.tls.server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls.server_name);
  }
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), args);
}

void SetDeadline(absl::Duration deadline, grpc::ClientContext* context) {
  if (deadline != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  }
}

}  // namespace

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  // grpc::StatusCode and absl::StatusCode are both google.rpc.Code.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

Client::Client(const std::string& target, const ClientOptions& options)
    : Client(MakeChannel(target, options), options) {}

Client::Client(std::shared_ptr<grpc::ChannelInterface> channel,
               const ClientOptions& options)
    : options_(options),
      channel_(std::move(channel)),
      stub_(v1::ModelService::NewStub(channel_)),
      health_stub_(grpc::health::v1::Health::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> Client::UnaryContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  SetDeadline(options_.deadline, context.get());
  Authenticate(context.get());
  return context;
}

void Client::Authenticate(grpc::ClientContext* context) const {
  // Plain metadata rather than gRPC call credentials, which gRPC sends over
  // TLS only: tokens also work over plaintext (tests, TLS ended by a proxy).
  if (!options_.token.empty()) {
    context->AddMetadata("authorization", "Bearer " + options_.token);
  }
}

absl::StatusOr<v1::ModelInfo> Client::CreateModel(const std::string& name,
                                                  const v1::ModelSpec& spec) {
  v1::CreateModelRequest request;
  request.set_name(name);
  *request.mutable_spec() = spec;
  v1::ModelInfo response;
  grpc::Status status =
      stub_->CreateModel(UnaryContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::ModelInfo> Client::GetModel(const std::string& name) {
  v1::GetModelRequest request;
  request.set_name(name);
  v1::ModelInfo response;
  grpc::Status status =
      stub_->GetModel(UnaryContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<std::vector<v1::ModelInfo>> Client::ListModels() {
  v1::ListModelsResponse response;
  grpc::Status status = stub_->ListModels(UnaryContext().get(), {}, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return std::vector<v1::ModelInfo>(
      std::make_move_iterator(response.mutable_models()->begin()),
      std::make_move_iterator(response.mutable_models()->end()));
}

absl::Status Client::DeleteModel(const std::string& name) {
  v1::DeleteModelRequest request;
  request.set_name(name);
  v1::DeleteModelResponse response;
  return FromGrpcStatus(
      stub_->DeleteModel(UnaryContext().get(), request, &response));
}

absl::StatusOr<v1::PredictResponse> Client::Predict(
    const v1::PredictRequest& request) {
  v1::PredictResponse response;
  grpc::Status status =
      stub_->Predict(UnaryContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::UpdateResponse> Client::Update(
    const v1::UpdateRequest& request) {
  v1::UpdateResponse response;
  grpc::Status status = stub_->Update(UnaryContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::ModelInfo> Client::Rollback(const std::string& name,
                                               uint64_t version) {
  v1::RollbackRequest request;
  request.set_name(name);
  request.set_version(version);
  v1::ModelInfo response;
  grpc::Status status =
      stub_->Rollback(UnaryContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::ModelInfo> Client::AddClasses(const std::string& name,
                                                 int32_t num_classes) {
  v1::AddClassesRequest request;
  request.set_name(name);
  request.set_num_classes(num_classes);
  v1::ModelInfo response;
  grpc::Status status =
      stub_->AddClasses(UnaryContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::ExportModelResponse> Client::ExportModel(
    const std::string& name, uint64_t version) {
  v1::ExportModelRequest request;
  request.set_name(name);
  request.set_version(version);
  v1::ExportModelResponse response;
  grpc::Status status =
      stub_->ExportModel(UnaryContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::ModelInfo> Client::ImportModel(const std::string& name,
                                                  std::string blob) {
  v1::ImportModelRequest request;
  request.set_name(name);
  request.set_model(std::move(blob));
  v1::ModelInfo response;
  grpc::Status status =
      stub_->ImportModel(UnaryContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus>
Client::Health(const std::string& service) {
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status =
      health_stub_->Check(UnaryContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.status();
}

absl::Status Client::WatchModel(
    const v1::WatchModelRequest& request,
    const std::function<bool(const v1::ModelEvent&)>& on_event) {
  grpc::ClientContext context;
  SetDeadline(options_.stream_deadline, &context);
  Authenticate(&context);
  std::unique_ptr<grpc::ClientReader<v1::ModelEvent>> reader =
      stub_->WatchModel(&context, request);
  v1::ModelEvent event;
  while (reader->Read(&event)) {
    if (on_event(event)) continue;
    context.TryCancel();
    // Finish() wants every message read; after the cancel there are few.
    while (reader->Read(&event)) {
    }
    reader->Finish();  // CANCELLED, which we asked for
    return absl::OkStatus();
  }
  return FromGrpcStatus(reader->Finish());
}

std::unique_ptr<ModelWatch> Client::StartWatch(
    const v1::WatchModelRequest& request, ModelWatch::OnEvent on_event) {
  auto context = std::make_unique<grpc::ClientContext>();
  SetDeadline(options_.stream_deadline, context.get());
  Authenticate(context.get());
  return std::make_unique<ModelWatch>(stub_.get(), std::move(context), request,
                                      std::move(on_event));
}

std::unique_ptr<UpdateStream> Client::StartUpdateStream(
    const UpdateStreamOptions& options) {
  auto context = std::make_unique<grpc::ClientContext>();
  SetDeadline(options_.stream_deadline, context.get());
  Authenticate(context.get());
  return std::make_unique<UpdateStream>(stub_.get(), std::move(context),
                                        options);
}

}  // namespace lepton::client
