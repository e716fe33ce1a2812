#include "core/replication/log_position.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace lepton {

std::optional<LogPosition> LogPosition::Parse(absl::string_view id) {
  LogPosition p;
  const size_t dash = id.find('-');
  const absl::string_view ms = id.substr(0, dash);
  if (ms.empty() || !absl::SimpleAtoi(ms, &p.ms)) return std::nullopt;
  if (dash == absl::string_view::npos) return p;
  const absl::string_view seq = id.substr(dash + 1);
  if (seq.empty() || !absl::SimpleAtoi(seq, &p.seq)) return std::nullopt;
  return p;
}

std::string LogPosition::ToString() const { return absl::StrCat(ms, "-", seq); }

}  // namespace lepton
