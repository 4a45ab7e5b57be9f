#!/usr/bin/env bash
# Paired training throughput of two prospect binaries: RUNS alternating runs (A B A B ...) of
# `prospect train --preset PRESET --algo ALGO --epochs EPOCHS` each, printing the training
# samples/s of the last epoch of every run and the medians (for BENCHMARKS.md, through
# scripts/bench-log.sh).
#
#   bash scripts/bench-pair.sh BIN_A BIN_B [RUNS] [ALGO] [PRESET] [EPOCHS]
#   (defaults: 6 runs, pc, mnist-mlp-pcx, 1 epoch; PROSPECT_DATA as for prospect)
set -euo pipefail
A="${1:?usage: bench-pair.sh BIN_A BIN_B [RUNS] [ALGO] [PRESET] [EPOCHS]}"
B="${2:?usage: bench-pair.sh BIN_A BIN_B [RUNS] [ALGO] [PRESET] [EPOCHS]}"
RUNS="${3:-6}" ALGO="${4:-pc}" PRESET="${5:-mnist-mlp-pcx}" EPOCHS="${6:-1}"
for bin in "$A" "$B"; do [ -x "$bin" ] || { echo "bench-pair: $bin is not an executable" >&2; exit 1; }; done
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
rate() { # BIN DIR -> samples/s of the last epoch
    "$1" train --preset "$PRESET" --algo "$ALGO" --epochs "$EPOCHS" --quiet --no-plot --out "$2" >/dev/null
    python3 -c "import json,sys; print(round(json.loads(open(sys.argv[1]).read().splitlines()[-1])['samples_per_second']))" "$2/metrics.jsonl"
}
echo "A = $A"; echo "B = $B"; echo "$PRESET, --algo $ALGO, $EPOCHS epoch(s), $RUNS paired runs"
a=() b=()
for i in $(seq 1 "$RUNS"); do
    ra=$(rate "$A" "$WORK/a$i"); rb=$(rate "$B" "$WORK/b$i")
    a+=("$ra") b+=("$rb")
    echo "run $i: A $ra  B $rb  A/B $(python3 -c "print(f'{$ra/$rb:.3f}')")"
done
python3 - "${a[*]}" "${b[*]}" <<'PY'
import statistics, sys
a = [float(v) for v in sys.argv[1].split()]
b = [float(v) for v in sys.argv[2].split()]
r = [x / y for x, y in zip(a, b)]
print(f"median samples/s: A {statistics.median(a):.0f}  B {statistics.median(b):.0f}; "
      f"A/B per pair: median {statistics.median(r):.3f} (min {min(r):.3f}, max {max(r):.3f})")
PY
