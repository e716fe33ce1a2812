// AccessControl without gRPC calls: the token file's syntax and its errors
// (file and line, never the token), the constant-time comparison, the role
// table, Authorize() on hand-made metadata, and Reload().
#include "server/access_control.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/scratch_dir_fixture.h"

namespace lepton::server {
namespace {

constexpr char kReaderToken[] = "reader-token-0123456789";
constexpr char kWriterToken[] = "writer-token-0123456789";
constexpr char kAdminToken[] = "admin-token-0123456789a";

std::string GoodFile() {
  return absl::StrCat("# Lepton tokens\n", "\n", kReaderToken, " reader\n",
                      "  ", kWriterToken, "\twriter  \r\n", kAdminToken,
                      " admin\n", "   # indented comment\n");
}

TEST(TokenTableTest, ParsesRolesCommentsBlankLinesAndCrlf) {
  absl::StatusOr<TokenTable> table = TokenTable::Parse(GoodFile(), "t.txt");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 3u);
  EXPECT_EQ(table->Lookup(kReaderToken), Role::kReader);
  EXPECT_EQ(table->Lookup(kWriterToken), Role::kWriter);
  EXPECT_EQ(table->Lookup(kAdminToken), Role::kAdmin);
  EXPECT_EQ(table->Lookup("reader-token-012345678"), Role::kNone);  // prefix
  EXPECT_EQ(table->Lookup("reader-token-0123456789x"), Role::kNone);
  EXPECT_EQ(table->Lookup(""), Role::kNone);
  EXPECT_EQ(table->Lookup("# Lepton tokens"), Role::kNone);
}

// A bad line fails the whole file, naming the file and the line, and the
// message never holds the token (nor the second field, which is the token
// in a line written the wrong way round).
struct BadLine {
  const char* line;
  const char* why;
};

TEST(TokenTableTest, MalformedLineNamesFileAndLineButNotTheToken) {
  const std::string secret = "s3cret-s3cret-s3cret";
  const BadLine cases[] = {
      {"SECRET", "expected \"<token> <role>\", got 1 fields"},
      {"SECRET reader extra", "expected \"<token> <role>\", got 3 fields"},
      {"SECRET root", "role: must be reader, writer or admin"},
      {"SECRET Admin", "role: must be reader, writer or admin"},
      {"admin SECRET", "role: must be reader, writer or admin"},
      {"short reader", "token: must be 16 to 512 characters, got 5"},
  };
  for (const BadLine& c : cases) {
    std::string line = c.line;
    if (size_t at = line.find("SECRET"); at != std::string::npos) {
      line.replace(at, 6, secret);
    }
    const std::string contents =
        absl::StrCat("# comment\n", kReaderToken, " reader\n\n", line, "\n");
    absl::StatusOr<TokenTable> table = TokenTable::Parse(contents, "t.txt");
    ASSERT_FALSE(table.ok()) << c.line;
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(table.status().message(), absl::StrCat("t.txt:4: ", c.why))
        << c.line;
    EXPECT_FALSE(absl::StrContains(table.status().message(), secret));
    EXPECT_FALSE(absl::StrContains(table.status().message(), kReaderToken));
  }
}

TEST(TokenTableTest, RejectsDuplicatesControlCharactersAndEmptyFiles) {
  absl::StatusOr<TokenTable> twice = TokenTable::Parse(
      absl::StrCat(kReaderToken, " reader\n", kReaderToken, " admin\n"), "f");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().message(), "f:2: token: listed before, on line 1");

  absl::StatusOr<TokenTable> control =
      TokenTable::Parse(absl::StrCat("abcdefgh\x01ijklmnopq reader\n"), "f");
  ASSERT_FALSE(control.ok());
  EXPECT_EQ(control.status().message(),
            "f:1: token: must be printable ASCII without spaces");

  absl::StatusOr<TokenTable> empty = TokenTable::Parse("# nothing\n\n", "f");
  ASSERT_FALSE(empty.ok());
  EXPECT_TRUE(absl::StartsWith(empty.status().message(), "f: no tokens"));
}

TEST(TokenTableTest, UnreadableFileIsNamed) {
  absl::StatusOr<TokenTable> table =
      TokenTable::ReadFile("/nonexistent/lepton-tokens.txt");
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(table.status().message(),
                                "/nonexistent/lepton-tokens.txt"))
      << table.status();
}

TEST(ConstantTimeEqualsTest, ComparesEveryByte) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abcdef", "abcdef"));
  EXPECT_FALSE(ConstantTimeEquals("abcdef", "abcdeg"));  // last byte
  EXPECT_FALSE(ConstantTimeEquals("xbcdef", "abcdef"));  // first byte
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  // Bytes that differ only in the high bit, and NULs inside.
  EXPECT_FALSE(
      ConstantTimeEquals(std::string("a\0\x80", 3), std::string("a\0\x00", 3)));
  EXPECT_TRUE(
      ConstantTimeEquals(std::string("a\0\x80", 3), std::string("a\0\x80", 3)));
  const TokenDigest a = DigestToken(kReaderToken);
  const TokenDigest b = DigestToken(kReaderToken);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, DigestToken(kWriterToken));
}

TEST(RoleTableTest, EachMethodNeedsItsRole) {
  // Written out from the issue, not from the code: reader = Predict, Get,
  // List, Watch; writer = + Update, StreamUpdate; admin = everything else.
  const std::map<Method, Role> expected = {
      {Method::kPredict, Role::kReader},
      {Method::kGetModel, Role::kReader},
      {Method::kListModels, Role::kReader},
      {Method::kWatchModel, Role::kReader},
      {Method::kUpdate, Role::kWriter},
      {Method::kStreamUpdate, Role::kWriter},
      {Method::kCreateModel, Role::kAdmin},
      {Method::kDeleteModel, Role::kAdmin},
      {Method::kRollback, Role::kAdmin},
      {Method::kExportModel, Role::kAdmin},
      {Method::kImportModel, Role::kAdmin},
      {Method::kAddClasses, Role::kAdmin},
      // The Open Inference Protocol: reader for inference and metadata,
      // writer for the online_learning extension.
      {Method::kServerMetadata, Role::kReader},
      {Method::kModelMetadata, Role::kReader},
      {Method::kModelReady, Role::kReader},
      {Method::kModelInfer, Role::kReader},
      {Method::kModelInferLearn, Role::kWriter},
  };
  for (const auto& [method, role] : expected) {
    EXPECT_EQ(RequiredRole(method), role) << MethodName(method);
  }
  EXPECT_EQ(MethodName(Method::kStreamUpdate),
            "lepton.v1.ModelService/StreamUpdate");
  EXPECT_EQ(MethodName(Method::kModelInfer),
            "inference.GRPCInferenceService/ModelInfer");
  EXPECT_EQ(ParseRole("writer"), Role::kWriter);
  EXPECT_EQ(ParseRole("none"), Role::kNone);
  EXPECT_EQ(RoleName(Role::kAdmin), "admin");
}

class AccessControlTest : public testing::ScratchDirTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(testing::ScratchDirTest::SetUp());
    path_ = Path("tokens.txt");
    Write(GoodFile());
    absl::StatusOr<std::unique_ptr<AccessControl>> access =
        AccessControl::FromFile(path_);
    ASSERT_TRUE(access.ok()) << access.status();
    access_ = *std::move(access);
  }
  void Write(const std::string& contents) {
    std::ofstream(path_, std::ios::trunc) << contents;
  }

  // Authorize() with `values` as the authorization header(s).
  absl::Status Call(std::vector<std::string> values, Method method) {
    std::multimap<grpc::string_ref, grpc::string_ref> metadata;
    metadata.emplace("user-agent", "test");
    for (const std::string& v : values) metadata.emplace("authorization", v);
    return access_->Authorize(metadata, method);
  }

  std::string path_;
  std::unique_ptr<AccessControl> access_;
};

TEST_F(AccessControlTest, UnauthenticatedWithoutAWellFormedKnownToken) {
  const std::vector<std::vector<std::string>> bad = {
      {},                                           // no header
      {"Bearer"},                                   // no token
      {"Bearer "},                                  // empty token
      {absl::StrCat("Basic ", kAdminToken)},        // other scheme
      {kAdminToken},                                // no scheme
      {"Bearer unknown-token-0123456789"},          // unknown
      {absl::StrCat("Bearer ", kAdminToken, "x")},  // almost
      {absl::StrCat("Bearer ", kAdminToken),        // two headers
       absl::StrCat("Bearer ", kAdminToken)},
  };
  for (const auto& values : bad) {
    absl::Status s = Call(values, Method::kGetModel);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated)
        << (values.empty() ? "(none)" : values[0]) << ": " << s;
    EXPECT_FALSE(absl::StrContains(s.message(), kAdminToken)) << s;
    EXPECT_FALSE(absl::StrContains(s.message(), "unknown-token")) << s;
  }
  // The scheme is case-insensitive; surrounding spaces are dropped.
  EXPECT_TRUE(
      Call({absl::StrCat("bearer ", kAdminToken, " ")}, Method::kGetModel)
          .ok());
}

TEST_F(AccessControlTest, PermissionDeniedNamesMethodAndRoleNotToken) {
  absl::Status s =
      Call({absl::StrCat("Bearer ", kReaderToken)}, Method::kUpdate);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(),
            "lepton.v1.ModelService/Update: needs role writer or higher; the "
            "caller's token has role reader");
  s = Call({absl::StrCat("Bearer ", kWriterToken)}, Method::kImportModel);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(s.message(), "ImportModel: needs role admin"))
      << s;
  EXPECT_FALSE(absl::StrContains(s.message(), kWriterToken));
  EXPECT_TRUE(
      Call({absl::StrCat("Bearer ", kWriterToken)}, Method::kStreamUpdate)
          .ok());
  EXPECT_TRUE(
      Call({absl::StrCat("Bearer ", kAdminToken)}, Method::kPredict).ok());
}

TEST_F(AccessControlTest, ReloadSwapsTokensAndKeepsThemOnABadFile) {
  const std::string fresh = "fresh-token-0123456789";
  Write(absl::StrCat(fresh, " writer\n", kAdminToken, " reader\n"));
  ASSERT_TRUE(access_->Reload().ok());
  EXPECT_EQ(access_->size(), 2u);
  EXPECT_TRUE(Call({"Bearer " + fresh}, Method::kUpdate).ok());
  EXPECT_EQ(
      Call({absl::StrCat("Bearer ", kWriterToken)}, Method::kGetModel).code(),
      absl::StatusCode::kUnauthenticated);
  // The admin token was demoted.
  EXPECT_EQ(
      Call({absl::StrCat("Bearer ", kAdminToken)}, Method::kCreateModel).code(),
      absl::StatusCode::kPermissionDenied);

  Write(absl::StrCat(kAdminToken, " admin\nbroken-line\n"));
  absl::Status s = access_->Reload();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(s.message(), absl::StrCat(path_, ":2: "))) << s;
  // Still the previous table.
  EXPECT_EQ(access_->size(), 2u);
  EXPECT_TRUE(Call({"Bearer " + fresh}, Method::kUpdate).ok());
  EXPECT_EQ(
      Call({absl::StrCat("Bearer ", kAdminToken)}, Method::kCreateModel).code(),
      absl::StatusCode::kPermissionDenied);

  std::remove(path_.c_str());
  EXPECT_EQ(access_->Reload().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Call({"Bearer " + fresh}, Method::kUpdate).ok());
}

}  // namespace
}  // namespace lepton::server
