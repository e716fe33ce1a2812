// ClusterAddress: where a node's cluster lives, from
// --cluster=redis://HOST:PORT/NAME: the Redis server that keeps the cluster's
// update log, and the cluster's name, which prefixes every Redis key the
// node writes ("NAME:"), so that clusters can share one Redis.
//
// Thread safety: plain values and a pure function.
#ifndef LEPTON_SERVER_CLUSTER_CLUSTER_ADDRESS_H_
#define LEPTON_SERVER_CLUSTER_CLUSTER_ADDRESS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lepton::server {

struct ClusterAddress {
  std::string host;  // a name or an IPv4 address; "[...]" stripped for IPv6
  int32_t port = 6379;
  std::string name;  // 1 to 64 of [A-Za-z0-9_.-]

  // The Redis key of `suffix` in this cluster: "NAME:suffix".
  std::string Key(absl::string_view suffix) const;
};

// Parses "redis://HOST[:PORT]/NAME" (PORT defaults to 6379). INVALID_ARGUMENT
// "cluster: ..." naming what is wrong.
absl::StatusOr<ClusterAddress> ParseClusterAddress(absl::string_view url);

}  // namespace lepton::server

#endif  // LEPTON_SERVER_CLUSTER_CLUSTER_ADDRESS_H_
