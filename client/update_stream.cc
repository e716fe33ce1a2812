#include "client/update_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "client/client.h"

namespace lepton::client {

UpdateStream::UpdateStream(v1::ModelService::Stub* stub,
                           std::unique_ptr<grpc::ClientContext> context,
                           const UpdateStreamOptions& options)
    : options_(options), context_(std::move(context)) {
  // Blocks only until the call has started; a server that cannot be reached
  // makes the first Write() fail and the reader stop, and Finish() then says
  // why.
  stream_ = stub->StreamUpdate(context_.get());
  reader_ = std::thread([this] { ReadLoop(); });
}

UpdateStream::~UpdateStream() {
  if (ended_) return;
  // gRPC requires Finish() on every sync stream; cancelling first makes it
  // return at once instead of waiting for the server.
  context_->TryCancel();
  (void)End();  // the caller did not ask for the outcome
}

void UpdateStream::ReadLoop() {
  v1::UpdateResponse response;
  while (stream_->Read(&response)) {
    absl::MutexLock lock(&mu_);
    responses_.push_back(std::move(response));
    response.Clear();
  }
  absl::MutexLock lock(&mu_);
  reads_done_ = true;
}

bool UpdateStream::DeliverOne() {
  v1::UpdateResponse response;
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](UpdateStream* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
          return !s->responses_.empty() || s->reads_done_;
        },
        this));
    if (responses_.empty()) return false;
    response = std::move(responses_.front());
    responses_.pop_front();
  }
  if (acknowledged_ >= sent_) {
    // Not something a Lepton server does; stop rather than misattribute.
    unexpected_response_ = true;
    context_->TryCancel();
    return false;
  }
  if (options_.on_response) options_.on_response(acknowledged_, response);
  ++acknowledged_;
  return true;
}

absl::Status UpdateStream::End() {
  if (ended_) return status_;
  while (DeliverOne()) {
  }
  reader_.join();  // it has seen the end of the responses, or was cancelled
  status_ = FromGrpcStatus(stream_->Finish());
  ended_ = true;
  if (unexpected_response_) {
    status_ = absl::InternalError(absl::StrCat(
        "the server sent more responses than the ", sent_, " requests"));
  } else if (status_.ok() && acknowledged_ != sent_) {
    status_ = absl::InternalError(
        absl::StrCat("the server ended the stream after answering ",
                     acknowledged_, " of ", sent_, " requests"));
  }
  return status_;
}

absl::Status UpdateStream::Send(const v1::UpdateRequest& request) {
  if (finish_called_) {
    return absl::FailedPreconditionError("UpdateStream: Send() after Finish()");
  }
  if (ended_) return status_;
  const int64_t limit = options_.max_in_flight < 1 ? 1 : options_.max_in_flight;
  while (sent_ - acknowledged_ >= limit) {
    if (!DeliverOne()) return End();
  }
  if (!stream_->Write(request)) return End();
  ++sent_;
  return absl::OkStatus();
}

absl::Status UpdateStream::Finish() {
  if (!ended_ && !finish_called_) {
    // A failed WritesDone() means the stream is already over; End() learns
    // why from the call's status.
    stream_->WritesDone();
  }
  finish_called_ = true;
  return End();
}

}  // namespace lepton::client
