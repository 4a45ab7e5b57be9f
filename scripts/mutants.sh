#!/usr/bin/env bash
# Mutation testing of the numerical core with cargo-mutants (not in CI: too slow).
#
#   scripts/mutants.sh                     # every core file (see CORE below)
#   scripts/mutants.sh crates/prospect/src/optim.rs 'crates/prospect/src/energy/*.rs'
#   scripts/mutants.sh --in-diff            # only what `git diff $MUTANTS_BASE` (default main) touches
#   MUTANTS_SHARD=1/4 scripts/mutants.sh    # one quarter, to spread a full run over sessions
#   scripts/mutants.sh --iterate FILES      # skip the mutants mutants.out/ says were caught
#   MUTANTS_EXCLUDE=REGEX scripts/mutants.sh FILES  # skip the mutants whose names match
#   MUTANTS_RE=REGEX scripts/mutants.sh FILES       # run only the mutants whose names match
#
# Each mutant is built with the `mutants` profile (opt-level 1, incremental) and checked by
# the fast oracle tests only. Results land in mutants.out/ (outcomes.json, caught.txt,
# missed.txt, timeout.txt, unviable.txt); docs/mutants.md records the counts and explains
# every survivor.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "installing cargo-mutants (cargo install cargo-mutants --locked)" >&2
    cargo install cargo-mutants --locked
fi

CORE=(
    crates/prospect/src/graph.rs
    crates/prospect/src/optim.rs
    'crates/prospect/src/energy/*.rs'
    crates/prospect/src/infer.rs
    'crates/prospect/src/learn/*.rs'
    crates/prospect/src/net.rs
    'crates/prospect/src/layers/*.rs'
    crates/prospect/src/tensor/cpu.rs
    'crates/prospect/src/memory/*.rs'
)
# The oracle test binaries (tests/oracles/, graph.rs, memory.rs, threads.rs, alloc.rs): each runs in about a second
# at opt-level 1. Given as cargo arguments so that the build step compiles only these, not the
# package's dozen test binaries (each one re-instantiates the engine's generic code, which is
# most of a mutant's build time).
TESTS=(oracles graph memory threads alloc)

args=(--profile mutants --package prospect --timeout-multiplier 3
      --minimum-test-timeout 60)
files=()
for a in "$@"; do
    case "$a" in
        --iterate) args+=(--iterate) ;;
        --in-diff)
            git diff "${MUTANTS_BASE:-main}" > /tmp/prospect-mutants.diff
            args+=(--in-diff /tmp/prospect-mutants.diff) ;;
        *) files+=("$a") ;;
    esac
done
[ ${#files[@]} -eq 0 ] && files=("${CORE[@]}")
for f in "${files[@]}"; do args+=(--file "$f"); done
[ -n "${MUTANTS_SHARD:-}" ] && args+=(--shard "$MUTANTS_SHARD")
# A regex of mutants to skip, e.g. the combinatorial tuple return values of memory/:
#   MUTANTS_EXCLUDE='with Ok\(\(|with \(|-> Vec<\(String' scripts/mutants.sh 'crates/prospect/src/memory/*.rs'
[ -n "${MUTANTS_EXCLUDE:-}" ] && args+=(--exclude-re "$MUTANTS_EXCLUDE")
# A regex of the only mutants to run (names as `cargo mutants --list` prints them, with
# file:line:column), e.g. the ones an interrupted pass still owes.
[ -n "${MUTANTS_RE:-}" ] && args+=(--re "$MUTANTS_RE")
# Two builds at once use a 2-core machine better than one (front end and linking are serial).
args+=(--jobs "${MUTANTS_JOBS:-2}")
# Copy only what git tracks or does not ignore: the peers' virtual environment (.venv-bench,
# ~6 GB of torch and jax) and the data would otherwise be copied once per job.
args+=(--gitignore true)
for t in "${TESTS[@]}"; do args+=(--cargo-arg "--test=$t"); done

echo "cargo mutants ${args[*]}" >&2
cargo mutants "${args[@]}"
