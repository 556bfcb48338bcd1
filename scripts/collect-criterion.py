#!/usr/bin/env python3
"""Collects criterion's estimates (target/criterion/**/new/estimates.json) into one JSON file:
benchmark id -> mean and median time in nanoseconds, and throughput per second when known."""
import json
import pathlib
import sys


def main(criterion_dir: str, out: str) -> None:
    results = {}
    for estimates in sorted(pathlib.Path(criterion_dir).glob("**/new/estimates.json")):
        bench_dir = estimates.parent
        benchmark = json.loads((bench_dir / "benchmark.json").read_text())
        data = json.loads(estimates.read_text())
        entry = {
            "mean_ns": round(data["mean"]["point_estimate"], 1),
            "median_ns": round(data["median"]["point_estimate"], 1),
        }
        throughput = benchmark.get("throughput") or {}
        elements = throughput.get("Elements")
        if elements:
            entry["elements_per_sec"] = round(elements * 1e9 / data["mean"]["point_estimate"])
        results[benchmark["full_id"]] = entry
    if not results:
        sys.exit(f"no criterion estimates under {criterion_dir}")
    pathlib.Path(out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out} ({len(results)} benchmarks)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
