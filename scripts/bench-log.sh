#!/usr/bin/env bash
# Run a command N times and keep its raw output with the facts a figure needs: date, git
# commit, CPU model and features, memory, toolchain, the exact command, and the load average
# at the start and end of every run. Every figure in README.md and BENCHMARKS.md comes from a
# log written by this script under bench/results/.
#
#   bash scripts/bench-log.sh [-n RUNS] NAME COMMAND [ARG ...]
#
# Writes bench/results/NAME/log.txt (refuses to overwrite an existing NAME). In the command's
# arguments `{dir}` stands for that directory and `{run}` for the run number (1..RUNS), so
# per-run files land next to the log, e.g.
#
#   bash scripts/bench-log.sh -n 3 2026-12-01-bench target/release/prospect bench --json '{dir}/bench-{run}.json'
#
# The git facts are those of the current directory's repository (run it where the measured
# binary was built). The command runs without a shell; wrap pipes in `sh -c '...'`.
# Environment: BENCH_RESULTS (default: <repo of this script>/bench/results).
set -euo pipefail

RUNS=1
if [ "${1:-}" = "-n" ]; then
    RUNS="${2:?-n needs a number}"
    shift 2
fi
case "$RUNS" in '' | *[!0-9]* | 0) echo "bench-log: -n needs a positive integer, got '$RUNS'" >&2 && exit 2 ;; esac
[ $# -ge 2 ] || { echo "usage: bash scripts/bench-log.sh [-n RUNS] NAME COMMAND [ARG ...]" >&2; exit 2; }
NAME="$1"
shift
case "$NAME" in */* | .* | '') echo "bench-log: NAME must be a plain directory name, got '$NAME'" >&2 && exit 2 ;; esac

SCRIPT_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RESULTS="${BENCH_RESULTS:-$SCRIPT_REPO/bench/results}"
DIR="$RESULTS/$NAME"
[ ! -e "$DIR" ] || { echo "bench-log: $DIR exists; pick another NAME" >&2; exit 2; }
mkdir -p "$DIR"
LOG="$DIR/log.txt"

quoted() { printf '%q ' "$@" | sed 's/ $//'; }
fact() { printf '%-16s %s\n' "$1:" "$2" >>"$LOG"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

{
    echo "# bench-log $NAME"
} >"$LOG"
fact date_utc "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
if git rev-parse --git-dir >/dev/null 2>&1; then
    dirty="$(git status --porcelain --untracked-files=no | wc -l)"
    fact git_commit "$(git rev-parse HEAD) ($(git log -1 --format=%cs) $(git log -1 --format=%s | cut -c1-60)...)"
    fact git_tree "$(if [ "$dirty" -eq 0 ]; then echo clean; else echo "$dirty tracked files modified: $(git status --porcelain --untracked-files=no | awk '{print $2}' | tr '\n' ' ')"; fi)"
else
    fact git_commit "none (not run inside a git repository)"
fi
fact cwd "$PWD"
fact command "$(quoted "$@")"
fact runs "$RUNS"
fact cpu_model "$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
fact cpus "$(nproc) online; $(lscpu 2>/dev/null | sed -n 's/^Thread(s) per core:[[:space:]]*/threads per core /p' | head -1)"
fact cpu_flags "$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512bw|avx512vl)$' | tr '\n' ' ')"
fact caches "$(lscpu 2>/dev/null | grep -E '^L[123][di]? ?cache' | sed 's/[[:space:]]\{2,\}/ /g' | tr '\n' ';')"
fact memory "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
fact kernel "$(uname -sr)"
fact rustc "$(rustc -V 2>/dev/null || echo none)"
fact rustflags "$(sed -n 's/^rustflags *= *//p' "$SCRIPT_REPO/.cargo/config.toml" 2>/dev/null | head -1)"
if [ -f "$1" ] && [ -x "$1" ]; then
    fact binary "$1 sha256 $(sha256sum "$1" | cut -d' ' -f1), modified $(date -u -r "$1" +%Y-%m-%dT%H:%M:%SZ)"
fi
fact env "$(env | grep -E '^(PROSPECT_|BENCH_|PCX_|RAYON_|JAX_|XLA_|OMP_)' | sort | tr '\n' ' ')"
fact uptime "$(uptime)"

status=0
for run in $(seq 1 "$RUNS"); do
    args=()
    for a in "$@"; do
        a="${a//\{dir\}/$DIR}"
        args+=("${a//\{run\}/$run}")
    done
    {
        echo
        echo "== run $run/$RUNS start $(date -u +%H:%M:%SZ) load average $(load)"
        echo "== \$ $(quoted "${args[@]}")"
    } >>"$LOG"
    t0="$(date +%s.%N)"
    rc=0
    "${args[@]}" >>"$LOG" 2>&1 </dev/null || rc=$?
    t1="$(date +%s.%N)"
    echo "== run $run/$RUNS exit $rc wall $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s end load average $(load)" >>"$LOG"
    [ "$rc" -eq 0 ] || status=$rc
done
echo "bench-log: wrote $LOG" >&2
exit "$status"
