// Bearer tokens with roles through gRPC: a Server started with an
// --auth_tokens file, called over its in-process channel by the client
// library (which sends "authorization: Bearer <token>"). Every (role,
// method) pair: allowed calls get past access control, refused ones are
// PERMISSION_DENIED and change nothing; calls without a (known) token are
// UNAUTHENTICATED and change nothing; health stays open; a reload swaps the
// tokens.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "server/server.h"
#include "tests/testing/scratch_dir_fixture.h"

namespace lepton::server {
namespace {

using client::Client;
using client::ClientOptions;

constexpr char kReaderToken[] = "reader-token-0123456789";
constexpr char kWriterToken[] = "writer-token-0123456789";
constexpr char kAdminToken[] = "admin-token-0123456789a";

// The RPCs, as the test calls them.
enum class Rpc {
  kCreateModel,
  kGetModel,
  kListModels,
  kDeleteModel,
  kPredict,
  kUpdate,
  kStreamUpdate,
  kRollback,
  kExportModel,
  kImportModel,
  kWatchModel,
  kAddClasses,
};
constexpr Rpc kAllRpcs[] = {
    Rpc::kCreateModel, Rpc::kGetModel,    Rpc::kListModels,   Rpc::kDeleteModel,
    Rpc::kPredict,     Rpc::kUpdate,      Rpc::kStreamUpdate, Rpc::kRollback,
    Rpc::kExportModel, Rpc::kImportModel, Rpc::kWatchModel,   Rpc::kAddClasses,
};

const char* NameOf(Rpc rpc) {
  switch (rpc) {
    case Rpc::kCreateModel:
      return "CreateModel";
    case Rpc::kGetModel:
      return "GetModel";
    case Rpc::kListModels:
      return "ListModels";
    case Rpc::kDeleteModel:
      return "DeleteModel";
    case Rpc::kPredict:
      return "Predict";
    case Rpc::kUpdate:
      return "Update";
    case Rpc::kStreamUpdate:
      return "StreamUpdate";
    case Rpc::kRollback:
      return "Rollback";
    case Rpc::kExportModel:
      return "ExportModel";
    case Rpc::kImportModel:
      return "ImportModel";
    case Rpc::kWatchModel:
      return "WatchModel";
    case Rpc::kAddClasses:
      return "AddClasses";
  }
  return "?";
}

// The table, written out independently of server/access_control.cc.
bool Allowed(const std::string& role, Rpc rpc) {
  switch (rpc) {
    case Rpc::kPredict:
    case Rpc::kGetModel:
    case Rpc::kListModels:
    case Rpc::kWatchModel:
      return true;
    case Rpc::kUpdate:
    case Rpc::kStreamUpdate:
      return role == "writer" || role == "admin";
    default:
      return role == "admin";
  }
}

const char* NeededRole(Rpc rpc) {
  if (Allowed("reader", rpc)) return "reader";
  if (Allowed("writer", rpc)) return "writer";
  return "admin";
}

v1::UpdateRequest OneExample(const std::string& model) {
  v1::UpdateRequest request;
  request.set_model(model);
  v1::Example* example = request.add_examples();
  example->mutable_features()->add_dense(1.0f);
  example->mutable_features()->add_dense(-0.5f);
  example->set_label(1.0f);
  return request;
}

class AuthServiceTest : public testing::ScratchDirTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(testing::ScratchDirTest::SetUp());
    tokens_path_ = Path("tokens.txt");
    WriteTokens(absl::StrCat("# role per token\n", kReaderToken, " reader\n",
                             kWriterToken, " writer\n", kAdminToken,
                             " admin\n"));
    ServerOptions options;
    options.listen = "";  // in-process only
    options.auth_tokens_file = tokens_path_;
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    admin_ = ClientWith(kAdminToken);

    v1::ModelSpec spec;
    spec.set_type(v1::LOGISTIC_REGRESSION);
    spec.set_num_features(2);
    ASSERT_TRUE(admin_->CreateModel("m", spec).ok());
    ASSERT_TRUE(admin_->Update(OneExample("m")).ok());  // version 2
    ASSERT_TRUE(admin_->CreateModel("victim", spec).ok());
    v1::ModelSpec softmax = spec;
    softmax.set_type(v1::SOFTMAX_REGRESSION);
    softmax.set_num_classes(2);
    ASSERT_TRUE(admin_->CreateModel("classes", softmax).ok());
    absl::StatusOr<v1::ExportModelResponse> blob = admin_->ExportModel("m", 0);
    ASSERT_TRUE(blob.ok()) << blob.status();
    blob_ = blob->model();
    spec_ = spec;
  }

  void WriteTokens(const std::string& contents) {
    std::ofstream(tokens_path_, std::ios::trunc) << contents;
  }

  std::unique_ptr<Client> ClientWith(const std::string& token) {
    ClientOptions options;
    options.token = token;
    options.deadline = absl::Seconds(10);
    // WatchModel, when allowed, waits for events that never come: its
    // deadline ends it.
    options.stream_deadline = absl::Milliseconds(300);
    return std::make_unique<Client>(server_->InProcessChannel(), options);
  }

  // Every model's name -> (version, examples seen), through the store.
  std::map<std::string, std::pair<uint64_t, uint64_t>> Snapshot() {
    std::map<std::string, std::pair<uint64_t, uint64_t>> models;
    for (const ModelInfo& info : server_->store().ListModels()) {
      models[info.name] = {info.version, info.counters.examples_seen};
    }
    return models;
  }

  // Calls `rpc` as a test of the role `tag` would: each call, if it got
  // through, would change (or read) something the snapshot shows.
  absl::Status CallRpc(Client& client, Rpc rpc, const std::string& tag) {
    switch (rpc) {
      case Rpc::kCreateModel:
        return client.CreateModel("new-" + tag, spec_).status();
      case Rpc::kGetModel:
        return client.GetModel("m").status();
      case Rpc::kListModels:
        return client.ListModels().status();
      case Rpc::kDeleteModel:
        return client.DeleteModel("victim");
      case Rpc::kPredict: {
        v1::PredictRequest request;
        request.set_model("m");
        request.add_instances()->add_dense(1.0f);
        request.mutable_instances(0)->add_dense(2.0f);
        return client.Predict(request).status();
      }
      case Rpc::kUpdate:
        return client.Update(OneExample("m")).status();
      case Rpc::kStreamUpdate: {
        std::unique_ptr<client::UpdateStream> stream =
            client.StartUpdateStream({});
        absl::Status sent = stream->Send(OneExample("m"));
        absl::Status finished = stream->Finish();
        return sent.ok() ? finished : sent;
      }
      case Rpc::kRollback:
        return client.Rollback("m", 1).status();
      case Rpc::kExportModel:
        return client.ExportModel("m", 0).status();
      case Rpc::kImportModel:
        return client.ImportModel("imported-" + tag, blob_).status();
      case Rpc::kWatchModel: {
        v1::WatchModelRequest request;
        request.set_name("m");
        return client.WatchModel(request,
                                 [](const v1::ModelEvent&) { return false; });
      }
      case Rpc::kAddClasses: {
        // One class more than it has: a new version when it gets through.
        const int32_t classes =
            server_->store().GetModel("classes")->spec.num_classes;
        return client.AddClasses("classes", classes + 1).status();
      }
    }
    return absl::InternalError("unknown rpc");
  }

  std::string tokens_path_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Client> admin_;
  v1::ModelSpec spec_;
  std::string blob_;
};

TEST_F(AuthServiceTest, EveryRoleAndMethodPair) {
  const std::pair<std::string, std::string> roles[] = {
      {"reader", kReaderToken},
      {"writer", kWriterToken},
      {"admin", kAdminToken},
  };
  int allowed = 0;
  int refused = 0;
  for (const auto& [role, token] : roles) {
    std::unique_ptr<Client> client = ClientWith(token);
    for (Rpc rpc : kAllRpcs) {
      SCOPED_TRACE(absl::StrCat(role, " ", NameOf(rpc)));
      const auto before = Snapshot();
      absl::Status status = CallRpc(*client, rpc, role);
      if (Allowed(role, rpc)) {
        ++allowed;
        EXPECT_NE(status.code(), absl::StatusCode::kUnauthenticated) << status;
        EXPECT_NE(status.code(), absl::StatusCode::kPermissionDenied) << status;
        // Each allowed call did its work.
        if (rpc == Rpc::kWatchModel) {
          EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded)
              << status;
        } else {
          EXPECT_TRUE(status.ok()) << status;
        }
        const auto after = Snapshot();
        if (rpc == Rpc::kUpdate || rpc == Rpc::kStreamUpdate ||
            rpc == Rpc::kRollback) {
          EXPECT_EQ(after.at("m").first, before.at("m").first + 1);
        }
        if (rpc == Rpc::kAddClasses) {
          EXPECT_EQ(after.at("classes").first, before.at("classes").first + 1);
        }
        if (rpc == Rpc::kCreateModel) {
          EXPECT_TRUE(after.count("new-" + role));
        }
        if (rpc == Rpc::kImportModel) {
          EXPECT_TRUE(after.count("imported-" + role));
        }
        if (rpc == Rpc::kDeleteModel) {
          EXPECT_FALSE(after.count("victim"));
          ASSERT_TRUE(admin_->CreateModel("victim", spec_).ok());
        }
      } else {
        ++refused;
        EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
        EXPECT_TRUE(absl::StrContains(
            status.message(),
            absl::StrCat("lepton.v1.ModelService/", NameOf(rpc),
                         ": needs role ", NeededRole(rpc))))
            << status;
        EXPECT_FALSE(absl::StrContains(status.message(), token)) << status;
        // Nothing applied: no model created, deleted or changed.
        EXPECT_EQ(Snapshot(), before);
      }
    }
  }
  // 4 reader RPCs, +2 for writers, all 12 for admins.
  EXPECT_EQ(allowed, 4 + 6 + 12);
  EXPECT_EQ(refused, 8 + 6);
}

TEST_F(AuthServiceTest, NoOrUnknownOrMalformedTokenIsUnauthenticated) {
  std::vector<std::unique_ptr<Client>> clients;
  clients.push_back(ClientWith(""));  // no authorization header at all
  clients.push_back(ClientWith("unknown-token-0123456789"));
  clients.push_back(ClientWith(std::string(kAdminToken) + "0"));
  for (auto& client : clients) {
    for (Rpc rpc : kAllRpcs) {
      SCOPED_TRACE(NameOf(rpc));
      const auto before = Snapshot();
      absl::Status status = CallRpc(*client, rpc, "anonymous");
      EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
      EXPECT_FALSE(absl::StrContains(status.message(), "unknown-token"));
      EXPECT_EQ(Snapshot(), before);
    }
  }
}

TEST_F(AuthServiceTest, HealthNeedsNoToken) {
  std::unique_ptr<Client> anonymous = ClientWith("");
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> health =
      anonymous->Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(anonymous->GetModel("m").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(AuthServiceTest, ReloadAddsNewTokensAndDropsOldOnes) {
  const std::string fresh = "fresh-admin-token-0123456789";
  std::unique_ptr<Client> old_reader = ClientWith(kReaderToken);
  std::unique_ptr<Client> newcomer = ClientWith(fresh);
  ASSERT_TRUE(old_reader->GetModel("m").ok());
  EXPECT_EQ(newcomer->GetModel("m").status().code(),
            absl::StatusCode::kUnauthenticated);

  WriteTokens(absl::StrCat(fresh, " admin\n", kWriterToken, " reader\n"));
  ASSERT_TRUE(server_->ReloadAuthTokens().ok());
  EXPECT_EQ(old_reader->GetModel("m").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(newcomer->CreateModel("after-reload", spec_).ok());
  // The writer was demoted to reader.
  std::unique_ptr<Client> demoted = ClientWith(kWriterToken);
  const uint64_t version = server_->store().GetModel("m")->version;
  EXPECT_EQ(demoted->Update(OneExample("m")).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(server_->store().GetModel("m")->version, version);

  // A bad file keeps the tokens in force.
  WriteTokens("not a valid line at all\n");
  absl::Status bad = server_->ReloadAuthTokens();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument) << bad;
  EXPECT_TRUE(newcomer->GetModel("m").ok());
  EXPECT_EQ(old_reader->GetModel("m").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(AuthServerTest, WithoutAuthTokensEverythingIsOpen) {
  ServerOptions options;
  options.listen = "";
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->access_control(), nullptr);
  EXPECT_EQ((*server)->ReloadAuthTokens().code(),
            absl::StatusCode::kFailedPrecondition);
  Client anonymous((*server)->InProcessChannel(), {});
  v1::ModelSpec spec;
  spec.set_type(v1::LOGISTIC_REGRESSION);
  spec.set_num_features(2);
  EXPECT_TRUE(anonymous.CreateModel("open", spec).ok());
}

TEST(AuthServerTest, BadTokenFileOrTlsOptionsStopTheStart) {
  ServerOptions options;
  options.listen = "";
  options.auth_tokens_file = "/nonexistent/tokens.txt";
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_TRUE(
      absl::StrContains(server.status().message(), "/nonexistent/tokens.txt"))
      << server.status();

  options.auth_tokens_file.clear();
  options.tls.cert_file = "/nonexistent/cert.pem";
  server = Server::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(server.status().message(), "tls_key: "))
      << server.status();

  options.tls.key_file = "/nonexistent/key.pem";
  server = Server::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_TRUE(
      absl::StrContains(server.status().message(), "/nonexistent/cert.pem"))
      << server.status();

  options.tls = {};
  options.tls.client_ca_file = "/nonexistent/ca.pem";
  server = Server::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_TRUE(absl::StartsWith(server.status().message(), "tls_client_ca: "))
      << server.status();
}

}  // namespace
}  // namespace lepton::server
