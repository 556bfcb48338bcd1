#!/usr/bin/env python3
"""Markdown tables of a bench-compare run (scripts/bench-compare.sh): protocol v2 and v1 with
instant blocks, side by side per case, and v2 on chains with 1 s and 5 s blocks.

Usage: bench-tables.py RESULTS_DIR   (reads network.json, v1/network.json, blocks/network.json)
"""
import json
import os
import sys


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [c for c in json.load(f)["cases"] if not c.get("error")]


def row(version, case):
    per = case["per_epoch"]
    aggregates = per.get("aggregates")
    return "| {} | {} | {} | {} / {} | {} | {:.2f} | {:.0f} | {:.1f} | {:.0f} | {} | {:.2f} |".format(
        case["nodes"],
        case["policy"],
        version,
        case["accepted_ms"]["p50"],
        case["accepted_ms"]["p95"],
        case["all_official_ms"]["p50"],
        per["chain_txs"],
        per["messages"],
        per["bytes"] / 2**20,
        per["signature_verifications"],
        "" if aggregates is None else "{:.0f}".format(aggregates),
        per["cpu_secs"],
    )


HEADER = (
    "| n | policy | protocol | accepted p50 / p95 ms | all nodes p50 ms | txs | messages | MiB "
    "| verifications | aggregates | CPU s |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    v2 = load(os.path.join(out, "network.json"))
    v1 = load(os.path.join(out, "v1", "network.json"))
    blocks = load(os.path.join(out, "blocks", "network.json"))
    key = lambda c: (c["nodes"], c["policy"])
    v1_by_case = {key(c): c for c in v1}
    print("Instant blocks, v1 (tag protocol-v1) and v2 measured in one run:\n")
    print(HEADER)
    for case in v2:
        if key(case) in v1_by_case:
            print(row("v1", v1_by_case[key(case)]))
        print(row("v2", case))
    if blocks:
        print("\nv2 on a chain with blocks 1 s and 5 s apart (staggered slot = 2 x block time + 300 ms):\n")
        print(HEADER.replace("| protocol |", "| blocks |"))
        for case in blocks:
            print(row("{} s".format(case.get("block_ms", 0) / 1000), case))
    missed = [
        "n = {} {}{}: {} {} against {}".format(
            c["nodes"],
            c["policy"],
            "" if not c.get("block_ms") else ", blocks {} ms".format(c["block_ms"]),
            t["name"],
            round(t["measured"], 2),
            t["target"],
        )
        for c in v2 + blocks
        for t in c.get("targets", [])
        if not t["met"]
    ]
    met = sum(1 for c in v2 + blocks for t in c.get("targets", []) if t["met"])
    print("\nTargets met: {}; missed: {}".format(met, len(missed)))
    for line in missed:
        print("- " + line)


if __name__ == "__main__":
    main()
