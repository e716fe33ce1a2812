// Fuzz target: the token file parser (server/access_control.h,
// TokenTable::Parse) and the lookups of AccessControl::Authorize's header.
//
// Input: the file's contents. (The file itself is read by ReadConfigFile,
// which refuses one over 1 MiB before reading it.)
//
// Properties, beyond no crash, no sanitizer report and no allocation over
// libFuzzer's -malloc_limit_mb:
//   - the answer is OK or INVALID_ARGUMENT;
//   - an error never shows a token: no field of 16 characters or more of the
//     file appears in its message;
//   - a table parsed OK holds exactly the file's "<token> <role>" lines
//     (read here the plain way): each token looks up to its role, and the
//     token with a byte changed looks up to none.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "server/access_control.h"
#include "tests/fuzz/fuzz_support.h"

namespace lepton::fuzz {
namespace {

using server::ParseRole;
using server::Role;
using server::TokenTable;

void OneInput(const uint8_t* data, size_t size) {
  const absl::string_view contents(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<TokenTable> table = TokenTable::Parse(contents, "t");
  FUZZ_CHECK(table.ok() || absl::IsInvalidArgument(table.status()), "%s",
             table.status().ToString().c_str());

  // The fields of every line, as the format describes them.
  std::vector<std::vector<absl::string_view>> lines;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    lines.push_back(absl::StrSplit(absl::StripAsciiWhitespace(line),
                                   absl::ByAnyChar(" \t"), absl::SkipEmpty()));
  }
  if (!table.ok()) {
    const absl::string_view message = table.status().message();
    for (const auto& fields : lines) {
      for (absl::string_view field : fields) {
        if (field.size() < 16) continue;
        FUZZ_CHECK(message.find(field) == absl::string_view::npos,
                   "the error shows a field: %s", std::string(message).c_str());
      }
    }
    return;
  }
  size_t tokens = 0;
  for (const auto& fields : lines) {
    if (fields.empty() || fields[0].front() == '#') continue;
    FUZZ_CHECK(fields.size() == 2);
    const Role role = ParseRole(fields[1]);
    FUZZ_CHECK(role != Role::kNone);
    FUZZ_CHECK(table->Lookup(fields[0]) == role);
    std::string other(fields[0]);
    other.back() ^= 1;
    const Role other_role = table->Lookup(other);
    bool listed = false;
    for (const auto& f : lines) {
      listed |= !f.empty() && f[0] == other && f.size() == 2;
    }
    FUZZ_CHECK(listed || other_role == Role::kNone);
    ++tokens;
  }
  FUZZ_CHECK(table->size() == tokens);
}

}  // namespace
}  // namespace lepton::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lepton::fuzz::OneInput(data, size);
  return 0;
}
