#!/usr/bin/env bash
# Checks the include direction that the CMake libraries enforce at link time,
# also for headers, whose upward includes the linker cannot see:
#   - a folder of core/ includes only itself and the folders below it:
#     util <- learning <- adaptation <- storage <- store <- replication;
#   - core/ includes no gRPC, Protobuf, hiredis or server/client code;
#   - server/ includes only the store's public headers (model_store.h,
#     store_types.h), the replication's (replicated_store.h, shared_log.h)
#     and core/util/.
# Usage: tests/layering_check.sh [SOURCE_DIR]. Prints every violation; exits 1
# if there is one.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

declare -A rank=([util]=0 [learning]=1 [adaptation]=2 [storage]=3 [store]=4 [replication]=5)
violations=0
report() {
  echo "layering: $1"
  violations=$((violations + 1))
}

for layer in "${!rank[@]}"; do
  for file in core/"$layer"/*.h core/"$layer"/*.cc; do
    [[ -e "$file" ]] || continue
    while IFS= read -r included; do
      target=${included#core/}
      target=${target%%/*}
      if [[ -z "${rank[$target]+set}" ]]; then
        report "$file includes $included, in no layer"
      elif ((rank[$target] > rank[$layer])); then
        report "$file ($layer) includes $included ($target, a layer above)"
      fi
    done < <(sed -n 's/^#include "\(core\/[^"]*\)".*/\1/p' "$file")
    if grep -qE '^#include [<"](grpc|grpcpp|google/protobuf|hiredis|server/|client/|lepton/v1/)' "$file"; then
      report "$file includes gRPC, Protobuf, hiredis, server/ or client/ code"
    fi
  done
done

for file in server/*.h server/*.cc server/cluster/*.h server/cluster/*.cc; do
  while IFS= read -r included; do
    case "$included" in
      core/store/model_store.h | core/store/store_types.h | core/util/*) ;;
      core/replication/replicated_store.h | core/replication/shared_log.h) ;;
      *) report "$file includes $included (server/ may include the store's and the replication's public headers and core/util/ only)" ;;
    esac
  done < <(sed -n 's/^#include "\(core\/[^"]*\)".*/\1/p' "$file")
done

if ((violations > 0)); then
  echo "layering: $violations violation(s)"
  exit 1
fi
echo "layering: every include of core/ and server/ points down"
