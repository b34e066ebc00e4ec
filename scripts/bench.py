#!/usr/bin/python3
"""scripts/bench.py [--quick] -- benchmarks mpx against mpi4py.futures
(MPIPoolExecutor), concurrent.futures.ProcessPoolExecutor and
multiprocessing.Pool, all with 2 workers (MPI: mpirun -n 3 = 1 root +
2 workers), and prints one Markdown table.

  /usr/bin/python3 scripts/bench.py [--quick]
  /usr/bin/python3 scripts/bench.py --table RESULTS.jsonl [--impls mpx,...]
      (only the table, from the raw results of an earlier run)

Workloads: tiny (x*x tasks/s), latency (sequential submit->result p50/p99),
spin (CPU-burning tasks, efficiency = N*U/(workers*wall)) -- these three
also as "mpx-iso", mpx-bench --isolation process (every task in a
supervised task process), beside "mpx" (--isolation none), the table
showing the share of mpx's performance isolation keeps (targets: tiny >=
50%, spin efficiency >= 95%) --, idle (CPU the
pool burns doing nothing), startup (whole no-op pool program timed from
outside, with and without the --mca options for the MPI implementations),
and for maps and HDF5 jobs:
  w4       the seed's W4 job end to end: 200,000 indices in 8 array_split
           parts, each part's rows (feature float32 [m x 64], target int32)
           computed by a worker and written to a file in $BENCH_DATA. mpx:
           mpx_job_run -> one HDF5 file; mpi4py: executor.map +
           np.concatenate + np.save (variant npy, two .npy files) and the
           same + h5py (variant h5); ppe: ProcessPoolExecutor.map + np.save.
           Variant zeros (every implementation): the same arrays left
           zero, nothing computed (mpx: task zero_rows; peers: np.zeros,
           np.save) -- the pool, the transfer and the file alone, since
           numpy's vectorised sin makes the computing itself unequal.
           With BENCH_SYNC=1 (default) every implementation makes its
           files durable before the clock stops (mpx: job option sync,
           fdatasync at every commit; peers: os.fsync of each file).
           Every output is checked against the formula (bench_peers.py
           verify) and deleted after each run.
  h5write  disk bandwidth: a 1 GiB feature dataset (4,194,304 rows x 64
           float32, 64 parts of w4_rows, no compression) written by
           mpx_job_run (variant job) against raw disk bandwidth measured
           in the same run by `dd if=/dev/zero of=$BENCH_DATA/dd.bin bs=16M
           count=64 conv=fdatasync`; GiB/s of each and mpx/dd (target
           >= 70%). The same dd with oflag=direct (variant direct) shows
           what the device takes without the page cache: buffered dd
           copies everything into the cache and only then flushes, so it
           under-reads the device. For diagnosis also: mpx's job of the
           task zero_rows (variant zeros: the same arrays left zero,
           nothing computed -- the write path alone, as dd writes zeros),
           mpx's map alone (variant map: the w4_rows parts through
           mpx_map_create_range, results dropped, no file) and mpi4py's map +
           np.concatenate + h5py (variant h5).
  map      map throughput of tiny items (x*x) at every chunksize of
           BENCH_MAP_CHUNKS: mpx_map_create (ordered, every result read
           with mpx_map_next), mpi4py/ppe executor.map(f, range(N),
           chunksize=C), multiprocessing.Pool.imap(f, range(N), C);
           items/s (target: mpx >= 10x mpi4py at every chunksize).
  rss      peak RSS (ru_maxrss) of the root for an mpx map over a producer
           of N tiny items (mpx_map_create_producer), N in BENCH_RSS_ITEMS
           (10^6, 10^7, 10^8: it should stay flat), with items/s; the
           peers, for contrast, at BENCH_RSS_PEER_ITEMS (10^6) over a
           generator (mpi4py and ProcessPoolExecutor submit it all).
  faults   a crash storm, the fault table: BENCH_FAULT_TASKS tiny tasks
           (task i returns i*i), each submitted on its own (submit /
           apply_async, a future each), whose fate is fixed by a hash of i,
           the same for every implementation (h = ((i * 2654435761) mod
           2^32) / 2^32; bench_peers.fault_fate): at crash rate P
           (BENCH_FAULT_RATE, 0.03) h < P/3 segfaults, < 2P/3 calls
           os.abort(), < 5P/6 calls os._exit(0), < P "hangs" (sleeps 0.2 s:
           over mpx's --task-timeout 0.05; the peers have no task time
           limit, so for them it just runs long). mpx: mpx-bench faults
           --isolation process --task-timeout 0.05 --deadline DEADLINE,
           which also measures what a crash costs on the same pool
           afterwards (crash_cost_ms, target <= 5 ms: one task in flight at
           a time, 100 (segfault, tiny) pairs interleaved with 100 (tiny,
           tiny) pairs, median crash pair - median tiny pair; and against
           100 tiny pairs run before any crash, crash_cost_vs_clean_ms,
           which also counts the slower calls a crash leaves behind; see
           apps/mpx-bench.c); every implementation: every outcome
           collected against an overall deadline (BENCH_FAULT_DEADLINE),
           then one fresh task probes the same pool for 10 s. Reports
           completed (right result), crashed (an error came back, e.g.
           BrokenProcessPool), timed out (a task time limit struck: mpx
           only), lost (no outcome at the deadline), wrong, seconds, pool
           alive afterwards and a note. Every run is bounded (timeout -k 5
           DEADLINE+45, and the driver kills the run's process group 15 s
           later still): multiprocessing.Pool waits forever for a task
           whose worker died. When the process dies with its workers
           (mpi4py: mpirun aborts the job when a rank dies), the record is
           made from the exit status, the time and the progress file the
           peer appends each outcome to (completed/crashed/wrong are what
           the root had received; lost = the rest); such runs are
           results, not failed runs. A run with neither a JSON line nor a
           started progress file (mpx-bench without the workload: a usage
           error) is a failed run.
Within one run the implementations alternate (mpx, mpi4py, ppe, mpool for
each workload -- for map, for each chunksize -- repeated R times) so that
a drifting CPU clock hurts all of them alike; the table shows medians.

Output: the exact commands first, progress, then a Markdown table, which is
also written to $OUT/table.md; every raw JSON line goes to
$OUT/results.jsonl and each run's stdout/stderr to $OUT/logs/.

Nothing is installed: a missing program or Python module stops the run
with the Debian package that provides it (scripts/setup.sh installs them
all). A missing mpx-bench is built with cmake (Release) unless
BENCH_NO_BUILD=1.

Environment (all optional):
  BUILD_DIR           build tree with apps/mpx-bench (default ./build); its MPI
                      launches mpx-bench (CMakeCache.txt: an MPICH build runs
                      under mpiexec.mpich with no Open MPI flag), while
                      mpi4py (Debian's, Open MPI) runs under mpirun
  BENCH_NO_BUILD      1: do not build a missing mpx-bench, fail instead
  BENCH_OUT           output directory (default ./build/bench)
  BENCH_DATA          where w4/h5write/dd write their files (default
                      $BENCH_OUT/data; removed after each run)
  BENCH_MCA           --mca options for mpx and mpi4py
                      (default "--mca pml ob1 --mca btl self,vader";
                      BENCH_MCA= runs with none)
  BENCH_REPEATS       R (default 3, --quick 1)
  BENCH_STARTUP_RUNS  start-up runs per implementation (default 5, quick 3)
  BENCH_TINY          peers' tiny tasks (default 20000, quick 5000)
  BENCH_TINY_MPX      mpx's tiny tasks (default 200000)
  BENCH_LATENCY       latency calls (default 2000)
  BENCH_SPIN BENCH_SPIN_US  spin tasks (default 2000, quick 500) of
                      BENCH_SPIN_US microseconds (default 1000)
  BENCH_IDLE_S        idle seconds (default 2, quick 1)
  BENCH_SYNC          1 (default): w4/h5write outputs are synced to disk
                      inside the timing (mpx --sync 1, peers --sync);
                      0: nobody syncs (mpx --sync 0)
  BENCH_W4_ROWS BENCH_W4_PARTS   w4 size (default 200000 rows, 8 parts)
  BENCH_H5_ROWS BENCH_H5_PARTS   h5write size (default 4194304 rows = 1 GiB
                      of feature, 64 parts; --quick 1048576 rows = 256 MiB,
                      16 parts); dd writes the feature's size
  BENCH_MAP_CHUNKS    chunksizes of map (default "1 16 256")
  BENCH_MAP_ITEMS     items per run for mpi4py and ppe, one per chunksize
                      (default "10000 150000 2000000", quick
                      "5000 60000 800000")
  BENCH_MAP_ITEMS_MPOOL  the same for mpool (default "30000 500000
                      5000000", quick "10000 150000 1500000")
  BENCH_MAP_ITEMS_MPX    the same for mpx (default "2000000 20000000
                      30000000", quick "1000000 8000000 15000000")
  BENCH_RSS_ITEMS     mpx rss map sizes (default "1000000 10000000
                      100000000", also with --quick)
  BENCH_RSS_PEER_ITEMS  peers' rss sizes (default "1000000"; "" skips them)
  BENCH_RSS_CHUNK     chunksize of the rss maps (default 256)
  BENCH_FAULT_TASKS   tasks of the faults storm (default 10000, quick 2000)
  BENCH_FAULT_RATE    its crash rate P (default 0.03: 1% segfault, 1%
                      abort, 0.5% exit, 0.5% hang)
  BENCH_FAULT_DEADLINE  the peers' overall deadline in seconds (default
                      120, quick 30); each faults run is killed after
                      DEADLINE+45 s
  BENCH_IMPLS         subset of "mpx mpx-iso mpi4py ppe mpool" (mpx-iso:
                      mpx-bench --isolation process, tiny/latency/spin only)
  BENCH_WORKLOADS     subset of "tiny latency spin idle startup w4 h5write
                      map rss faults" (default: all of them)
  BENCH_TIMEOUT       seconds before a run is killed (default 300)
  BENCH_SPIN_CLOCK    thread (default, CPU time) or perf (wall clock) for the
                      Python spin tasks
  MPX_*               passed to every MPI rank with mpirun -x
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"      # Debian's, with python3-mpi4py/numpy/h5py
PEERS = "scripts/bench_peers.py"
ALL_IMPLS = ["mpx", "mpx-iso", "mpi4py", "ppe", "mpool"]
MPX_IMPLS = ("mpx", "mpx-iso")     # both run apps/mpx-bench
# mpx-iso: mpx-bench --isolation process (supervised task processes), run
# beside mpx (--isolation none) for these workloads only
ISO_WORKLOADS = ("tiny", "latency", "spin")
ALL_WORKLOADS = ["tiny", "latency", "spin", "idle", "startup", "w4",
                 "h5write", "map", "rss", "faults"]
FAULT_PROBE_S = 10      # the peers' pool-alive probe (bench_peers.py)
FAULT_TASK_TIMEOUT = "0.05"   # mpx-bench faults --task-timeout


def peers_module():
    """scripts/bench_peers.py as a module (for the storm's fate hash)."""
    spec = importlib.util.spec_from_file_location(
        "bench_peers", os.path.join(ROOT, PEERS))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def die(msg, status=1):
    print("bench.py: " + msg, file=sys.stderr)
    sys.exit(status)


# ==========================================================================
# The table (from the JSON lines of results.jsonl)
# ==========================================================================

PEER_IMPLS = ["mpi4py", "ppe", "mpool"]
ISO_TINY_TARGET = 0.50   # mpx-iso tiny tasks/s >= 50% of mpx's
ISO_SPIN_TARGET = 0.95   # mpx-iso 1 ms spin efficiency >= 95%
CRASH_COST_TARGET = 5.0  # ms a crash costs (mpx-bench faults crash_cost_ms)

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


def variant_numbers(recs, workload, prefix, impl=None):
    """The sorted numbers N of the variants "<prefix>N" of a workload."""
    return sorted({int(r["variant"][1:]) for r in recs
                   if r.get("workload") == workload and
                   (impl is None or r.get("impl") == impl) and
                   str(r.get("variant", "")).startswith(prefix) and
                   r["variant"][1:].isdigit()})


def map_rows(recs):
    """Main-table rows of the map workload, one per chunksize seen."""
    return [("map", "c%d" % c, "tasks_per_s", "items/s, chunksize %d" % c,
             "high") for c in variant_numbers(recs, "map", "c")]


def fmt(metric, v):
    if v is None:
        return "n/a"
    if metric == "efficiency" or metric.endswith("cpu_share"):
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
                print("bench.py: skipping bad line: %s" % line[:80],
                      file=sys.stderr)
    return recs


def cell(recs, impl, workload, variant, metric):
    """(median, number of good runs, failed runs as a list of the variants
    they ran with)."""
    good_v, bad = [], []
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
            good_v.append(float(v))
    return (statistics.median(good_v) if good_v else None), len(good_v), bad


def main_table(recs, impls):
    peers = [p for p in impls if p not in MPX_IMPLS]
    have_mpx = "mpx" in impls
    have_iso = "mpx-iso" in impls
    head = ["workload", "metric"] + (["mpx"] if have_mpx else [])
    if have_iso:
        head.append("mpx-iso")
        if have_mpx:
            head.append("mpx-iso vs mpx")
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
            m, n, bad = cell(recs, impl, workload, variant, metric)
            vals[impl] = m
            if n or bad:
                any_data = True
            for v in set(bad):
                failures.append("%s %s%s: %d failed run(s)" % (
                    impl, workload, "/" + v if v else "", bad.count(v)))
        if not any_data:
            continue
        row = [workload + (" (%s)" % variant if variant else ""), label]
        if have_mpx:
            row.append(fmt(metric, vals["mpx"]))
        if have_iso:
            row.append(fmt(metric, vals["mpx-iso"]) if workload in
                       ISO_WORKLOADS else "—")
            if have_mpx:
                m, v = vals["mpx"], vals["mpx-iso"]
                if better is None or not m or not v or \
                        workload not in ISO_WORKLOADS:
                    row.append("—")
                else:       # the share of mpx's performance kept
                    row.append("%.0f%%" % (100 * (v / m if better == "high"
                                                  else m / v)))
        for p in peers:
            row.append(fmt(metric, vals[p]))
            if have_mpx:
                m, v = vals["mpx"], vals[p]
                if better is None or not m or not v:
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


def synced_word(rs, yes, no):
    """yes when every run of rs synced its files, no when none did, else
    ""."""
    s = {bool(r.get("synced")) for r in rs}
    return yes if s == {True} else no if s == {False} else ""


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
        checked = all(r.get("verified") for r in rs)
        lines.append("| %s | %s | %.3f | %s | %.1f | %s | %s |" % (
            impl + (" (%s)" % variant if variant else ""), what,
            med(rs, "seconds"), "{:,.0f}".format(med(rs, "rows_per_s")),
            (med(rs, "bytes") or 0) / 2**20,
            synced_word(rs, "yes", "no") or "mixed",
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
    row("mpx_job_run, no compression%s" % synced_word(
        job, ", sync", ", no sync"), job)
    row("mpx_job_run of zero_rows (nothing computed)%s" % synced_word(
        zj, ", sync", ", no sync"), zj)
    row("mpx map of w4_rows only (compute + transfer, no file)", mp)
    row("mpi4py map + np.concatenate + h5py%s" % synced_word(
        peer, ", fsync", ", no fsync"), peer)
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
        for n in variant_numbers(recs, "rss", "n", impl):
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


FAULT_NAMES = {"mpx": "mpx (process isolation, 50 ms task timeout)",
               "mpi4py": "mpi4py.futures MPIPoolExecutor",
               "ppe": "ProcessPoolExecutor",
               "mpool": "multiprocessing.Pool"}


def fault_runs(recs, impl):
    """(good runs, failed runs) of impl's faults workload."""
    rs = [r for r in recs if r.get("impl") == impl and
          r.get("workload") == "faults"]
    return [r for r in rs if "error" not in r], [r for r in rs if "error" in r]


def count_cell(rs, key):
    """The median of a count over the runs: "unknown" when no run knows
    it, whole numbers with thousands separators."""
    m = med(rs, key)
    if m is None:
        return "unknown"
    return "{:,.0f}".format(m) if m == int(m) else "{:,.1f}".format(m)


def fault_section(recs, impls):
    lines = []
    storms = set()
    for impl in impls:
        rs, bad = fault_runs(recs, impl)
        name = FAULT_NAMES.get(impl, impl)
        if not rs:
            if bad:
                why = (bad[0]["error"] + bad[0].get("error_detail", ""))
                lines.append("| %s | — | — | — | — | — | — | — | — | "
                             "every run failed (%d): %s |" % (
                                 name, len(bad), why.replace("|", "/")))
            continue
        for r in rs:
            storms.add((r.get("tasks"), r.get("crash_rate")))
        alive = [bool(r.get("pool_alive")) for r in rs]
        alive_s = "yes" if all(alive) else "no" if not any(alive) else \
            "%d of %d runs" % (sum(alive), len(alive))
        note = str(rs[0].get("note") or "").replace("|", "/")
        if bad:
            note += " (and %d failed run(s))" % len(bad)
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, count_cell(rs, "tasks"), count_cell(rs, "completed"),
            count_cell(rs, "crashed"), count_cell(rs, "timed_out"),
            count_cell(rs, "lost"), count_cell(rs, "wrong"),
            fmt("seconds", med(rs, "seconds")), alive_s, note))
    if not lines:
        return []
    out = ["", "### Fault table: a crash storm (medians; the note is the "
           "first run's)", "",
           "| implementation | tasks | completed | crashed | timed out | "
           "lost | wrong | seconds | pool alive afterwards | note |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"] + lines + [""]
    try:
        bp = peers_module()
    except Exception:
        bp = None
    for n, rate in sorted(storms, key=str):
        if bp is None or not isinstance(n, int) or \
                not isinstance(rate, (int, float)):
            continue
        c = bp.fault_counts(n, rate)
        out.append("Storm of {:,} tasks at crash rate {:g}: {:,} segfault "
                   "(SIGSEGV), {:,} call os.abort(), {:,} call os._exit(0), "
                   "{:,} sleep {:g} s (a hang for a {} s task timeout), "
                   "{:,} just return i*i; task i's fate is fixed by "
                   "((i * 2654435761) mod 2^32) / 2^32, so every "
                   "implementation gets the same storm{}.".format(
                       n, rate, c["segv"], c["abort"], c["exit"], c["hang"],
                       bp.FAULT_HANG_S, FAULT_TASK_TIMEOUT, c["ok"],
                       " (task 0 segfaults: h(0) = 0)"
                       if n and bp.fault_fate(0, rate) == "segv" else ""))
        out.append("")
    out.append(
        "completed: the right result came back; crashed: an error came back "
        "instead (an exception such as BrokenProcessPool, or mpx's failed "
        "future); timed out: a task time limit struck (only mpx has one); "
        "lost: no outcome at all by the deadline, or when the whole process "
        "died (then completed/crashed are what the root had received, read "
        "from the progress file it appends to); seconds: first submit to the "
        "last outcome or the deadline (a run that died: to its death); pool "
        "alive afterwards: one fresh task on the same pool returned the "
        "right result within %d s. The peers have no per-task time limit, "
        "so their hangs just finish late; multiprocessing.Pool never "
        "reports a task whose worker died, so it waits out the deadline." %
        FAULT_PROBE_S)
    return out


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


def spread(rs, key, f="%.0f"):
    """"min-max over n runs" of a measurement, or "" with fewer than 2."""
    v = [float(r[key]) for r in rs if isinstance(r.get(key), (int, float))]
    if len(v) < 2:
        return ""
    return " (runs: %s-%s, n=%d)" % (f % min(v), f % max(v), len(v))


def iso_targets(recs, impls):
    """The isolation targets: mpx-iso tiny >= 50% of mpx, spin efficiency
    >= 95%, and a crash costing <= 5 ms (mpx-bench faults)."""
    out = []
    if "mpx" in impls and "mpx-iso" in impls:
        m = good(recs, "mpx", "tiny", None) + good(recs, "mpx", "tiny", "")
        i = good(recs, "mpx-iso", "tiny", None) + \
            good(recs, "mpx-iso", "tiny", "")
        mm, mi = med(m, "tasks_per_s"), med(i, "tasks_per_s")
        if mm and mi:
            out.append("tiny with isolation: {:,.0f} tasks/s{} = {:.0f}% of "
                       "{:,.0f}{} without (target >= {:.0f}%): {}".format(
                           mi, spread(i, "tasks_per_s"), 100 * mi / mm, mm,
                           spread(m, "tasks_per_s"), 100 * ISO_TINY_TARGET,
                           "met" if mi / mm >= ISO_TINY_TARGET else
                           "NOT met"))
    if "mpx-iso" in impls:
        i = good(recs, "mpx-iso", "spin", None) + \
            good(recs, "mpx-iso", "spin", "")
        e = med(i, "efficiency")
        if e is not None:
            us = {r.get("us") for r in i} - {None}
            out.append("spin with isolation: efficiency %.1f%%%s (target >= "
                       "%.0f%%): %s" % (
                           100 * e, spread([dict(efficiency=100 * r[
                               "efficiency"]) for r in i
                               if isinstance(r.get("efficiency"), float)],
                               "efficiency", "%.1f%%"),
                           100 * ISO_SPIN_TARGET,
                           "met" if e >= ISO_SPIN_TARGET else "NOT met"))
    if "mpx" in impls:
        rs, _ = fault_runs(recs, "mpx")
        c = med(rs, "crash_cost_ms")
        if c is not None:
            k = med(rs, "crash_cost_vs_clean_ms")
            out.append(
                "a crash costs %.2f ms%s (median crash+tiny pair %.2f ms - "
                "median interleaved tiny+tiny pair %.2f ms; target <= %g ms): "
                "%s; against tiny pairs run before any crash (%.3f ms) it is "
                "%.2f ms%s: %s" % (
                    c, spread(rs, "crash_cost_ms", "%.2f"),
                    med(rs, "crash_pair_ms"), med(rs, "tiny_pair_ms"),
                    CRASH_COST_TARGET,
                    "met" if c <= CRASH_COST_TARGET else "NOT met",
                    med(rs, "clean_tiny_pair_ms") or 0, k or 0,
                    spread(rs, "crash_cost_vs_clean_ms", "%.2f"),
                    "met" if k is not None and k <= CRASH_COST_TARGET
                    else "NOT met"))
    return out


def failed_runs(recs, workload, fmt_one):
    """One line per impl/variant of a workload with failed runs."""
    keys = {(r.get("impl"), r.get("variant")) for r in recs
            if r.get("workload") == workload}
    out = set()
    for i, v in keys:
        n = sum(1 for r in recs if r.get("impl") == i and
                r.get("workload") == workload and r.get("variant") == v and
                "error" in r)
        if n:
            out.add(fmt_one(i, v, n))
    return sorted(out)


def make_table(recs, impls):
    """The Markdown table and sections of the results in recs."""
    out = []
    text, failures = main_table(recs, impls)
    if text.count("\n") > 1:          # more than the heading
        out += [text, "", "Cells are medians over the repeats; \"mpx vs X\" "
                "> 1 means mpx is better (rates and efficiency: mpx/X; "
                "times: X/mpx). mpx-iso is mpx with --isolation process "
                "(tasks in supervised task processes; tiny, latency and spin "
                "only), mpx runs --isolation none there; \"mpx-iso vs mpx\" "
                "is the share of mpx's performance isolation keeps (rates "
                "and efficiency: iso/mpx; times: mpx/iso)."]
    extra = w4_section(recs, impls)
    h5, h5t = h5_section(recs)
    extra += h5 + rss_section(recs, impls) + fault_section(recs, impls)
    targets = iso_targets(recs, impls) + map_targets(recs, impls) + h5t
    if targets:
        extra += ["", "### Targets", ""] + ["- " + t for t in targets]
    failures = sorted(set(failures)) + failed_runs(
        recs, "h5write", lambda i, v, n: "%s h5write%s: %d failed run(s)" % (
            i, "/" + v if v else "", n)) + failed_runs(
        recs, "rss", lambda i, v, n: "%s rss/%s: %d failed run(s)" % (
            i, v, n)) + failed_runs(
        recs, "faults", lambda i, v, n: "%s faults: %d failed run(s)" % (
            i, n))
    if failures:
        extra += ["", "### Failed runs (see the logs)", ""]
        extra += ["- FAILED: " + f for f in failures]
    return "\n".join(out + extra)


# ==========================================================================
# The run
# ==========================================================================

def env(name, default, empty_is_unset=True):
    """$name, or default when unset (or empty, unless empty_is_unset=0)."""
    v = os.environ.get(name)
    if v is None or (empty_is_unset and v == ""):
        return default
    return v


class Config:
    """What a run does, from the command line and the BENCH_* variables."""

    def __init__(self, quick):
        self.quick = quick
        q = quick
        self.build = env("BUILD_DIR", os.path.join(ROOT, "build"))
        self.out = env("BENCH_OUT", os.path.join(ROOT, "build", "bench"))
        self.mpxbench = os.path.join(self.build, "apps", "mpx-bench")
        self.repeats = env("BENCH_REPEATS", "1" if q else "3")
        self.startup_runs = env("BENCH_STARTUP_RUNS", "3" if q else "5")
        self.tiny = env("BENCH_TINY", "5000" if q else "20000")
        self.spin = env("BENCH_SPIN", "500" if q else "2000")
        self.idle_s = env("BENCH_IDLE_S", "1" if q else "2")
        self.h5_rows = env("BENCH_H5_ROWS", "1048576" if q else "4194304")
        self.h5_parts = env("BENCH_H5_PARTS", "16" if q else "64")
        self.map_items = env("BENCH_MAP_ITEMS", "5000 60000 800000" if q
                             else "10000 150000 2000000").split()
        self.map_items_mpool = env(
            "BENCH_MAP_ITEMS_MPOOL", "10000 150000 1500000" if q
            else "30000 500000 5000000").split()
        self.map_items_mpx = env(
            "BENCH_MAP_ITEMS_MPX", "1000000 8000000 15000000" if q
            else "2000000 20000000 30000000").split()
        self.tiny_mpx = env("BENCH_TINY_MPX", "200000")
        self.lat = env("BENCH_LATENCY", "2000")
        self.spin_us = env("BENCH_SPIN_US", "1000")
        self.sync = env("BENCH_SYNC", "1")
        self.w4_rows = env("BENCH_W4_ROWS", "200000")
        self.w4_parts = env("BENCH_W4_PARTS", "8")
        self.map_chunks = env("BENCH_MAP_CHUNKS", "1 16 256").split()
        self.rss_items = env("BENCH_RSS_ITEMS",
                             "1000000 10000000 100000000").split()
        self.rss_peer_items = env("BENCH_RSS_PEER_ITEMS", "1000000",
                                  empty_is_unset=False).split()
        self.rss_chunk = env("BENCH_RSS_CHUNK", "256")
        self.fault_tasks = env("BENCH_FAULT_TASKS", "2000" if q else "10000")
        self.fault_rate = env("BENCH_FAULT_RATE", "0.03")
        self.fault_deadline = env("BENCH_FAULT_DEADLINE", "30" if q else "120")
        self.impls = env("BENCH_IMPLS", " ".join(ALL_IMPLS)).split()
        self.workloads = env("BENCH_WORKLOADS",
                             " ".join(ALL_WORKLOADS)).split()
        self.data = env("BENCH_DATA", os.path.join(self.out, "data"))
        self.mca_str = env("BENCH_MCA", "--mca pml ob1 --mca btl self,vader",
                           empty_is_unset=False)
        self.mca = self.mca_str.split()
        self.timeout = ["timeout", env("BENCH_TIMEOUT", "300")]
        # mpi4py is Debian's, built with Open MPI: its runs take Open MPI's
        # mpirun. mpx-bench's launcher and flags come from its build
        # (CMake's MPIEXEC_EXECUTABLE, MPIEXEC_NUMPROC_FLAG and
        # MPX_MPIEXEC_FLAGS): mpiexec.mpich for an MPICH build, which gets
        # no Open MPI flag (--mca, -x; Hydra passes the environment).
        self.mpibase = ["mpirun", "-n", "3", "--oversubscribe",
                        "--allow-run-as-root", "--bind-to", "none"]
        self.xenv = []
        for v in sorted(os.environ):
            if re.fullmatch(r"MPX_[A-Za-z0-9_]*|BENCH_SPIN_CLOCK", v):
                self.xenv += ["-x", v]
        cache = cmake_cache(self.build)
        launcher = cache.get("MPIEXEC_EXECUTABLE", "")
        self.mpx_openmpi = cache.get("MPX_MPI_VENDOR_CACHED",
                                     "openmpi") == "openmpi" or not launcher
        if self.mpx_openmpi:
            self.mpxbase = self.mpibase
        else:
            self.mpxbase = [launcher, cache.get("MPIEXEC_NUMPROC_FLAG", "-n"),
                            "3"] + [f for f in cache.get(
                                "MPX_MPIEXEC_FLAGS", "").split(";") if f]
        self.check()
        # A faults run: the peers' deadline, their 10 s probe, start-up and
        # shutdown; the driver's own process-group kill comes 15 s later.
        self.fault_limit = int(float(self.fault_deadline)) + 45
        self.fault_timeout = ["timeout", "-k", "5", str(self.fault_limit)]
        # dd writes as many bytes as the feature dataset holds, in 16 MiB
        # blocks.
        self.dd_count = (int(self.h5_rows) * 256 + 16777215) // 16777216
        self.results = os.path.join(self.out, "results.jsonl")
        self.table = os.path.join(self.out, "table.md")
        self.logs = os.path.join(self.out, "logs")

    def check(self):
        for wl in self.workloads:
            if wl not in ALL_WORKLOADS:
                die("unknown workload '%s' in BENCH_WORKLOADS" % wl, 2)
        for i in self.impls:
            if i not in ALL_IMPLS:
                die("unknown implementation '%s' in BENCH_IMPLS" % i, 2)
        if self.sync not in ("0", "1"):
            die("BENCH_SYNC must be 0 or 1", 2)
        for name in ("MAP_ITEMS", "MAP_ITEMS_MPOOL", "MAP_ITEMS_MPX"):
            if len(getattr(self, name.lower())) != len(self.map_chunks):
                die("BENCH_%s needs one size per chunksize in "
                    "BENCH_MAP_CHUNKS (%s)" % (name, " ".join(
                        self.map_chunks)), 2)
        ints = [("BENCH_REPEATS", self.repeats),
                ("BENCH_STARTUP_RUNS", self.startup_runs),
                ("BENCH_H5_ROWS", self.h5_rows)]
        ints.append(("BENCH_FAULT_TASKS", self.fault_tasks))
        for name, v in ints:
            if not v.isdigit():
                die("%s must be a whole number, not '%s'" % (name, v), 2)
        for name, v, lo, hi in (
                ("BENCH_FAULT_RATE", self.fault_rate, 0.0, 1.0),
                ("BENCH_FAULT_DEADLINE", self.fault_deadline, 1.0, 3600.0)):
            try:
                ok = lo <= float(v) <= hi
            except ValueError:
                ok = False
            if not ok:
                die("%s must be a number from %g to %g, not '%s'" % (
                    name, lo, hi, v), 2)
        if not self.impls:
            die("nothing to run (BENCH_IMPLS is empty)")


# -------------------------------------------------------------- dependencies

def require(cfg):
    """Stops with the Debian package to install when something the chosen
    implementations and workloads need is missing; builds a missing
    mpx-bench unless BENCH_NO_BUILD=1."""
    missing = []
    mpi = any(i in cfg.impls for i in ("mpx", "mpx-iso", "mpi4py"))
    files = any(w in cfg.workloads for w in ("w4", "h5write"))
    if not os.access(PY, os.X_OK):
        missing.append(("python3", PY))
    if mpi and not shutil.which("mpirun"):
        missing.append(("openmpi-bin", "mpirun"))
    modules = []
    if "mpi4py" in cfg.impls:
        modules.append(("mpi4py", "python3-mpi4py"))
    if files:
        modules += [("numpy", "python3-numpy"), ("h5py", "python3-h5py")]
    for mod, pkg in modules:
        if not missing and subprocess.run(
                [PY, "-c", "import " + mod], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL).returncode != 0:
            missing.append((pkg, "the Python module %s for %s" % (mod, PY)))
    if missing:
        for pkg, what in missing:
            print("bench.py: %s is missing: install the Debian package %s "
                  "(bash scripts/setup.sh installs every package mpx needs)"
                  % (what, pkg), file=sys.stderr)
        sys.exit(1)
    if not any(i in cfg.impls for i in MPX_IMPLS) or \
            os.access(cfg.mpxbench, os.X_OK):
        return
    if env("BENCH_NO_BUILD", "0") == "1":
        die("%s not found and BENCH_NO_BUILD=1 (build it with "
            "scripts/build.sh, or leave mpx out of BENCH_IMPLS)" % cfg.mpxbench)
    if not shutil.which("cmake"):
        die("%s not found, and building it needs cmake: install the Debian "
            "package cmake (bash scripts/setup.sh installs every package mpx "
            "needs)" % cfg.mpxbench)
    log = os.path.join(cfg.out, "build.log")
    print("bench.py: %s not found; building:\n  cmake -S . -B %s "
          "-DCMAKE_BUILD_TYPE=Release && cmake --build %s -j2" % (
              cfg.mpxbench, cfg.build, cfg.build), file=sys.stderr)
    with open(log, "w") as f:
        ok = subprocess.run(["cmake", "-S", ".", "-B", cfg.build,
                             "-DCMAKE_BUILD_TYPE=Release"], stdout=f,
                            stderr=f).returncode == 0 and subprocess.run(
            ["cmake", "--build", cfg.build, "-j2"], stdout=f,
            stderr=f).returncode == 0
    if not ok or not os.access(cfg.mpxbench, os.X_OK):
        die("building mpx-bench failed, see %s" % log)


# ------------------------------------------------------------------ commands

def is_mpi(impl):
    return impl in ("mpx", "mpx-iso", "mpi4py")


def map_items(cfg, impl, chunk):
    """The number of items of impl's map run at that chunksize."""
    i = cfg.map_chunks.index(chunk)
    if impl == "mpx":
        return cfg.map_items_mpx[i]
    if impl == "mpool":
        return cfg.map_items_mpool[i]
    return cfg.map_items[i]


def plan(cfg, wl):
    """The (impl, variant) runs of a workload, in run order ("" = no
    variant)."""
    impls = [i for i in cfg.impls if i != "mpx-iso" or wl in ISO_WORKLOADS]
    if wl == "w4":
        per = {"mpx": ["", "zeros"], "mpi4py": ["npy", "h5", "zeros"],
               "ppe": ["npy", "zeros"]}     # mpool: not in this comparison
        return [(i, v) for i in impls for v in per.get(i, [])]
    if wl == "h5write":
        out = [("dd", ""), ("dd", "direct")]
        if "mpx" in impls:
            out += [("mpx", "job"), ("mpx", "zeros"), ("mpx", "map")]
        if "mpi4py" in impls:
            out.append(("mpi4py", "h5"))
        return out
    if wl == "map":
        return [(i, "c" + c) for c in cfg.map_chunks for i in impls]
    if wl == "rss":
        out = []
        if "mpx" in impls:
            out += [("mpx", "n" + n) for n in cfg.rss_items]
        out += [(i, "n" + n) for n in cfg.rss_peer_items for i in impls
                if i not in MPX_IMPLS]
        return out
    return [(i, "") for i in impls]


def build_cmd(cfg, impl, wl, variant=""):
    """The command of one run (startup: wl "noop", variant "default" = no
    --mca; w4: npy|h5|zeros for the peers; h5write: job|zeros|map for mpx,
    h5 for mpi4py; map: cC; rss: nN)."""
    args = []
    if wl == "tiny":
        args = ["--tasks", cfg.tiny_mpx if impl in MPX_IMPLS else cfg.tiny]
    elif wl == "latency":
        args = ["--tasks", cfg.lat]
    elif wl == "spin":
        args = ["--tasks", cfg.spin, "--us", cfg.spin_us]
    elif wl == "idle":
        args = ["--seconds", cfg.idle_s]
    elif wl in ("w4", "h5write"):
        if wl == "w4":
            args = ["--rows", cfg.w4_rows, "--parts", cfg.w4_parts]
        else:
            args = ["--rows", cfg.h5_rows, "--parts", cfg.h5_parts]
        if impl == "mpx":
            args += {"job": ["--mode", "job"],
                     "zeros": ["--mode", "job", "--task", "zero_rows"],
                     "map": ["--mode", "map"]}.get(variant, [])
            if variant != "map":
                args += ["--out", cfg.data, "--sync", cfg.sync, "--keep"]
        else:
            if variant == "zeros":
                args += ["--format", "npy", "--zeros"]
            else:
                args += ["--format", variant]
            args += ["--out", cfg.data, "--keep"]
            if cfg.sync == "1":
                args.append("--sync")
    elif wl == "map":
        c = variant[1:]
        args = ["--tasks", map_items(cfg, impl, c), "--chunksize", c]
    elif wl == "rss":
        args = ["--tasks", variant[1:], "--chunksize", cfg.rss_chunk]
    elif wl == "faults":
        args = ["--tasks", cfg.fault_tasks, "--crash-rate", cfg.fault_rate]
        if impl == "mpx":
            args += ["--isolation", "process",
                     "--task-timeout", FAULT_TASK_TIMEOUT,
                     "--deadline", cfg.fault_deadline]
        else:
            args += ["--deadline", cfg.fault_deadline,
                     "--progress", progress_of(cfg, impl)]
    if impl in MPX_IMPLS and wl in ISO_WORKLOADS:
        args += ["--isolation", "process" if impl == "mpx-iso" else "none"]
    tmo = cfg.fault_timeout if wl == "faults" else cfg.timeout
    mpi = tmo + cfg.mpibase + \
        ([] if variant == "default" else cfg.mca) + cfg.xenv
    if impl in MPX_IMPLS and not cfg.mpx_openmpi:
        mpi = tmo + cfg.mpxbase
    if impl == "dd":
        cmd = cfg.timeout + ["dd", "if=/dev/zero",
                             "of=" + os.path.join(cfg.data, "dd.bin"),
                             "bs=16M", "count=%d" % cfg.dd_count,
                             "conv=fdatasync"]
        return cmd + (["oflag=direct"] if variant == "direct" else [])
    if impl in MPX_IMPLS:
        return mpi + [cfg.mpxbench, wl] + args
    if impl == "mpi4py":
        return mpi + [PY, "-m", "mpi4py.futures", PEERS, "mpi4py", wl] + args
    return tmo + [PY, PEERS, impl, wl] + args


def cmake_cache(build):
    """The entries of build/CMakeCache.txt (name -> value), or {}."""
    out = {}
    try:
        for line in open(os.path.join(build, "CMakeCache.txt")):
            m = re.match(r"([A-Za-z_0-9]+):[A-Z]+=(.*)$", line.rstrip("\n"))
            if m:
                out[m.group(1)] = m.group(2)
    except OSError:
        pass
    return out


def progress_of(cfg, impl):
    """The progress file of a peer's faults run (bench_peers.py --progress:
    a "start EPOCH" line, then "I c|x|w" per outcome as it arrives)."""
    return os.path.join(cfg.logs, "faults-%s.progress" % impl)


def read_progress(path):
    """(start epoch, {"c": n, "x": n, "w": n}) of a progress file, or None
    when it has no start line (the storm never began)."""
    try:
        with open(path, errors="replace") as f:
            lines = f.read().split("\n")
    except OSError:
        return None
    if not lines or not lines[0].startswith("start "):
        return None
    try:
        start = float(lines[0].split()[1])
    except (IndexError, ValueError):
        return None
    seen = {}
    for line in lines[1:]:
        w = line.split()
        if len(w) == 2 and w[0].isdigit() and w[1] in ("c", "x", "w"):
            seen[int(w[0])] = w[1]     # a torn last line is left out
    kinds = list(seen.values())
    return start, {k: kinds.count(k) for k in "cxw"}


def why_died(errlog, rc, killed):
    """A short phrase of why a faults run died, from mpirun's stderr."""
    if killed:
        return "killed by the driver after %d s" % killed
    if rc == 124:
        return "killed by timeout"
    try:
        with open(errlog, errors="replace") as f:
            text = f.read()
    except OSError:
        text = ""
    m = re.search(r"mpirun noticed that process rank (\d+) .*? exited on "
                  r"signal (\d+) \(([^)]*)\)", text, re.S)
    if m:
        return "MPI job aborted: rank %s died of signal %s (%s)" % m.groups()
    m = re.search(r"process rank (\d+) with PID \d+ on node \S+ exiting "
                  r"improperly", text)
    if m:
        return "MPI job aborted: rank %s exited without MPI_Finalize" % \
            m.group(1)
    if "MPI_ABORT" in text:
        return "MPI job aborted (MPI_ABORT)"
    if rc < 0 or rc > 128:
        sig = -rc if rc < 0 else rc - 128
        return "process died of signal %d" % sig
    return "process died (exit status %d)" % rc


def fault_record_of_death(cfg, impl, rc, killed, errlog, t_end):
    """The faults record of a peer run that died without its JSON line,
    from its progress file, exit status and timing; None when the storm
    never began (then it is an ordinary failed run)."""
    got = read_progress(progress_of(cfg, impl))
    if got is None:
        return None
    start, k = got
    n = int(cfg.fault_tasks)
    why = why_died(errlog, rc, killed)
    known = k["c"] + k["x"] + k["w"]
    return {"tasks": n, "completed": k["c"], "crashed": k["x"],
            "timed_out": 0, "lost": n - known, "wrong": k["w"],
            "seconds": max(0.0, t_end - start), "pool_alive": False,
            "crash_rate": float(cfg.fault_rate),
            "died": why, "exit_status": rc, "from_progress": True,
            "note": "%s after %.2f s; the root had received {:,} "
                    "outcomes, the other {:,} tasks lost with the "
                    "job".format(known, n - known) % (
                        why, max(0.0, t_end - start))}


def output_of(cfg, impl, wl, variant):
    """The file (or .npy prefix) a w4/h5write run leaves for bench_peers.py
    verify, or None."""
    if wl not in ("w4", "h5write") or impl == "dd" or \
            (impl == "mpx" and variant == "map"):
        return None
    if impl == "mpx":
        return os.path.join(cfg.data, "%s-mpx.h5" % wl)
    if variant == "h5":
        return os.path.join(cfg.data, "%s-%s.h5" % (wl, impl))
    return os.path.join(cfg.data, "%s-%s" % (wl, impl))


def verify_cmd(cfg, wl, variant, path):
    args = ["--rows", cfg.w4_rows, "--full"] if wl == "w4" else \
        ["--rows", cfg.h5_rows]
    if variant == "zeros":
        args.append("--zeros")
    return [PY, PEERS, "verify", path] + args


def clean_data(cfg):
    for name in os.listdir(cfg.data):
        if name == "dd.bin" or re.fullmatch(
                r"(w4|h5write)-.*(\.h5|\.h5\.mpxrec|\.npy)", name):
            os.remove(os.path.join(cfg.data, name))


def q(words):
    """The command as a shell line (quoting only the words that need it)."""
    return " ".join(w if re.fullmatch(r"[A-Za-z0-9_./,=:+@%-]+", w)
                    else shlex.quote(w) for w in words)


def sh(cmd):
    """The first line of a command's output, or ""."""
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL,
                              text=True).stdout.split("\n")[0].strip()
    except OSError:
        return ""


def header(cfg):
    """The report's heading, the settings and every command it runs."""
    def first(path, pattern):
        try:
            with open(path) as f:
                for line in f:
                    if re.match(pattern, line):
                        return line
        except OSError:
            pass
        return ""
    cpu = first("/proc/cpuinfo", "model name").partition(": ")[2].strip()
    load_avg = " ".join(first("/proc/loadavg", "").split()[:3])
    rev = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]) or "?"
    if sh(["git", "-C", ROOT, "status", "--porcelain"]):
        rev += " (+uncommitted changes)"
    try:
        import mpi4py
        mpi4py_v = mpi4py.__version__
    except ImportError:
        mpi4py_v = "missing"
    gib = "%.3g" % (int(cfg.h5_rows) * 256 / 2**30)
    lines = [
        "# mpx benchmark (%s run)" % ("quick" if cfg.quick else "full"), "",
        "- date: %s, host %s, %d cores, %s, load average at start %s (other "
        "work on the machine skews every number)" % (
            datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M:%S UTC"), socket.gethostname(),
            os.cpu_count(), cpu, load_avg),
        "- mpx: git %s, binary %s%s" % (
            rev, cfg.mpxbench, "" if "mpx" in cfg.impls else " (missing)"),
        "- %s; Python %s; mpi4py %s" % (
            sh(["mpirun", "--version"]), platform.python_version(), mpi4py_v),
        "- repeats R=%s (startup: %s runs); sizes: tiny mpx %s / peers %s "
        "tasks, latency %s calls, spin %s tasks x %s us, idle %s s; spin "
        "clock of the Python peers: %s" % (
            cfg.repeats, cfg.startup_runs, cfg.tiny_mpx, cfg.tiny, cfg.lat,
            cfg.spin, cfg.spin_us, cfg.idle_s,
            env("BENCH_SPIN_CLOCK", "thread")),
        "- sizes of the map/job workloads: w4 %s rows in %s parts; h5write "
        "%s rows x 64 float32 = %s GiB of feature in %s parts, dd bs=16M "
        "count=%d; map chunksizes %s with items mpx %s / mpi4py,ppe %s / "
        "mpool %s; rss chunksize %s, mpx %s items, peers %s" % (
            cfg.w4_rows, cfg.w4_parts, cfg.h5_rows, gib, cfg.h5_parts,
            cfg.dd_count, " ".join(cfg.map_chunks),
            " ".join(cfg.map_items_mpx), " ".join(cfg.map_items),
            " ".join(cfg.map_items_mpool), cfg.rss_chunk,
            " ".join(cfg.rss_items), " ".join(cfg.rss_peer_items) or "none"),
        "- faults: %s tasks at crash rate %s; peers' deadline %s s (+%d s "
        "pool probe), each run killed after %d s; mpx --isolation process "
        "--task-timeout %s --deadline DEADLINE" % (
            cfg.fault_tasks, cfg.fault_rate, cfg.fault_deadline,
            FAULT_PROBE_S, cfg.fault_limit, FAULT_TASK_TIMEOUT),
        "- files of w4/h5write/dd go to %s; BENCH_SYNC=%s: %s" % (
            cfg.data, cfg.sync,
            "every implementation syncs its files inside the timing (mpx job "
            "option sync = fdatasync at each commit; peers os.fsync per "
            "file; dd conv=fdatasync)" if cfg.sync == "1" else
            "nobody syncs (mpx job sync=0, peers no fsync) except dd "
            "conv=fdatasync"),
        "- implementations: %s; workloads: %s" % (
            " ".join(cfg.impls), " ".join(cfg.workloads)),
        "", "## Commands (run from %s)" % ROOT, "", "```sh"]
    for wl in cfg.workloads:
        if wl == "startup":
            for impl in cfg.impls:
                if impl == "mpx-iso":
                    continue
                if is_mpi(impl):
                    lines.append(q(build_cmd(cfg, impl, "noop", "default")) +
                                 "    # startup, no --mca (timed from outside)")
                    lines.append(q(build_cmd(cfg, impl, "noop", "mca")) +
                                 "    # startup, with --mca (timed from "
                                 "outside)")
                else:
                    lines.append(q(build_cmd(cfg, impl, "noop")) +
                                 "    # startup (timed from outside)")
            continue
        for impl, variant in plan(cfg, wl):
            lines.append(q(build_cmd(cfg, impl, wl, variant)))
            f = output_of(cfg, impl, wl, variant)
            if f:
                lines.append("  " + q(verify_cmd(cfg, wl, variant, f)) +
                             "    # then deleted")
            elif impl == "dd":
                lines.append("  rm -f " + q([os.path.join(cfg.data,
                                                          "dd.bin")]))
    return "\n".join(lines + ["```"])


# ----------------------------------------------------------------------- run

def first_error_line(errlog):
    """The first line of a failed run's stderr worth showing."""
    try:
        with open(errlog, errors="replace") as f:
            lines = [l.strip() for l in f]
    except OSError:
        return ""
    lines = [l for l in lines if l.strip("-= ")]   # skip mpirun rulers
    boiler = ("Primary job", "a non-zero exit code", "mpirun noticed",
              "mpirun detected", "mpirun: Forwarding", "Process name:",
              "Exit code:", "Per user-direction")
    own = [l for l in lines if not l.startswith(boiler)]
    sig = [l for l in lines if l.startswith(("mpirun noticed",
                                             "mpirun detected"))]
    pick = (own or sig or lines)[:1]
    return (": " + pick[0][:160]) if pick else ""


def summary(rec, wl):
    """The progress line's measurements of a good run."""
    m = []
    if wl == "faults":
        def n(k):
            v = rec.get(k)
            return "?" if v is None else "{:,}".format(v)
        m.append("completed %s, crashed %s, timed out %s, lost %s, wrong %s "
                 "of %s in %.2f s; pool alive afterwards: %s" % (
                     n("completed"), n("crashed"), n("timed_out"), n("lost"),
                     n("wrong"), n("tasks"), rec.get("seconds") or 0,
                     "yes" if rec.get("pool_alive") else "no"))
        if rec.get("crash_cost_ms") is not None:
            m.append("crash cost %.2f ms (vs tiny pairs before any crash "
                     "%.2f ms)" % (rec["crash_cost_ms"],
                                   rec.get("crash_cost_vs_clean_ms") or 0))
        if rec.get("died"):
            m.append("died: %s (counted from its progress file)" %
                     rec["died"])
        return "; ".join(m)
    unit = "items/s" if wl in ("map", "rss") else "tasks/s"
    if wl in ("w4", "h5write"):
        m.append("%.3f s" % rec["seconds"])
        if rec.get("rows_per_s") is not None:
            m.append("{:,.0f} rows/s".format(rec["rows_per_s"]))
        if rec.get("gib_per_s") is not None:
            m.append("%.3f GiB/s" % rec["gib_per_s"])
        m.append("synced" if rec.get("synced") else "not synced")
        if "verified" in rec:
            m.append("output verified")
    elif rec.get("tasks_per_s") is not None and wl != "startup":
        m.append("{:,.0f} {}".format(rec["tasks_per_s"], unit))
    if rec.get("maxrss_kib") is not None:
        m.append("peak RSS %.1f MiB (before the map %.1f MiB)" % (
            rec["maxrss_kib"] / 1024,
            (rec.get("baseline_rss_kib") or 0) / 1024))
    if rec.get("p50_us") is not None:
        m.append("p50 %.0f us, p99 %.0f us" % (rec["p50_us"],
                                               rec["p99_us"] or 0))
    if rec.get("efficiency") is not None:
        m.append("efficiency %.1f%%" % (100 * rec["efficiency"]))
    if rec.get("root_cpu_share") is not None:
        w = rec.get("worker_cpu_share")
        m.append("root CPU %.1f%%, worker CPU %s" % (
            100 * rec["root_cpu_share"],
            "n/a" if w is None else "%.1f%%" % (100 * w)))
    if wl == "startup":
        m.append("%.3f s whole process" % rec["seconds"])
    return "; ".join(m)


def run_bounded(cmd, out, err, limit):
    """Runs cmd in a session of its own; kills its whole process group
    after limit seconds (or when we are interrupted). Returns (exit status,
    seconds after which it was killed or 0)."""
    p = subprocess.Popen(cmd, stdout=out, stderr=err,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        return p.wait(timeout=limit), 0
    except subprocess.TimeoutExpired:
        print("bench.py: killing process group %d after %d s" % (p.pid, limit),
              file=err, flush=True)
        os.killpg(p.pid, signal.SIGKILL)
        return p.wait(), limit
    except BaseException:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise
    finally:
        try:        # what the group left behind (pool workers of a dead root)
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass


def run_one(cfg, impl, wl, variant, rep):
    """Runs one command, appends its JSON line to results.jsonl (impl, rep
    and wall_s added; for startup the wall time of the whole process becomes
    "seconds"; for dd the bytes and seconds dd reports) and prints a
    one-line summary. w4/h5write outputs are verified, then deleted."""
    cmd = build_cmd(cfg, impl, "noop" if wl == "startup" else wl, variant)
    tag = "%s-%s%s-%d" % (impl, wl, "-" + variant if variant else "", rep)
    out_log = os.path.join(cfg.logs, tag + ".out")
    err_log = os.path.join(cfg.logs, tag + ".err")
    files = wl in ("w4", "h5write")
    if files:
        clean_data(cfg)
    faults = wl == "faults"
    progress = progress_of(cfg, impl) if faults and impl != "mpx" else None
    if progress and os.path.exists(progress):
        os.remove(progress)
    killed = 0
    t0 = time.perf_counter()
    with open(out_log, "w") as o, open(err_log, "w") as e:
        try:
            if faults:
                rc, killed = run_bounded(cmd, o, e, cfg.fault_limit + 15)
            else:
                rc = subprocess.run(cmd, stdout=o, stderr=e,
                                    stdin=subprocess.DEVNULL).returncode
        except OSError as x:
            print(x, file=e)
            rc = 127
    wall = time.perf_counter() - t0
    t_end = time.time()
    with open(out_log, errors="replace") as o:
        jl = [l.strip() for l in o if l.startswith("{")]
    vline = None
    if files:
        f = output_of(cfg, impl, wl, variant)
        if f and rc == 0:
            with open(err_log, "a") as e:
                got = subprocess.run(verify_cmd(cfg, wl, variant, f),
                                     stdout=subprocess.PIPE, stderr=e,
                                     stdin=subprocess.DEVNULL, text=True)
            vl = got.stdout.strip().split("\n")
            vline = vl[-1] if vl[-1] else \
                '{"verified": false, "error": "verify printed nothing"}'
        clean_data(cfg)

    rec = {"impl": impl, "workload": wl}
    err = None
    if rc != 0:
        err = "exit status %d%s" % (rc, " (timeout)" if rc == 124 else "")
    try:
        got = json.loads(jl[-1]) if jl else None
    except ValueError:
        got = None
    if impl == "dd" and err is None:
        # "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.42974 s, 442 MB/s"
        with open(err_log, errors="replace") as e:
            m = re.search(r"^(\d+) bytes .* copied, ([0-9.eE+-]+) s",
                          e.read(), re.M)
        if m:
            nbytes, secs = int(m.group(1)), float(m.group(2))
            got = {"bytes": nbytes, "seconds": secs,
                   "gib_per_s": nbytes / secs / 2**30 if secs > 0 else None,
                   "synced": True, "format": "raw"}
    if faults:
        if got is None and progress:
            # the process died with the storm (mpi4py: mpirun aborts the
            # job when a worker rank dies): a result, not a failed run
            got = fault_record_of_death(cfg, impl, rc, killed, err_log,
                                        t_end)
            if got is not None:
                err = None
        elif got is not None and "completed" in got and err:
            # a fault record and then a bad exit: keep the record
            got["exit_status"] = rc
            got["note"] = "%s; then %s" % (got.get("note") or "", err)
            err = None
        if killed and got is None:
            err = "killed by the driver after %d s" % killed
        if progress and os.path.exists(progress):
            os.replace(progress, os.path.join(cfg.logs, tag + ".progress"))
        if got is not None:
            got.setdefault("tasks", int(cfg.fault_tasks))
            got.setdefault("crash_rate", float(cfg.fault_rate))
            got.setdefault("variant", "")
    if got is None and err is None:
        err = "no JSON line on stdout" if impl != "dd" else \
            "no dd summary on stderr"
    if got is not None:
        got.pop("impl", None)
        if wl == "startup":
            rec["inner_workload"] = got.pop("workload", None)
            rec["inner_seconds"] = got.pop("seconds", None)
            rec.update(got)
            rec["tasks_per_s"] = None
            rec["seconds"] = wall
        else:
            rec.update(got)
            rec["workload"] = wl
    if variant:
        rec["variant"] = variant
    if vline:
        try:
            v = json.loads(vline)
        except ValueError:
            v = {"verified": False, "error": "bad verify output: " + vline[:80]}
        rec["verified"] = bool(v.get("verified"))
        if not rec["verified"]:
            rec["verify_error"] = v.get("error", "?")
            if err is None:
                err = "output wrong: " + rec["verify_error"]
    rec["rep"] = rep
    rec["wall_s"] = round(wall, 6)
    if err:
        rec["error"] = err
        if faults:      # for the fault table: e.g. mpx-bench's usage line
            rec["error_detail"] = first_error_line(err_log)
    with open(cfg.results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    name = "%-7s %-8s%s rep %d" % (impl, wl, " " + variant if variant else "",
                                   rep)
    if err:
        print("  %-34s FAILED (%s)%s" % (name, err, first_error_line(err_log)),
              flush=True)
    else:
        print("  %-34s %s" % (name, summary(rec, wl)), flush=True)


def run(cfg):
    os.chdir(ROOT)
    os.makedirs(cfg.logs, exist_ok=True)
    os.makedirs(cfg.data, exist_ok=True)
    require(cfg)
    open(cfg.results, "w").close()
    for name in os.listdir(cfg.logs):
        if name.endswith((".out", ".err", ".progress")):
            os.remove(os.path.join(cfg.logs, name))
    head = header(cfg)
    print(head)
    print("\n## Progress (raw JSON: %s, logs: %s)\n" % (cfg.results, cfg.logs),
          flush=True)
    for rep in range(1, int(cfg.repeats) + 1):
        for wl in cfg.workloads:
            if wl == "startup":
                continue
            for impl, variant in plan(cfg, wl):
                run_one(cfg, impl, wl, variant, rep)
    if "startup" in cfg.workloads:
        for rep in range(1, int(cfg.startup_runs) + 1):
            for variant in ("default", "mca"):
                for impl in cfg.impls:
                    if impl == "mpx-iso":
                        continue
                    if is_mpi(impl):
                        run_one(cfg, impl, "startup", variant, rep)
                    elif variant == "default":
                        run_one(cfg, impl, "startup", "", rep)
    results = "## Results (median of %s runs; startup: median of %s; " \
        "'--mca' = %s)\n\n%s" % (cfg.repeats, cfg.startup_runs, cfg.mca_str,
                                 make_table(load(cfg.results), cfg.impls))
    with open(cfg.table, "w") as f:
        f.write(head + "\n\n" + results + "\n")
    print("\n" + results + "\n")
    print("(table written to %s, raw results to %s)" % (cfg.table,
                                                        cfg.results))


def main():
    ap = argparse.ArgumentParser(
        prog="bench.py", usage="%(prog)s [--quick] | --table RESULTS.jsonl "
        "[--impls mpx,mpi4py,ppe,mpool]", add_help=False)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--table", metavar="RESULTS.jsonl")
    ap.add_argument("--impls", default=",".join(ALL_IMPLS))
    ap.add_argument("-h", "--help", action="store_true")
    a, rest = ap.parse_known_args()
    if a.help:
        print(__doc__.strip())
        return 0
    if rest:
        die("unknown argument '%s' (try --help)" % rest[0], 2)
    if a.table:
        print(make_table(load(a.table), [i for i in a.impls.split(",") if i]))
        return 0
    run(Config(a.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
