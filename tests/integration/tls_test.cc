// TLS, mutual TLS and bearer tokens on the real lepton_server binary over
// loopback, with certificates made by `openssl` at test time in a temporary
// directory (a CA, a server certificate for localhost and 127.0.0.1, a
// client certificate from that CA, and a client certificate from another
// CA): nothing secret is committed. Driven by the client library and by the
// lepton_client binary's TLS and token flags. Also: SIGHUP re-reads the token
// file, start-up errors name the bad file, tokens never reach the log.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "tests/testing/binaries.h"
#include "tests/testing/scratch_dir_fixture.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"

namespace lepton::testing {
namespace {

using client::Client;
using client::ClientOptions;

constexpr char kAdminToken[] = "tls-test-admin-token-0123456789";
constexpr char kReaderToken[] = "tls-test-reader-token-0123456789";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::trunc) << contents;
}

// Runs openssl with `args`; fails the test on a non-zero exit.
void OpenSsl(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/openssl");
  RunResult result = lepton::testing::Run(args);
  ASSERT_EQ(result.exit_code, 0) << args[1] << ": " << result.err;
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TestScratchDir("lepton-tls-test");
    ASSERT_FALSE(dir_->path().empty());
    ASSERT_NO_FATAL_FAILURE(MakeCa("ca", "Lepton test CA"));
    ASSERT_NO_FATAL_FAILURE(MakeCa("other-ca", "Some other CA"));
    ASSERT_NO_FATAL_FAILURE(
        MakeLeaf("server", "ca", "localhost",
                 "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                 "extendedKeyUsage=serverAuth\n"));
    ASSERT_NO_FATAL_FAILURE(MakeLeaf("client", "ca", "lepton-client",
                                     "extendedKeyUsage=clientAuth\n"));
    ASSERT_NO_FATAL_FAILURE(MakeLeaf("stranger", "other-ca", "lepton-client",
                                     "extendedKeyUsage=clientAuth\n"));
    WriteFile(Path("tokens.txt"),
              absl::StrCat(kAdminToken, " admin\n", kReaderToken, " reader\n"));
    WriteFile(Path("admin.token"), absl::StrCat(kAdminToken, "\n"));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static std::string Path(const std::string& name) { return dir_->Path(name); }

  // A self-signed CA: NAME.pem and NAME.key (P-256: quick to make).
  static void MakeCa(const std::string& name, const std::string& cn) {
    OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
             "/CN=" + cn, "-keyout", Path(name + ".key"), "-out",
             Path(name + ".pem")});
  }

  // NAME.pem and NAME.key, signed by the CA `ca`, with `extensions`.
  static void MakeLeaf(const std::string& name, const std::string& ca,
                       const std::string& cn, const std::string& extensions) {
    WriteFile(Path(name + ".ext"), extensions);
    OpenSsl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-subj", "/CN=" + cn, "-keyout", Path(name + ".key"),
             "-out", Path(name + ".csr")});
    OpenSsl({"x509", "-req", "-in", Path(name + ".csr"), "-CA",
             Path(ca + ".pem"), "-CAkey", Path(ca + ".key"), "-set_serial", "1",
             "-days", "1", "-extfile", Path(name + ".ext"), "-out",
             Path(name + ".pem")});
  }

  static std::vector<std::string> TlsFlags(bool mutual) {
    std::vector<std::string> flags = {"--tls_cert=" + Path("server.pem"),
                                      "--tls_key=" + Path("server.key")};
    if (mutual) flags.push_back("--tls_client_ca=" + Path("ca.pem"));
    return flags;
  }

  // "localhost:<port>" of a started server (the certificate's DNS name).
  static std::string Localhost(const ServerProcess& server) {
    return absl::StrCat("localhost:",
                        server.target().substr(server.target().find(':') + 1));
  }

  // A client of `target` with the server CA `ca` (empty: plaintext) and
  // the client certificate `cert` (empty: none).
  static std::unique_ptr<Client> ClientOf(const std::string& target,
                                          const std::string& ca,
                                          const std::string& cert = "",
                                          const std::string& token = "") {
    ClientOptions options;
    options.deadline = absl::Seconds(10);
    options.token = token;
    if (!ca.empty()) {
      options.tls.enabled = true;
      options.tls.root_certs = ReadAll(Path(ca + ".pem"));
    }
    if (!cert.empty()) {
      options.tls.cert_chain = ReadAll(Path(cert + ".pem"));
      options.tls.private_key = ReadAll(Path(cert + ".key"));
    }
    return std::make_unique<Client>(target, options);
  }

  static v1::ModelSpec Spec() {
    v1::ModelSpec spec;
    spec.set_type(v1::LOGISTIC_REGRESSION);
    spec.set_num_features(2);
    return spec;
  }

  // The certificates and token files of every test of the suite.
  static TestScratchDir* dir_;
};

TestScratchDir* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, TlsServerTalksToTlsClientsOnly) {
  ServerProcess server(kServerPath);
  ASSERT_TRUE(server.Start(TlsFlags(/*mutual=*/false)).ok());

  // By name and by address: the certificate has both.
  for (const std::string& target : {Localhost(server), server.target()}) {
    SCOPED_TRACE(target);
    std::unique_ptr<Client> client = ClientOf(target, "ca");
    absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus>
        health = client->Health();
    ASSERT_TRUE(health.ok()) << health.status();
    EXPECT_EQ(*health, grpc::health::v1::HealthCheckResponse::SERVING);
  }
  std::unique_ptr<Client> client = ClientOf(Localhost(server), "ca");
  ASSERT_TRUE(client->CreateModel("m", Spec()).ok());
  absl::StatusOr<v1::ModelInfo> info = client->GetModel("m");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version(), 1u);

  // Plaintext gets no answer; a client that trusts another CA refuses the
  // server.
  EXPECT_EQ(ClientOf(server.target(), "")->GetModel("m").status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(
      ClientOf(Localhost(server), "other-ca")->GetModel("m").status().code(),
      absl::StatusCode::kUnavailable);
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificateFromTheCa) {
  ServerProcess server(kServerPath);
  ASSERT_TRUE(server.Start(TlsFlags(/*mutual=*/true)).ok());
  const std::string target = Localhost(server);

  std::unique_ptr<Client> good = ClientOf(target, "ca", "client");
  ASSERT_TRUE(good->CreateModel("m", Spec()).ok());
  EXPECT_TRUE(good->GetModel("m").ok());

  EXPECT_EQ(ClientOf(target, "ca")->GetModel("m").status().code(),
            absl::StatusCode::kUnavailable);  // no certificate
  EXPECT_EQ(ClientOf(target, "ca", "stranger")->GetModel("m").status().code(),
            absl::StatusCode::kUnavailable);  // another CA's certificate
  EXPECT_EQ(ClientOf(server.target(), "")->GetModel("m").status().code(),
            absl::StatusCode::kUnavailable);  // plaintext
  // Not even health: the handshake comes first.
  EXPECT_FALSE(ClientOf(target, "ca")->Health().ok());
}

TEST_F(TlsTest, CommandLineClientWithTlsCertificateAndToken) {
  ServerProcess server(kServerPath);
  std::vector<std::string> flags = TlsFlags(/*mutual=*/true);
  flags.push_back("--auth_tokens=" + Path("tokens.txt"));
  ASSERT_TRUE(server.Start(flags).ok());
  // By address, with the name to expect in the certificate.
  const std::vector<std::string> base = {
      kClientPath,
      "--target=" + server.target(),
      "--tls_ca=" + Path("ca.pem"),
      "--tls_cert=" + Path("client.pem"),
      "--tls_key=" + Path("client.key"),
      "--tls_server_name=localhost",
  };
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), more.begin(), more.end());
    return lepton::testing::Run(argv);
  };

  RunResult created = with({"--token_file=" + Path("admin.token"), "create",
                            "m", "--type=logistic", "--num_features=2"});
  EXPECT_EQ(created.exit_code, 0) << created.err;
  RunResult listed = with({"--token=" + std::string(kReaderToken), "list"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(absl::StrContains(listed.out, "m")) << listed.out;

  RunResult anonymous = with({"list"});
  EXPECT_EQ(anonymous.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(anonymous.err, "UNAUTHENTICATED"))
      << anonymous.err;
  RunResult denied =
      with({"--token=" + std::string(kReaderToken), "delete", "m"});
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(denied.err, "PERMISSION_DENIED")) << denied.err;
  EXPECT_TRUE(absl::StrContains(denied.err, "needs role admin")) << denied.err;
  EXPECT_FALSE(absl::StrContains(denied.err, kReaderToken));

  // The health probe needs no token.
  RunResult health = with({"health"});
  EXPECT_EQ(health.exit_code, 0) << health.err;

  // Without a client certificate the handshake fails.
  RunResult no_cert =
      lepton::testing::Run({kClientPath, "--target=" + Localhost(server),
                            "--tls_ca=" + Path("ca.pem"),
                            "--token=" + std::string(kAdminToken), "list"});
  EXPECT_EQ(no_cert.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(no_cert.err, "UNAVAILABLE")) << no_cert.err;

  // A missing file is named.
  RunResult missing =
      lepton::testing::Run({kClientPath, "--target=" + server.target(),
                            "--tls_ca=/nonexistent/ca.pem", "list"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(missing.err, "/nonexistent/ca.pem"))
      << missing.err;
}

TEST_F(TlsTest, SighupReloadsTokensAndTokensAreNeverLogged) {
  const std::string tokens = Path("reload-tokens.txt");
  const std::string fresh = "tls-test-fresh-token-0123456789";
  WriteFile(tokens, absl::StrCat(kAdminToken, " admin\n"));
  ServerProcess server(kServerPath);
  ASSERT_TRUE(server.Start({"--auth_tokens=" + tokens}).ok());
  std::string log;
  // Reads stderr up to a line containing `needle`.
  auto await_line = [&](absl::string_view needle) {
    while (std::optional<std::string> line =
               server.process().ReadErrLine(absl::Seconds(30))) {
      absl::StrAppend(&log, *line, "\n");
      if (absl::StrContains(*line, needle)) return true;
    }
    return false;
  };

  std::unique_ptr<Client> admin =
      ClientOf(server.target(), "", "", kAdminToken);
  std::unique_ptr<Client> newcomer = ClientOf(server.target(), "", "", fresh);
  ASSERT_TRUE(admin->CreateModel("m", Spec()).ok());
  EXPECT_EQ(newcomer->GetModel("m").status().code(),
            absl::StatusCode::kUnauthenticated);

  WriteFile(tokens, absl::StrCat(fresh, " writer\n"));
  server.process().Signal(SIGHUP);
  ASSERT_TRUE(await_line("event=auth_tokens_reloaded tokens=1")) << log;
  EXPECT_TRUE(newcomer->GetModel("m").ok());
  EXPECT_EQ(admin->GetModel("m").status().code(),
            absl::StatusCode::kUnauthenticated);

  // A bad file: an error in the log, the tokens stay.
  WriteFile(tokens, absl::StrCat(fresh, " superuser\n"));
  server.process().Signal(SIGHUP);
  ASSERT_TRUE(await_line("event=auth_tokens_reload_failed")) << log;
  EXPECT_TRUE(absl::StrContains(log, tokens + ":1: role: must be")) << log;
  EXPECT_TRUE(newcomer->GetModel("m").ok());

  server.process().Signal(SIGTERM);
  EXPECT_EQ(server.process().Wait(absl::Seconds(30)), 0);
  while (std::optional<std::string> line =
             server.process().ReadErrLine(absl::Seconds(5))) {
    absl::StrAppend(&log, *line, "\n");
  }
  EXPECT_TRUE(absl::StrContains(log, "stopped")) << log;
  EXPECT_FALSE(absl::StrContains(log, kAdminToken)) << log;
  EXPECT_FALSE(absl::StrContains(log, fresh)) << log;
}

TEST_F(TlsTest, BadSecuritySettingsStopTheStartNamingTheFile) {
  auto start = [](std::vector<std::string> flags) {
    flags.insert(flags.begin(),
                 {kServerPath, "--listen=127.0.0.1:0", "--data_dir="});
    return lepton::testing::Run(flags);
  };
  RunResult no_key = start({"--tls_cert=" + Path("server.pem")});
  EXPECT_NE(no_key.exit_code, 0);
  EXPECT_TRUE(
      absl::StrContains(no_key.err, "tls_key: required with --tls_cert"))
      << no_key.err;

  RunResult missing = start(
      {"--tls_cert=" + Path("server.pem"), "--tls_key=" + Path("missing.key")});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(missing.err, Path("missing.key")))
      << missing.err;

  RunResult mismatched = start(
      {"--tls_cert=" + Path("server.pem"), "--tls_key=" + Path("client.key")});
  EXPECT_NE(mismatched.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(mismatched.err, "is not the key of"))
      << mismatched.err;

  const std::string bad_tokens = Path("bad-tokens.txt");
  WriteFile(bad_tokens, absl::StrCat("# ok\n", kAdminToken, " admin\n",
                                     kReaderToken, "\n"));
  RunResult malformed = start({"--auth_tokens=" + bad_tokens});
  EXPECT_NE(malformed.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(malformed.err, bad_tokens + ":3: "))
      << malformed.err;
  EXPECT_FALSE(absl::StrContains(malformed.err, kReaderToken)) << malformed.err;
}

}  // namespace
}  // namespace lepton::testing
