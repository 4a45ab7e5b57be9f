#!/usr/bin/env bash
# Build the Python package (the wheel of crates/prospect-py, portable: no -C target-cpu=native)
# into a virtual environment with pytest and Ray, and run its pytest suite (API round trips
# against the `prospect` binary, shard merges, sweeps on a local two-node Ray cluster).
#
#   bash scripts/test-python.sh            (after `cargo test --workspace`, which builds the binary)
#   bash scripts/test-python.sh --deps     (only the virtual environment and the test dependencies)
#   bash scripts/test-python.sh --build    (the environment and the wheel, no tests)
#   bash scripts/test-python.sh --test     (only the tests, with what --build installed)
#
# Environment: PY_VENV (default .venv-py), PYTHON (default python3, >= 3.9),
# PROSPECT_BIN (default target/debug/prospect, else target/release/prospect).
set -euo pipefail
MODE="${1:-all}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="${PY_VENV:-$REPO/.venv-py}"
PYTHON="${PYTHON:-python3}"
if [ "$MODE" != "--test" ]; then
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    # The package's dependencies and its `test` extra (crates/prospect-py/pyproject.toml).
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "numpy>=1.21" "pytest>=7" "ray>=2.9"
fi
if [ "$MODE" = "--deps" ]; then
    echo "test-python: environment ready in $VENV"
    exit 0
fi
# pyproject.toml replaces the repository's `-C target-cpu=native` (.cargo/config.toml) by
# `-C target-cpu=generic`: the wheel runs on any CPU (a test checks), SIMD by run-time dispatch.
# Its own target directory: other RUSTFLAGS would rebuild target/release from scratch each time.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target/wheel}"
# A test build: no debug info and more codegen units than the release profile (faster to
# compile on CI's two cores; the same code). Set them empty to build the release wheel.
export CARGO_PROFILE_RELEASE_DEBUG="${CARGO_PROFILE_RELEASE_DEBUG-0}"
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS="${CARGO_PROFILE_RELEASE_CODEGEN_UNITS-16}"
[ -n "$CARGO_PROFILE_RELEASE_DEBUG" ] || unset CARGO_PROFILE_RELEASE_DEBUG
[ -n "$CARGO_PROFILE_RELEASE_CODEGEN_UNITS" ] || unset CARGO_PROFILE_RELEASE_CODEGEN_UNITS
if [ "$MODE" != "--test" ]; then
    t0=$(date +%s)
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "./crates/prospect-py[test]"
    echo "test-python: wheel built and installed in $(($(date +%s) - t0)) s"
fi
if [ "$MODE" = "--build" ]; then
    exit 0
fi
if [ -z "${PROSPECT_BIN:-}" ]; then
    for b in target/debug/prospect target/release/prospect; do
        if [ -x "$b" ]; then
            PROSPECT_BIN="$REPO/$b"
            break
        fi
    done
fi
[ -n "${PROSPECT_BIN:-}" ] || { echo "test-python: no prospect binary; run cargo build -p prospect-cli" >&2; exit 1; }
export PROSPECT_BIN
cd "$REPO/crates/prospect-py"
"$VENV/bin/python" -m pytest -q tests
