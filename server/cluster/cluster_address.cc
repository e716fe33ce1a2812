#include "server/cluster/cluster_address.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace lepton::server {
namespace {

constexpr size_t kMaxNameLength = 64;

absl::Status Invalid(absl::string_view url, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "cluster: ", what, " in \"", url, "\" (want redis://HOST:PORT/NAME)"));
}

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '.' || c == '-';
}

}  // namespace

std::string ClusterAddress::Key(absl::string_view suffix) const {
  return absl::StrCat(name, ":", suffix);
}

absl::StatusOr<ClusterAddress> ParseClusterAddress(absl::string_view url) {
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "redis://")) {
    return Invalid(url, "the scheme must be redis://");
  }
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) {
    return Invalid(url, "no cluster name");
  }
  absl::string_view authority = rest.substr(0, slash);
  const absl::string_view name = rest.substr(slash + 1);
  ClusterAddress address;
  absl::string_view host = authority;
  absl::string_view port;
  if (absl::ConsumePrefix(&authority, "[")) {  // [IPv6]:PORT
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return Invalid(url, "an unclosed [");
    host = authority.substr(0, close);
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty() && !absl::ConsumePrefix(&after, ":")) {
      return Invalid(url, "junk after ]");
    }
    port = after;
  } else if (const size_t colon = authority.rfind(':');
             colon != absl::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return Invalid(url, "no host");
  address.host = std::string(host);
  if (!port.empty()) {
    int32_t p = 0;
    if (!absl::SimpleAtoi(port, &p) || p < 1 || p > 65535) {
      return Invalid(url, absl::StrCat("a bad port \"", port, "\""));
    }
    address.port = p;
  }
  if (name.empty() || name.size() > kMaxNameLength) {
    return Invalid(url, absl::StrCat("the cluster name must have 1 to ",
                                     kMaxNameLength, " characters"));
  }
  for (char c : name) {
    if (!IsNameChar(c)) {
      return Invalid(url, "the cluster name may hold only A-Z a-z 0-9 _ . -");
    }
  }
  address.name = std::string(name);
  return address;
}

}  // namespace lepton::server
