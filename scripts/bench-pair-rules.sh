#!/usr/bin/env bash
# Paired `prospect bench` runs of two prospect binaries: RUNS alternating runs (A B A B ...)
# of `prospect bench --case CASE --rules RULES`, printing samples/s and the share of the FMA
# bound of every (case, rule) per run, then the median A/B ratio per (case, rule) (for
# BENCHMARKS.md, through scripts/bench-log.sh).
#
#   bash scripts/bench-pair-rules.sh BIN_A BIN_B [RUNS] [CASE] [RULES] [SECONDS]
#   (defaults: 6 runs, case filter mlp, rules pc,bp, 3 s per measurement)
set -euo pipefail
A="${1:?usage: bench-pair-rules.sh BIN_A BIN_B [RUNS] [CASE] [RULES] [SECONDS]}"
B="${2:?usage: bench-pair-rules.sh BIN_A BIN_B [RUNS] [CASE] [RULES] [SECONDS]}"
RUNS="${3:-6}" CASE="${4:-mlp}" RULES="${5:-pc,bp}" SECS="${6:-3}"
for bin in "$A" "$B"; do [ -x "$bin" ] || { echo "bench-pair-rules: $bin is not an executable" >&2; exit 1; }; done
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "A = $A"; echo "B = $B"; echo "prospect bench --case $CASE --rules $RULES --seconds $SECS, $RUNS paired runs"
for i in $(seq 1 "$RUNS"); do
    for side in A B; do
        bin="$A"; [ "$side" = B ] && bin="$B"
        "$bin" bench --case "$CASE" --rules "$RULES" --seconds "$SECS" --json "$WORK/$side$i.json" -q
    done
done
python3 - "$WORK" "$RUNS" <<'PY'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
ratios = {}
for i in range(1, runs + 1):
    rows = {s: json.load(open(f"{work}/{s}{i}.json"))["rows"] for s in "AB"}
    for a, b in zip(rows["A"], rows["B"]):
        key = f"{a['case']}/{a['rule']}"
        r = a["samples_per_second"] / b["samples_per_second"]
        ratios.setdefault(key, []).append(r)
        print(f"run {i}: {key}: A {a['samples_per_second']:.0f} ({a['percent_of_bound']:.1f}% of bound)"
              f"  B {b['samples_per_second']:.0f} ({b['percent_of_bound']:.1f}%)  A/B {r:.3f}")
for key, rs in ratios.items():
    print(f"{key}: A/B per pair median {statistics.median(rs):.3f} (min {min(rs):.3f}, max {max(rs):.3f})")
PY
