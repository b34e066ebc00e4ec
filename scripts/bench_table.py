#!/usr/bin/python3
"""Turns the raw JSON lines of scripts/bench.sh into a Markdown table.

  /usr/bin/python3 scripts/bench_table.py RESULTS.jsonl [--impls mpx,mpi4py,ppe,mpool]

Every cell is the median over the repeated runs of one implementation.
Each "mpx vs X" column is oriented so that > 1 means mpx is better:
throughput and efficiency are mpx/X, times (latency, start-up) are X/mpx.
Lines with an "error" field are counted as failed runs.

The map/job workloads add rows to the main table (w4 end-to-end seconds,
map items/s per chunksize) and sections of their own: w4 details (rows/s,
file bytes, whether each implementation synced its files, output checked),
h5write (GiB/s of mpx's job and of dd, and their ratio), rss (the root's
peak RSS per map size) and the targets (mpx map >= 10x mpi4py at every
chunksize, h5write >= 70% of dd).
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
    ("w4", "npy", "seconds", "end-to-end s (mpx: HDF5; peers: 2 .npy)",
     "low"),
    ("w4", "h5", "seconds", "end-to-end s (mpx: HDF5; peers: h5py)", "low"),
    ("w4", "zeros", "seconds",
     "end-to-end s, nothing computed (mpx: HDF5; peers: 2 .npy)", "low"),
]

MAP_TARGET = 10.0     # mpx map items/s >= 10x mpi4py at every chunksize
H5_TARGET = 0.70      # mpx job GiB/s >= 70% of dd's


def map_rows(recs):
    """Main-table rows of the map workload, one per chunksize seen."""
    cs = sorted({int(r["variant"][1:]) for r in recs
                 if r.get("workload") == "map" and
                 str(r.get("variant", "")).startswith("c") and
                 r["variant"][1:].isdigit()})
    return [("map", "c%d" % c, "tasks_per_s", "items/s, chunksize %d" % c,
             "high") for c in cs]


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
    """(median, number of good runs, failed runs as a list of the variants
    they ran with)."""
    good, bad = [], []
    for r in recs:
        if r.get("impl") != impl or r.get("workload") != workload:
            continue
        # ppe/mpool start-up runs have no MPI variant: use them in both rows
        # (so are mpx's w4 runs: one HDF5 job against each peer variant)
        # (but not for the zeros rows, which have runs of their own)
        allowed = (variant,) if variant == "zeros" else (variant, None)
        if variant is not None and r.get("variant") not in allowed:
            continue
        if "error" in r:
            bad.append(r.get("variant"))
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
    for workload, variant, metric, label, better in ROWS + map_rows(recs):
        vals = {}
        any_data = False
        for impl in impls:
            med, n, bad = cell(recs, impl, workload, variant, metric)
            vals[impl] = med
            if n or bad:
                any_data = True
            for v in set(bad):
                failures.append("%s %s%s: %d failed run(s)" % (
                    impl, workload, "/" + v if v else "", bad.count(v)))
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


def good(recs, impl, workload, variant):
    """The records of successful runs of impl/workload/variant."""
    return [r for r in recs if r.get("impl") == impl and
            r.get("workload") == workload and r.get("variant") == variant and
            "error" not in r]


def med(rs, key):
    vals = [float(r[key]) for r in rs if isinstance(r.get(key), (int, float))]
    return statistics.median(vals) if vals else None


def mib(kib):
    return "n/a" if kib is None else "%.1f" % (kib / 1024.0)


def w4_section(recs, impls):
    order = [("mpx", None, "mpx_job_run -> HDF5"),
             ("mpi4py", "npy", "MPIPoolExecutor.map + np.save x2"),
             ("mpi4py", "h5", "MPIPoolExecutor.map + h5py"),
             ("ppe", "npy", "ProcessPoolExecutor.map + np.save x2"),
             ("mpool", "npy", "Pool.map + np.save x2"),
             ("mpx", "zeros", "zero_rows: mpx_job_run -> HDF5"),
             ("mpi4py", "zeros", "zeros: MPIPoolExecutor.map + np.save x2"),
             ("ppe", "zeros", "zeros: ProcessPoolExecutor.map + np.save x2")]
    lines = []
    for impl, variant, what in order:
        if impl not in impls:
            continue
        rs = good(recs, impl, "w4", variant)
        if not rs:
            continue
        synced = {bool(r.get("synced")) for r in rs}
        checked = all(r.get("verified") for r in rs)
        lines.append("| %s | %s | %.3f | %s | %.1f | %s | %s |" % (
            impl + (" (%s)" % variant if variant else ""), what,
            med(rs, "seconds"), "{:,.0f}".format(med(rs, "rows_per_s")),
            (med(rs, "bytes") or 0) / 2**20,
            "yes" if synced == {True} else "no" if synced == {False}
            else "mixed",
            "yes" if checked else "no"))
    if not lines:
        return []
    rows = {r.get("rows") for r in recs if r.get("workload") == "w4"} - {None}
    return ["", "### w4: %s rows in array_split parts to a file (medians)" %
            ", ".join("{:,}".format(x) for x in sorted(rows)), "",
            "| implementation | how | seconds | rows/s | file MiB | "
            "synced to disk | output checked |",
            "|---|---|---:|---:|---:|---|---|"] + lines + [
            "", "Seconds run from the first submit to the files being "
            "closed (and synced when \"synced\" says yes: mpx's job option "
            "`sync` fdatasyncs at every commit, the peers os.fsync each file); "
            "pool start-up is not included. Every output was read back and "
            "compared with the formula (`bench_peers.py verify`). The "
            "zeros rows compute nothing (mpx: task zero_rows; peers: "
            "np.zeros): the pool, the transfer and the file alone."]


def h5_section(recs):
    dd = good(recs, "dd", "h5write", None)
    ddd = good(recs, "dd", "h5write", "direct")
    job = good(recs, "mpx", "h5write", "job")
    mp = good(recs, "mpx", "h5write", "map")
    zj = good(recs, "mpx", "h5write", "zeros")
    peer = good(recs, "mpi4py", "h5write", "h5")
    if not (dd or job or zj or mp or peer):
        return [], []
    ddg = med(dd, "gib_per_s")
    dddg = med(ddd, "gib_per_s")
    lines = ["", "### h5write: a large feature dataset vs raw disk "
             "bandwidth (medians)", "",
             "| writer | seconds | GiB written | GiB/s | vs dd | "
             "vs dd oflag=direct |",
             "|---|---:|---:|---:|---:|---:|"]

    def pct(g, base):
        return "%.0f%%" % (100 * g / base) if g and base else "n/a"

    def row(name, rs):
        if not rs:
            return
        g = med(rs, "gib_per_s")
        lines.append("| %s | %.3f | %.3f | %.3f | %s | %s |" % (
            name, med(rs, "seconds"), (med(rs, "bytes") or 0) / 2**30, g,
            pct(g, ddg), pct(g, dddg)))
    row("dd bs=16M conv=fdatasync (raw disk)", dd)
    row("dd bs=16M conv=fdatasync oflag=direct (device, no page cache)", ddd)
    syn = {bool(r.get("synced")) for r in job}
    row("mpx_job_run, no compression%s" % (
        ", sync" if syn == {True} else ", no sync" if syn else ""), job)
    zsyn = {bool(r.get("synced")) for r in zj}
    row("mpx_job_run of zero_rows (nothing computed)%s" % (
        ", sync" if zsyn == {True} else ", no sync" if zsyn else ""), zj)
    row("mpx map of w4_rows only (compute + transfer, no file)", mp)
    psyn = {bool(r.get("synced")) for r in peer}
    row("mpi4py map + np.concatenate + h5py%s" % (
        ", fsync" if psyn == {True} else ", no fsync" if psyn else ""), peer)
    lines += ["", "GiB/s = bytes of the file (dd: of its data) / seconds of "
              "the run; the mpx job's seconds include computing the rows on "
              "the workers, which overlaps the writing."]
    targets = []
    for what, rs in (("w4_rows", job), ("zero_rows", zj)):
        jg = med(rs, "gib_per_s")
        if jg and ddg:
            targets.append("h5write: mpx job of %s at %.0f%% of dd's "
                           "bandwidth (target >= %.0f%%): %s%s" % (
                               what, 100 * jg / ddg, 100 * H5_TARGET,
                               "met" if jg / ddg >= H5_TARGET else "NOT met",
                               "; %s of dd oflag=direct" % pct(jg, dddg)
                               if dddg else ""))
    return lines, targets


def rss_section(recs, impls):
    lines = []
    for impl in impls:
        ns = sorted({int(r["variant"][1:]) for r in recs
                     if r.get("impl") == impl and r.get("workload") == "rss"
                     and str(r.get("variant", "")).startswith("n")
                     and r["variant"][1:].isdigit()})
        for n in ns:
            rs = good(recs, impl, "rss", "n%d" % n)
            if not rs:
                continue
            lines.append("| %s | {:,} | %d | %.2f | %s | %s | %s |".format(n) % (
                impl, int(med(rs, "chunksize") or 0), med(rs, "seconds"),
                "{:,.0f}".format(med(rs, "tasks_per_s")),
                mib(med(rs, "baseline_rss_kib")), mib(med(rs, "maxrss_kib"))))
    if not lines:
        return []
    return ["", "### rss: the root's peak memory over a map of tiny items "
            "(medians)", "",
            "| impl | items | chunksize | seconds | items/s | "
            "RSS before the map, MiB | peak RSS, MiB |",
            "|---|---:|---:|---:|---:|---:|---:|"] + lines + [
            "", "Peak RSS is getrusage(RUSAGE_SELF).ru_maxrss of the root "
            "(rank 0) process; mpx pulls the inputs from a producer as its "
            "window frees (mpx_map_create_producer), the peers map over a "
            "Python generator."]


def map_targets(recs, impls):
    if "mpx" not in impls or "mpi4py" not in impls:
        return []
    out = []
    for _, variant, metric, label, _ in map_rows(recs):
        m = med(good(recs, "mpx", "map", variant), metric)
        p = med(good(recs, "mpi4py", "map", variant), metric)
        if m and p:
            out.append("map %s: mpx %.1f× mpi4py (target >= %.0f×): %s" % (
                label.split(", ")[1], m / p, MAP_TARGET,
                "met" if m / p >= MAP_TARGET else "NOT met"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--impls", default="mpx," + ",".join(PEERS))
    a = ap.parse_args()
    recs = load(a.results)
    impls = [i for i in a.impls.split(",") if i]
    text, failures = table(recs, impls)
    if text.count("\n") > 1:          # more than the heading
        print(text)
        print()
        print("Cells are medians over the repeats; \"mpx vs X\" > 1 means "
              "mpx is better (rates and efficiency: mpx/X; times: X/mpx).")
    extra = w4_section(recs, impls)
    h5, h5t = h5_section(recs)
    extra += h5 + rss_section(recs, impls)
    targets = map_targets(recs, impls) + h5t
    if targets:
        extra += ["", "### Targets", ""] + ["- " + t for t in targets]
    h5fail = sorted({"%s h5write%s: %d failed run(s)" % (
        i, "/" + v if v else "", n)
        for i, v in {(r.get("impl"), r.get("variant")) for r in recs
                     if r.get("workload") == "h5write"}
        for n in [sum(1 for r in recs if r.get("impl") == i and
                      r.get("workload") == "h5write" and
                      r.get("variant") == v and "error" in r)] if n})
    rfail = sorted({"%s rss/%s: %d failed run(s)" % (i, v, n)
                    for i, v in {(r.get("impl"), r.get("variant"))
                                 for r in recs if r.get("workload") == "rss"}
                    for n in [sum(1 for r in recs if r.get("impl") == i and
                                  r.get("workload") == "rss" and
                                  r.get("variant") == v and "error" in r)]
                    if n})
    failures = sorted(set(failures)) + h5fail + rfail
    if failures:
        extra += ["", "### Failed runs (see the logs)", ""]
        extra += ["- FAILED: " + f for f in failures]
    if extra:
        print("\n".join(extra))


if __name__ == "__main__":
    main()
