#!/usr/bin/env bash
# Builds the core benchmarks (Release, in build-bench/), runs them, and prints
# how Lepton's throughput compares with the plain-Eigen baselines measured in
# the same run (ratio = Lepton items/s / baseline items/s; 1.0 = as fast as
# the bare math).
#
#   scripts/bench.sh                              every benchmark
#   scripts/bench.sh --benchmark_filter=Dense     extra arguments go to core_bench
#   scripts/bench.sh --benchmark_repetitions=5    ratios then use the medians
#
# The JSON results are written to build-bench/core_bench.json (or $BENCH_JSON).
set -euo pipefail
cd "$(dirname "$0")/.."

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release
cmake --build build-bench -j2 --target core_bench

json="${BENCH_JSON:-build-bench/core_bench.json}"
# Human-readable table on the console, JSON in $json for the summary.
build-bench/bench/core_bench --benchmark_min_time=0.5 \
  --benchmark_out="$json" --benchmark_out_format=json "$@"

/usr/bin/python3 - "$json" <<'PY'
import json
import statistics
import sys

with open(sys.argv[1]) as f:
    runs = json.load(f)["benchmarks"]

# Items/s and counters of each benchmark: the median over its repetitions
# (Google Benchmark's median aggregate if it reported only aggregates).
rates, counters, medians = {}, {}, {}
for r in runs:
    if r.get("error_occurred") or "items_per_second" not in r:
        continue
    name = r.get("run_name", r["name"])
    if r.get("run_type") == "aggregate":
        if r.get("aggregate_name") == "median":
            medians[name] = r
        continue
    rates.setdefault(name, []).append(r["items_per_second"])
    counters.setdefault(name, []).append(r)
rates = {n: statistics.median(v) for n, v in rates.items()}
for name, r in medians.items():
    rates.setdefault(name, r["items_per_second"])
    counters.setdefault(name, [r])


def si(x):
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}"


def ratio(label, lepton, baseline):
    a, b = rates.get(lepton), rates.get(baseline)
    if a is None or b is None:
        print(f"  {label:<55} n/a (not run)")
        return
    print(f"  {label:<55} {a / b:5.2f}  ({si(a)}/s vs {si(b)}/s)")


print()
print("Summary: Lepton / plain-Eigen baseline, examples per second")
ratio("dense learn @256 vs Eigen SGD step @16 (same minibatch)",
      "BM_DenseSoftmaxLearn/256", "BM_BaselineEigenSoftmaxStep/16")
ratio("dense learn @256 vs Eigen SGD step @32",
      "BM_DenseSoftmaxLearn/256", "BM_BaselineEigenSoftmaxStep/32")
ratio("dense learn @256, minibatch 256 vs Eigen SGD step @256",
      "BM_DenseSoftmaxLearnOneStep/256", "BM_BaselineEigenSoftmaxStep/256")
ratio("dense predict @256 vs Eigen predict @256",
      "BM_DenseSoftmaxPredict/256", "BM_BaselineEigenPredict/256")
for b in (1, 32, 256):
    ratio(f"sparse AdaGrad learn @{b} vs bare AdaGrad loop @{b}",
          f"BM_SparseLogisticLearn/{b}", f"BM_BaselineSparseAdaGrad/{b}")
for b in (1, 32, 256):
    ratio(f"sparse AdaGrad learn @{b} vs bare loop, row order @{b}",
          f"BM_SparseLogisticLearn/{b}", f"BM_BaselineSparseAdaGradRowOrder/{b}")
for b in (1, 32, 256):
    ratio(f"sparse FTRL learn @{b} vs bare FTRL loop @{b}",
          f"BM_SparseFtrlLearn/{b}", f"BM_BaselineSparseFtrl/{b}")

vs_d = [(int(n.rsplit("/", 1)[1]), 1e6 / v) for n, v in rates.items()
        if n.startswith("BM_SparseUpdateVsD/")]
if vs_d:
    vs_d.sort()
    times = ", ".join(f"2^{d}: {t:.1f}" for d, t in vs_d)
    spread = max(t for _, t in vs_d) / min(t for _, t in vs_d)
    print(f"  sparse batch-1 update, us by D: {times} (max/min {spread:.1f}x)")
vs_nnz = [(int(n.rsplit("/", 1)[1]), 1e6 / v) for n, v in rates.items()
          if n.startswith("BM_SparseUpdateVsNonzeros/")]
if vs_nnz:
    vs_nnz.sort()
    times = ", ".join(f"{k}: {t:.1f}" for k, t in vs_nnz)
    print(f"  sparse batch-1 update at D=2^22, us by nonzeros: {times}")
for b in (1, 256):
    st = counters.get(f"BM_SparseLearnStages/{b}")
    if st:
        c = st[-1]
        print(f"  sparse update of {b}, stages in us: validate "
              f"{c['validate_us']:.1f}, learn {c['learn_us']:.1f} (of which "
              f"a scoring pass ~{c['score_us']:.1f}), commit "
              f"{c['commit_us']:.1f}, show {c['show_us']:.1f}, release "
              f"{c['release_us']:.1f}")
mem = counters.get("BM_SparseLogisticLearn/256")
if mem:
    print(f"  sparse learn @256, D=2^22, 8 versions: "
          f"{mem[-1]['mem_MB']:.1f} MB = "
          f"{mem[-1]['mem_vs_one_copy']:.2f}x one copy of the parameters")
PY
