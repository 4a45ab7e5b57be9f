#!/usr/bin/env bash
# PCX's VGG-5 side by side: prospect (PC and BP), PCX (PC, JAX on CPU) and PyTorch (BP,
# autograd), same network, batch and T, synthetic CIFAR-10-shaped data, one run on this machine.
#
#   bash scripts/bench-vgg5.sh [TIMED_BATCHES]        (default: 5)
#
# Steps (each one fails with a message naming it):
#   1. a virtual environment in .venv-bench/ with bench/peers/requirements-pcx.txt and
#      bench/peers/requirements-torch.txt (reinstalled only when those files change);
#   2. `cargo build --release -p prospect-cli` (or PROSPECT_BIN);
#   3. `prospect bench --case vgg5 --rules pc,bp` (samples/s, FLOPs, the GEMM peak measured on
#      the same product shapes, % of it);
#   4. bench/peers/pcx_vgg5.py and bench/peers/torch_vgg5.py with --batch 128 --steps 8;
#   5. a table: library, rule, samples/s, ratio to PCX, % of prospect's measured GEMM peak
#      (analytic FLOPs of the same net times samples/s), and the CPU's name and ISA.
#
# Environment: BENCH_VENV (default .venv-bench), PYTHON (default python3, >= 3.11),
# PROSPECT_BIN (skip the build), BENCH_SECONDS (prospect's seconds per rule, default 20).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

BATCHES="${1:-5}"
VENV="${BENCH_VENV:-$REPO/.venv-bench}"
PYTHON="${PYTHON:-python3}"
SECONDS_PER_RULE="${BENCH_SECONDS:-20}"
STEP="setup"
die() {
    echo "bench-vgg5: error: $*" >&2
    exit 1
}
log() { echo "bench-vgg5: $*" >&2; }
case "$BATCHES" in
'' | *[!0-9]* | 0) die "TIMED_BATCHES must be a positive integer, got '$BATCHES'" ;;
esac
WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-vgg5.XXXXXX")"
trap 'rc=$?; rm -rf "$WORK"; if [ $rc -ne 0 ]; then echo "bench-vgg5: FAILED during step: $STEP (exit $rc)" >&2; fi' EXIT

# 1. Python environment ---------------------------------------------------------------
STEP="1/5 python environment ($VENV)"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON to a Python >= 3.11)"
for REQS in bench/peers/requirements-pcx.txt bench/peers/requirements-torch.txt; do
    name="$(basename "$REQS" .txt)"
    STAMP="$VENV/.$name.sha256"
    WANT="$(sha256sum "$REQS" | cut -d' ' -f1)"
    if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
        log "step $STEP: $REQS up to date"
        continue
    fi
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" || die "could not create $VENV"
    log "step $STEP: installing $REQS"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" ||
        die "pip install -r $REQS failed"
    echo "$WANT" >"$STAMP"
done
PY="$VENV/bin/python"
"$PY" -c 'import pcx, jax, torch' || die "the peers' stack in $VENV does not import; delete $VENV and rerun"

# 2. prospect build -------------------------------------------------------------------
STEP="2/5 prospect release build"
if [ -n "${PROSPECT_BIN:-}" ]; then
    BIN="$PROSPECT_BIN"
else
    cargo build --release -p prospect-cli >&2 || die "cargo build --release -p prospect-cli failed"
    BIN="$REPO/target/release/prospect"
fi
[ -x "$BIN" ] || die "prospect binary $BIN not found or not executable"

# 3. prospect -------------------------------------------------------------------------
STEP="3/5 prospect bench --case vgg5"
log "step $STEP ($SECONDS_PER_RULE s per rule)"
"$BIN" bench --case vgg5 --rules pc,bp --seconds "$SECONDS_PER_RULE" --json "$WORK/prospect.json" >&2 ||
    die "prospect bench failed (see above)"

# 4. peers ----------------------------------------------------------------------------
STEP="4/5 PCX and PyTorch peers"
log "step $STEP ($BATCHES timed batches each)"
JAX_PLATFORMS=cpu "$PY" bench/peers/pcx_vgg5.py --batch 128 --steps 8 --batches "$BATCHES" --warmup 2 \
    >"$WORK/pcx.out" || die "the PCX run failed (see above)"
"$PY" bench/peers/torch_vgg5.py --batch 128 --batches "$BATCHES" --warmup 2 \
    >"$WORK/torch.out" || die "the PyTorch run failed (see above)"

# 5. report ---------------------------------------------------------------------------
STEP="5/5 report"
CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
ISA="$(grep -m1 -o -w 'avx512f' /proc/cpuinfo || grep -m1 -o -w 'avx2' /proc/cpuinfo || echo 'no avx2')"
"$PY" - "$WORK/prospect.json" "$WORK/pcx.out" "$WORK/torch.out" "$CPU" "$ISA" "$(nproc)" <<'EOF'
import json, sys
prospect = json.load(open(sys.argv[1]))
pcx = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
torch = json.loads(open(sys.argv[3]).read().strip().splitlines()[-1])
cpu, isa, cores = sys.argv[4], sys.argv[5], sys.argv[6]
rows = {r["rule"]: r for r in prospect["rows"]}
pc, bp = rows["pc"], rows["bp"]
def pct(sps, rule):
    # achieved GFLOP/s (prospect's analytic FLOPs of the rule) over the GEMM peak prospect
    # measured on that rule's product shapes in this run
    return 100.0 * sps * rule["flops_per_sample"] / 1e9 / rule["gemm_peak_gflops"]
print(f"\nVGG-5 (conv 128-256-512-512 + 2x2 max-pools, linear), batch 128, T = 8, synthetic CIFAR-10")
print(f"CPU: {cpu}; widest ISA: {isa}; {cores} cores; GEMM peak measured on the products of "
      f"pc: {pc['gemm_peak_gflops']:.1f}, of bp: {bp['gemm_peak_gflops']:.1f} GFLOP/s")
print(f"| library | rule | samples/s | x PCX | % of GEMM peak |")
print(f"| --- | --- | ---: | ---: | ---: |")
table = [
    ("prospect", "pc", pc["samples_per_second"], pc),
    ("PCX 0.6.3 (JAX CPU)", "pc", pcx["samples_per_second"], pc),
    ("prospect", "bp", bp["samples_per_second"], bp),
    (f"PyTorch {torch['torch_version']}", "bp", torch["samples_per_second"], bp),
]
for lib, name, sps, rule in table:
    print(f"| {lib} | {name} | {sps:.1f} | {sps / pcx['samples_per_second']:.2f} | {pct(sps, rule):.0f}% |")
print(f"\nprospect pc / PCX = {pc['samples_per_second'] / pcx['samples_per_second']:.2f}x (target >= 2); "
      f"prospect pc at {pc['percent_of_peak']:.0f}% of its measured GEMM peak (target >= 50%); "
      f"prospect bp / PyTorch bp = {bp['samples_per_second'] / torch['samples_per_second']:.2f}x")
EOF
STEP="done"
