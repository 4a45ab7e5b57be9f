#!/usr/bin/env bash
# Train the `mnist-mlp-pcx` config with prospect and with the PCX library (JAX on CPU), and the
# same network by backprop in plain PyTorch, for the same number of epochs on this machine, and
# compare training throughput and accuracy (prospect/PCX and prospect/PyTorch-BP).
#
#   bash scripts/bench-vs-pcx.sh [EPOCHS]        (default: 1)
#
# Steps (each one fails with a message naming it):
#   1. a virtual environment in .venv-bench/ with the pinned PCX stack of
#      bench/peers/requirements-pcx.txt and torch of bench/peers/requirements-torch.txt
#      (each reinstalled only when its file changes);
#   2. MNIST under $PROSPECT_DATA/mnist (default data/), via scripts/fetch-data.sh mnist;
#   3. `cargo build --release -p prospect-cli`;
#   4. `prospect train --preset mnist-mlp-pcx --epochs EPOCHS --quiet --out DIR`, read from
#      DIR/metrics.jsonl (one JSON object per epoch: epoch, test_accuracy,
#      samples_per_second, seconds);
#   5. bench/peers/pcx_mnist_mlp.py --epochs EPOCHS and bench/peers/torch_mnist_mlp.py
#      --epochs EPOCHS (one JSON line on stdout each);
#   6. a table: library, train samples/s, test accuracy, prospect/PCX and prospect/PyTorch,
#      with the CPU's name and widest SIMD ISA.
#
# Environment:
#   PROSPECT_DATA      data root (default: <repo>/data)
#   BENCH_VENV         virtual environment directory (default: <repo>/.venv-bench)
#   PYTHON             interpreter that creates the venv (default: python3; needs >= 3.11)
#   PROSPECT_BIN       use this prospect binary and skip the cargo build
#   PCX_ARGS           extra arguments for pcx_mnist_mlp.py (e.g. "--input-norm unit")
#   BENCH_KEEP         if set, keep the prospect output directory and print its path
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

EPOCHS="${1:-1}"
VENV="${BENCH_VENV:-$REPO/.venv-bench}"
PYTHON="${PYTHON:-python3}"
REQS="$REPO/bench/peers/requirements-pcx.txt"
PEER="$REPO/bench/peers/pcx_mnist_mlp.py"
export PROSPECT_DATA="${PROSPECT_DATA:-$REPO/data}"

STEP="setup"
die() {
    echo "bench-vs-pcx: error: $*" >&2
    exit 1
}
log() { echo "bench-vs-pcx: $*" >&2; }
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "bench-vs-pcx: FAILED during step: $STEP (exit $rc)" >&2; fi' EXIT

case "$EPOCHS" in
'' | *[!0-9]* | 0) die "EPOCHS must be a positive integer, got '$EPOCHS' (usage: bash scripts/bench-vs-pcx.sh [EPOCHS])" ;;
esac
EPOCHS=$((10#$EPOCHS))
[ "$EPOCHS" -ge 1 ] || die "EPOCHS must be a positive integer"
[ $# -le 1 ] || die "usage: bash scripts/bench-vs-pcx.sh [EPOCHS]"
[ -f "$REQS" ] || die "$REQS not found"
[ -f "$PEER" ] || die "$PEER not found"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-vs-pcx.XXXXXX")"
cleanup() {
    if [ -n "${BENCH_KEEP:-}" ]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap 'rc=$?; cleanup; if [ $rc -ne 0 ]; then echo "bench-vs-pcx: FAILED during step: $STEP (exit $rc)" >&2; fi' EXIT

# 1. Python environment ---------------------------------------------------------------
STEP="1/6 python environment ($VENV)"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON to a Python >= 3.11)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' ||
    die "pcx 0.6.3 needs Python >= 3.11; $PYTHON is $("$PYTHON" -V 2>&1)"
STAMP="$VENV/.requirements-pcx.sha256"
WANT="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
    log "step $STEP: up to date"
else
    log "step $STEP: installing $(grep -c '==' "$REQS") pinned packages"
    t0=$(date +%s.%N)
    "$PYTHON" -m venv "$VENV" || die "could not create a virtual environment in $VENV (python3-venv missing?)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" ||
        die "pip install -r $REQS failed"
    echo "$WANT" >"$STAMP"
    t1=$(date +%s.%N)
    log "step $STEP: installed in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
fi
"$VENV/bin/python" -c 'import pcx, jax, optax, equinox' ||
    die "the PCX stack in $VENV does not import; delete $VENV and rerun"
TREQS="$REPO/bench/peers/requirements-torch.txt"
TSTAMP="$VENV/.requirements-torch.sha256"
TWANT="$(sha256sum "$TREQS" | cut -d' ' -f1)"
if ! { [ -f "$TSTAMP" ] && [ "$(cat "$TSTAMP")" = "$TWANT" ]; }; then
    log "step $STEP: installing $TREQS"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$TREQS" ||
        die "pip install -r $TREQS failed"
    echo "$TWANT" >"$TSTAMP"
fi
"$VENV/bin/python" -c 'import torch' || die "torch in $VENV does not import; delete $VENV and rerun"
PY="$VENV/bin/python"

# 2. Data -------------------------------------------------------------------------------
STEP="2/6 MNIST data ($PROSPECT_DATA/mnist)"
mnist_valid() {
    # All four IDX files present with the checksums pinned in data/SHA256SUMS.
    local f want
    for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
        want="$(awk -v f="mnist/$f" '$1 !~ /^#/ && $2 == f { print $1 }' "$REPO/data/SHA256SUMS")"
        [ -n "$want" ] && [ -f "$PROSPECT_DATA/mnist/$f" ] &&
            [ "$(sha256sum "$PROSPECT_DATA/mnist/$f" | cut -d' ' -f1)" = "$want" ] || return 1
    done
}
fetch_rc=0
bash "$REPO/scripts/fetch-data.sh" mnist >&2 || fetch_rc=$?
if [ "$fetch_rc" -ne 0 ]; then
    # fetch-data.sh can exit non-zero after success (its EXIT trap returns 1 when it had
    # nothing to download): trust the pinned checksums, not the exit code.
    mnist_valid || die "scripts/fetch-data.sh mnist failed (exit $fetch_rc) and MNIST is not in place"
    log "step $STEP: fetch-data.sh exited $fetch_rc, but all four files match data/SHA256SUMS"
fi

# 3. prospect build ---------------------------------------------------------------------
STEP="3/6 prospect release build"
if [ -n "${PROSPECT_BIN:-}" ]; then
    BIN="$PROSPECT_BIN"
    log "step $STEP: skipped, PROSPECT_BIN=$BIN"
else
    log "step $STEP: cargo build --release -p prospect-cli"
    cargo build --release -p prospect-cli >&2 || die "cargo build --release -p prospect-cli failed"
    BIN="$REPO/target/release/prospect"
fi
[ -x "$BIN" ] || die "prospect binary $BIN not found or not executable"

# 4. prospect run -----------------------------------------------------------------------
STEP="4/6 prospect train --preset mnist-mlp-pcx --epochs $EPOCHS"
OUT="$WORK/prospect"
mkdir -p "$OUT"
log "step $STEP"
"$BIN" train --preset mnist-mlp-pcx --epochs "$EPOCHS" --quiet --out "$OUT" >&2 ||
    die "prospect train failed (see its output above)"
[ -s "$OUT/metrics.jsonl" ] || die "prospect train wrote no $OUT/metrics.jsonl"
PROSPECT_JSON="$("$PY" - "$OUT/metrics.jsonl" "$EPOCHS" <<'EOF'
import json, sys
path, epochs = sys.argv[1], int(sys.argv[2])
rows = []
with open(path) as f:
    for n, line in enumerate(f, 1):
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            sys.exit(f"{path}:{n}: not JSON: {e}")
rows = [r for r in rows if isinstance(r, dict) and "epoch" in r]
need = ("test_accuracy", "samples_per_second", "seconds", "examples")
for r in rows:
    missing = [k for k in need if not isinstance(r.get(k), (int, float))]
    if missing:
        sys.exit(f"{path}: epoch {r.get('epoch')} lacks numeric {', '.join(missing)}")
if len(rows) != epochs:
    sys.exit(f"{path}: expected {epochs} epoch lines, found {len(rows)}")
# training time only (evaluation excluded, as in the PCX script): examples / train samples/s
secs = sum(r["examples"] / r["samples_per_second"] for r in rows if r["samples_per_second"] > 0)
samples = sum(r["examples"] for r in rows)
print(json.dumps({
    "library": "prospect",
    "epochs": len(rows),
    "train_samples_per_second": round(samples / secs, 2) if secs > 0 else float("nan"),
    "test_accuracy": rows[-1]["test_accuracy"],
    "seconds_per_epoch": [r["seconds"] for r in rows],
    "train_seconds_per_epoch": [round(r["examples"] / r["samples_per_second"], 3) for r in rows],
}))
EOF
)" || die "could not read prospect's metrics.jsonl"

# 5. PCX run ----------------------------------------------------------------------------
STEP="5/6 PCX (bench/peers/pcx_mnist_mlp.py --epochs $EPOCHS)"
log "step $STEP"
# shellcheck disable=SC2086  # PCX_ARGS is a list of words
JAX_PLATFORMS=cpu "$PY" "$PEER" --epochs "$EPOCHS" --data "$PROSPECT_DATA" ${PCX_ARGS:-} >"$WORK/pcx.out" ||
    die "the PCX run failed (see its output above)"
PCX_JSON="$(tail -n 1 "$WORK/pcx.out")"
"$PY" -c 'import json, sys; json.loads(sys.argv[1])' "$PCX_JSON" 2>/dev/null ||
    die "the PCX run printed no JSON result line (got: $PCX_JSON)"
STEP="5/6 PyTorch backprop (bench/peers/torch_mnist_mlp.py --epochs $EPOCHS)"
log "step $STEP"
"$PY" "$REPO/bench/peers/torch_mnist_mlp.py" --epochs "$EPOCHS" --data "$PROSPECT_DATA" >"$WORK/torch.out" ||
    die "the PyTorch run failed (see its output above)"
TORCH_JSON="$(tail -n 1 "$WORK/torch.out")"
"$PY" -c 'import json, sys; json.loads(sys.argv[1])' "$TORCH_JSON" 2>/dev/null ||
    die "the PyTorch run printed no JSON result line (got: $TORCH_JSON)"

# 6. Report -----------------------------------------------------------------------------
STEP="6/6 report"
echo "prospect: $PROSPECT_JSON"
echo "pcx:      $PCX_JSON"
echo "pytorch:  $TORCH_JSON"
CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
ISA="$(grep -m1 -o -w 'avx512f' /proc/cpuinfo || grep -m1 -o -w 'avx2' /proc/cpuinfo || echo 'no-avx2')"
"$PY" - "$PROSPECT_JSON" "$PCX_JSON" "$TORCH_JSON" "$CPU" "$ISA" "$(nproc)" <<'EOF'
import json, sys
p, x, t = (json.loads(a) for a in sys.argv[1:4])
print()
print(f"mnist-mlp-pcx, {p['epochs']} epoch(s), batch 128, T = 8, same machine")
print(f"CPU: {sys.argv[4]}; widest ISA: {sys.argv[5]}; {sys.argv[6]} cores")
print(f"{'library':<22} {'train samples/s':>16} {'test accuracy':>14}")
for name, r in (("prospect pc", p), ("PCX pc", x), (f"PyTorch {t['torch_version']} bp", t)):
    print(f"{name:<22} {r['train_samples_per_second']:>16.1f} {r['test_accuracy']:>14.4f}")
rx = p["train_samples_per_second"] / x["train_samples_per_second"]
rt = p["train_samples_per_second"] / t["train_samples_per_second"]
print(f"{'prospect pc / PCX':<22} {rx:>15.2f}x  (target >= 3)")
print(f"{'prospect pc / PyTorch':<22} {rt:>15.2f}x  (target >= 1.3)")
EOF
STEP="done"
