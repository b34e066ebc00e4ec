#!/usr/bin/python3
"""plot.py -- the picture of a simulate.sh sweep (docs/simulation.md).

    plot.py SWEEP.jsonl... --out PNG

Reads the JSON lines scripts/simulate.sh printed (any other line is
skipped) and draws, for each workload (tiny, spin 1 ms, spin 10 ms), the
efficiency (spin; tiny: tasks/s) and rank 0's busy share against the
simulated ranks, one line per dispatcher ("dispatcher" field; lines
without one are the flat dispatcher's), on a log2 axis of ranks.
"""
import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def case(d):
    if d["workload"] == "tiny":
        return "tiny tasks"
    us = d.get("us") or 0
    return f"{us / 1000:g} ms tasks"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sweeps", nargs="+")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    runs = []
    for path in a.sweeps:
        for line in open(path):
            line = line.strip()
            if line.startswith("{"):
                runs.append(json.loads(line))
    if not runs:
        sys.exit("plot.py: no JSON lines in " + ", ".join(a.sweeps))
    cases = sorted({case(d) for d in runs}, key=lambda c: (c != "tiny tasks", c))
    disps = sorted({d.get("dispatcher", "flat") for d in runs})
    fig, axes = plt.subplots(2, len(cases), figsize=(4.2 * len(cases), 7),
                             squeeze=False)
    for j, c in enumerate(cases):
        top, bottom = axes[0][j], axes[1][j]
        for disp in disps:
            pts = sorted((d["ranks"], d) for d in runs
                         if case(d) == c and d.get("dispatcher", "flat") == disp)
            if not pts:
                continue
            xs = [r for r, _ in pts]
            if c == "tiny tasks":
                top.plot(xs, [d["tasks_per_s"] / 1e6 for _, d in pts], "o-",
                         label=disp)
            else:
                top.plot(xs, [d["efficiency"] for _, d in pts], "o-",
                         label=disp)
            bottom.plot(xs, [d["root_busy"] for _, d in pts], "o-", label=disp)
        if c == "tiny tasks":
            top.set_ylabel("million tasks/s")
            top.axhline(3, color="grey", ls=":", lw=1)  # the target
        else:
            top.set_ylabel("efficiency")
            top.set_ylim(0, 1.05)
            top.axhline(0.95, color="grey", ls=":", lw=1)
        bottom.set_ylabel("rank 0 busy")
        bottom.set_ylim(0, 1.05)
        bottom.axhline(0.5, color="grey", ls=":", lw=1)
        top.set_title(c)
        for ax in (top, bottom):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("simulated ranks")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("mpx under SimGrid SMPI: 32-core nodes, 10 Gbps, 1 us links "
                 "(dotted: targets)")
    fig.tight_layout()
    fig.savefig(a.out, dpi=90)
    print(f"plot.py: {len(runs)} runs -> {a.out}")


if __name__ == "__main__":
    main()
