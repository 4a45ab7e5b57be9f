#!/usr/bin/env python3
"""Medians of repeated `prospect bench` runs, as the markdown table BENCHMARKS.md quotes.

    python3 scripts/bench-summary.py bench/results/NAME/bench-*.json

For each (case, rule): median samples/s with the range over the runs, MFLOP/sample, median
GFLOP/s, median GEMM peak and median % of peak; then each rule's time/BP ratio (median and
range) next to its FLOP ratio. Reads only the JSON files `prospect bench --json` writes.
"""

from __future__ import annotations

import json
import statistics
import sys


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    runs = [json.load(open(p)) for p in paths]
    rows: dict[tuple[str, str], list[dict]] = {}
    ratios: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        for r in run["rows"]:
            rows.setdefault((r["case"], r["rule"]), []).append(r)
        for r in run["ratios"]:
            ratios.setdefault((r["case"], r["rule"]), []).append(r)
    med = statistics.median
    print(f"{len(runs)} runs: {', '.join(paths)}; threads {sorted({r['threads'] for r in runs})}")
    print()
    print("| case | rule | samples/s, median (range) | MFLOP/sample | GFLOP/s | GEMM peak GFLOP/s | % of peak |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (case, rule), rs in rows.items():
        sps = [r["samples_per_second"] for r in rs]
        print(
            f"| {case} | {rule} | {med(sps):,.0f} ({min(sps):,.0f}–{max(sps):,.0f}) "
            f"| {rs[0]['flops_per_sample'] / 1e6:.3f} | {med(r['gflops'] for r in rs):.1f} "
            f"| {med(r['gemm_peak_gflops'] for r in rs):.1f} "
            f"| {med(r['percent_of_peak'] for r in rs):.0f}% |"
        )
    print()
    print("| case | rule | time / BP, median (range) | FLOPs / BP |")
    print("|---|---|---:|---:|")
    for (case, rule), rs in ratios.items():
        t = [r["time_ratio"] for r in rs]
        print(f"| {case} | {rule} | {med(t):.2f} ({min(t):.2f}–{max(t):.2f}) | {rs[0]['flop_ratio']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
