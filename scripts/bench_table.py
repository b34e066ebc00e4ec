#!/usr/bin/python3
"""Turns the raw JSON lines of scripts/bench.sh into a Markdown table.

  /usr/bin/python3 scripts/bench_table.py RESULTS.jsonl [--impls mpx,mpi4py,ppe,mpool]

Every cell is the median over the repeated runs of one implementation.
Each "mpx vs X" column is oriented so that > 1 means mpx is better:
throughput and efficiency are mpx/X, times (latency, start-up) are X/mpx.
Lines with an "error" field are counted as failed runs.
"""
import argparse
import json
import statistics
import sys

PEERS = ["mpi4py", "ppe", "mpool"]

# (workload, variant, metric, label, better) -- better: "high", "low", None
ROWS = [
    ("tiny", None, "tasks_per_s", "tasks/s", "high"),
    ("latency", None, "p50_us", "p50 µs per call", "low"),
    ("latency", None, "p99_us", "p99 µs per call", "low"),
    ("spin", None, "efficiency", "efficiency", "high"),
    ("startup", "default", "seconds", "whole process s, no --mca", "low"),
    ("startup", "mca", "seconds", "whole process s, with --mca", "low"),
    ("idle", None, "root_cpu_share", "root CPU share (lower=better)", None),
    ("idle", None, "worker_cpu_share", "CPU share per worker (lower=better)",
     None),
]


def fmt(metric, v):
    if v is None:
        return "n/a"
    if metric == "efficiency":
        return "%.1f%%" % (100 * v)
    if metric.endswith("cpu_share"):
        return "%.1f%%" % (100 * v)
    if metric == "seconds":
        return "%.3f" % v
    if metric == "tasks_per_s":
        return "{:,.0f}".format(v)
    if v >= 100:
        return "%.0f" % v
    return "%.1f" % v


def load(path):
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                recs.append(json.loads(line))
            except ValueError:
                print("bench_table: skipping bad line: %s" % line[:80],
                      file=sys.stderr)
    return recs


def cell(recs, impl, workload, variant, metric):
    """(median, number of good runs, number of failed runs)."""
    good, bad = [], 0
    for r in recs:
        if r.get("impl") != impl or r.get("workload") != workload:
            continue
        # ppe/mpool start-up runs have no MPI variant: use them in both rows
        if variant is not None and r.get("variant") not in (variant, None):
            continue
        if "error" in r:
            bad += 1
            continue
        v = r.get(metric)
        if isinstance(v, (int, float)):
            good.append(float(v))
    return (statistics.median(good) if good else None), len(good), bad


def table(recs, impls):
    peers = [p for p in impls if p != "mpx"]
    have_mpx = "mpx" in impls
    head = ["workload", "metric"] + (["mpx"] if have_mpx else [])
    for p in peers:
        head.append(p)
        if have_mpx:
            head.append("mpx vs " + p)
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|"]
    failures = []
    for workload, variant, metric, label, better in ROWS:
        vals = {}
        any_data = False
        for impl in impls:
            med, n, bad = cell(recs, impl, workload, variant, metric)
            vals[impl] = med
            if n or bad:
                any_data = True
            if bad:
                failures.append("%s %s%s: %d failed run(s)" % (
                    impl, workload, "/" + variant if variant else "", bad))
        if not any_data:
            continue
        name = workload + (" (%s)" % variant if variant else "")
        row = [name, label]
        if have_mpx:
            row.append(fmt(metric, vals["mpx"]))
        for p in peers:
            row.append(fmt(metric, vals[p]))
            if have_mpx:
                m, v = vals["mpx"], vals[p]
                if better is None or m is None or v is None or not m or not v:
                    row.append("—")
                elif better == "high":
                    row.append("%.2f×" % (m / v))
                else:
                    row.append("%.2f×" % (v / m))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines), sorted(set(failures))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--impls", default="mpx," + ",".join(PEERS))
    a = ap.parse_args()
    recs = load(a.results)
    impls = [i for i in a.impls.split(",") if i]
    text, failures = table(recs, impls)
    print(text)
    print()
    print("Cells are medians over the repeats; \"mpx vs X\" > 1 means mpx is "
          "better (rates and efficiency: mpx/X; times: X/mpx).")
    for f in failures:
        print("- FAILED: " + f)


if __name__ == "__main__":
    main()
