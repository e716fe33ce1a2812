// A fixture for the command-line tests that talk to a server: a
// lepton_server of the test's own (in memory, on a free loopback port, for
// the commands) and a client library over its in-process channel (for the
// test's own setup and checks). Both live for one test.
#ifndef LEPTON_TESTS_CLIENT_CLI_SERVER_TEST_H_
#define LEPTON_TESTS_CLIENT_CLI_SERVER_TEST_H_

#include <memory>

#include "absl/strings/str_cat.h"
#include "client/cli/cli_common.h"
#include "client/cli/commands.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/testing/capture.h"
#include "tests/testing/subprocess.h"

namespace lepton::client {

using testing::RunResult;

// A lepton_client command (client/cli/commands.h).
using CommandFn = int (*)(const CommandArgs&, const GlobalOptions&);

class CliServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerOptions options;
    options.listen = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<server::Server>> s =
        server::Server::Start(options);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    client_ =
        std::make_unique<Client>(server_->InProcessChannel(), ClientOptions{});
  }

  // Global flags that point a command at this test's server.
  GlobalOptions Global() const {
    GlobalOptions global;
    global.target = absl::StrCat("127.0.0.1:", server_->port());
    global.deadline = absl::Seconds(30);
    return global;
  }

  // Runs a command against this test's server, its output captured.
  RunResult Run(CommandFn run, const CommandArgs& args) const {
    const GlobalOptions global = Global();
    return testing::CaptureRun([&] { return run(args, global); });
  }

  std::unique_ptr<server::Server> server_;
  std::unique_ptr<Client> client_;
};

}  // namespace lepton::client

#endif  // LEPTON_TESTS_CLIENT_CLI_SERVER_TEST_H_
