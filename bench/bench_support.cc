#include "bench/bench_support.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace lepton::bench {

std::string Describe(const grpc::Status& status) {
  return absl::StrCat("code ", status.error_code(), ": ",
                      status.error_message());
}

std::string DescribeExit(const absl::StatusOr<int>& exit) {
  return exit.ok() ? absl::StrCat("exit status ", *exit)
                   : std::string(exit.status().message());
}

std::shared_ptr<grpc::Channel> Connect(const std::string& target) {
  grpc::ChannelArguments args;
  // Channels with equal arguments share one connection by default; a local
  // subchannel pool gives each channel a TCP connection of its own, as
  // separate clients would have.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                   args);
}

std::vector<std::shared_ptr<grpc::Channel>> ConnectEach(
    const std::vector<std::string>& targets, int n,
    std::chrono::milliseconds timeout) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < n; ++i) {
    channels.push_back(Connect(targets[i % targets.size()]));
    if (!channels.back()->WaitForConnected(std::chrono::system_clock::now() +
                                           timeout)) {
      return {};
    }
  }
  return channels;
}

void Errors::Add(const std::string& what, int64_t n) {
  count += n;
  std::printf("  ERROR: %s\n", what.c_str());
  std::fflush(stdout);
}

}  // namespace lepton::bench
