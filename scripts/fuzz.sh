#!/usr/bin/env bash
# Runs one libFuzzer target (tests/fuzz/, docs/fuzzing.md) for SECONDS, from
# its committed seeds and what earlier runs found, with the limits CI uses:
#
#   scripts/fuzz.sh TARGET SECONDS [LIBFUZZER_OPTION...]
#   scripts/fuzz.sh csv_fuzzer 1800
#   scripts/fuzz.sh list                 # the targets
#
# Builds the target first (preset fuzz, build-fuzz/; FUZZ_JOBS build jobs,
# default 1). New inputs go to build-fuzz/tests/fuzz/corpus/TARGET/, a
# crashing one to build-fuzz/tests/fuzz/artifacts/TARGET/; to keep a crash
# as a regression input, copy it into tests/fuzz/corpus/TARGET/. The final
# stats libFuzzer prints (stat::number_of_executed_units: the executions)
# go to the terminal, or with -jobs=1 to
# build-fuzz/tests/fuzz/logs/TARGET/fuzz-0.log. One process at a time: run
# targets one after another.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(import_model_fuzzer checkpoint_fuzzer update_log_fuzzer log_entry_fuzzer request_fuzzer
  named_features_fuzzer token_file_fuzzer csv_fuzzer libsvm_fuzzer vw_fuzzer)
if [[ "${1:-}" == "list" ]]; then
  printf '%s\n' "${targets[@]}"
  exit 0
fi
if (($# < 2)); then
  echo "usage: $0 TARGET SECONDS [LIBFUZZER_OPTION...]   ($0 list: the targets)" >&2
  exit 2
fi
target=$1
seconds=$2
shift 2
if [[ ! " ${targets[*]} " == *" $target "* ]]; then
  echo "$0: unknown target $target; one of: ${targets[*]}" >&2
  exit 2
fi

if [[ ! -f build-fuzz/CMakeCache.txt ]]; then
  cmake --preset fuzz >/dev/null
fi
cmake --build --preset fuzz -j"${FUZZ_JOBS:-1}" --target "$target"

root=$PWD
dir=$root/build-fuzz/tests/fuzz
dict=()
if [[ -f tests/fuzz/dict/$target.dict ]]; then
  dict=(-dict="$root/tests/fuzz/dict/$target.dict")
fi
mkdir -p "$dir/corpus/$target" "$dir/artifacts/$target" "$dir/logs/$target"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=64}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# With -jobs=N libFuzzer writes each job's output to fuzz-N.log in the
# current directory: that is build-fuzz/tests/fuzz/logs/TARGET/.
cd "$dir/logs/$target"
exec "$dir/$target" -max_total_time="$seconds" -rss_limit_mb=512 \
  -malloc_limit_mb=256 -timeout=120 -print_final_stats=1 "${dict[@]}" \
  -artifact_prefix="$dir/artifacts/$target/" "$@" \
  "$dir/corpus/$target" "$root/tests/fuzz/corpus/$target"
