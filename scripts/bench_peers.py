#!/usr/bin/python3
"""Peer implementations for the mpx benchmark (see scripts/bench.sh).

Runs one workload on one Python pool implementation and prints ONE JSON line
on stdout with the same fields as apps/mpx-bench:

  {"impl", "workload", "ranks", "workers", "tasks", "seconds",
   "tasks_per_s", "p50_us", "p99_us", "efficiency"}   (null = not applicable)

Usage (always the Debian interpreter; the pyenv python3 lacks mpi4py):

  /usr/bin/python3 scripts/bench_peers.py ppe   WORKLOAD [--tasks N] [--us U]
  /usr/bin/python3 scripts/bench_peers.py mpool WORKLOAD [--tasks N] [--us U]
  mpirun -n 3 --oversubscribe --allow-run-as-root --bind-to none \\
      /usr/bin/python3 -m mpi4py.futures scripts/bench_peers.py mpi4py WORKLOAD ...

IMPL:      mpi4py = mpi4py.futures.MPIPoolExecutor (workers = MPI ranks > 0)
           ppe    = concurrent.futures.ProcessPoolExecutor(2)
           mpool  = multiprocessing.Pool(2)
WORKLOAD:  tiny     N calls of f(x)=x*x, all submitted, then collected
                    (futures: as_completed; mpool: apply_async + get on each)
           latency  N sequential submit -> result round trips; p50/p99 per call
           spin     N tasks that burn U microseconds of CPU each;
                    efficiency = N*U / (workers * wall seconds)
           noop     start the pool, run 1 task, shut down (for whole-process
                    start-up timing by the driver; "seconds" is the in-process
                    time from interpreter start to shutdown)
           idle     start the pool, then stay idle --seconds S; reports the CPU
                    share the root process and (mean per) worker burn meanwhile
Pools are warmed up with 2*workers trivial tasks (not timed) for every
workload but noop; only the workload itself is timed.

The spin clock is time.thread_time() (CPU time of the worker thread, so a
preempted task still burns its full U us of CPU); BENCH_SPIN_CLOCK=perf
switches to the wall clock time.perf_counter().
"""
import argparse
import json
import os
import sys
import time

T_START = time.perf_counter()

DEFAULT_WORKERS = 2


# --------------------------------------------------------------------------
# Tasks (module level so that every implementation can pickle them)
# --------------------------------------------------------------------------

def sq(x):
    return x * x


def spin(us):
    clock = time.perf_counter if os.environ.get(
        "BENCH_SPIN_CLOCK", "thread") == "perf" else time.thread_time
    end = clock() + us * 1e-6
    n = 0
    while clock() < end:
        n += 1
    return n


def whoami(delay):
    # Sleeps so that concurrently submitted probes land on different workers.
    time.sleep(delay)
    return os.getpid()


# --------------------------------------------------------------------------
# A thin common interface over the three pools
# --------------------------------------------------------------------------

class FuturesPool:
    """ProcessPoolExecutor or MPIPoolExecutor."""

    def __init__(self, impl, workers):
        self.impl = impl
        if impl == "mpi4py":
            from mpi4py import MPI
            from mpi4py.futures import MPIPoolExecutor
            size = MPI.COMM_WORLD.Get_size()
            if size < 2:
                sys.exit("bench_peers: mpi4py must run as `mpirun -n 3 "
                         "/usr/bin/python3 -m mpi4py.futures bench_peers.py "
                         "mpi4py ...` (got %d rank)" % size)
            self.ranks = size
            self.workers = size - 1
            self.ex = MPIPoolExecutor()
        else:
            from concurrent.futures import ProcessPoolExecutor
            self.ranks = None
            self.workers = workers
            self.ex = ProcessPoolExecutor(workers)

    def submit(self, fn, *args):
        return self.ex.submit(fn, *args)

    def call(self, fn, *args):
        return self.ex.submit(fn, *args).result()

    def gather(self, fn, argseq):
        """Submits fn(a) for every a, collects with as_completed; returns
        the results in completion order."""
        from concurrent.futures import as_completed
        futs = [self.ex.submit(fn, a) for a in argseq]
        return [f.result() for f in as_completed(futs)]

    def shutdown(self):
        self.ex.shutdown(wait=True)


class MpPool:
    """multiprocessing.Pool."""

    def __init__(self, workers):
        import multiprocessing
        self.ranks = None
        self.workers = workers
        self.pool = multiprocessing.Pool(workers)

    def call(self, fn, *args):
        return self.pool.apply_async(fn, args).get()

    def gather(self, fn, argseq):
        rs = [self.pool.apply_async(fn, (a,)) for a in argseq]
        return [r.get() for r in rs]

    def shutdown(self):
        self.pool.close()
        self.pool.join()


def make_pool(impl, workers):
    if impl == "mpool":
        return MpPool(workers)
    return FuturesPool(impl, workers)


# --------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------

def percentile(sorted_vals, q):
    """Nearest-rank percentile (q in 0..100) of an ascending list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1,
                   int(-(-q * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def warm_up(pool):
    pool.gather(sq, range(2 * pool.workers))


def run_tiny(pool, n):
    t0 = time.perf_counter()
    res = pool.gather(sq, range(n))
    dt = time.perf_counter() - t0
    expect = (n - 1) * n * (2 * n - 1) // 6
    if len(res) != n or sum(res) != expect:
        sys.exit("bench_peers: tiny: wrong results")
    return dict(tasks=n, seconds=dt, tasks_per_s=n / dt)


def run_latency(pool, n):
    lat = []
    now = time.perf_counter_ns
    t0 = time.perf_counter()
    for i in range(n):
        a = now()
        r = pool.call(sq, i)
        lat.append(now() - a)
        if r != i * i:
            sys.exit("bench_peers: latency: wrong result")
    dt = time.perf_counter() - t0
    lat.sort()
    return dict(tasks=n, seconds=dt, tasks_per_s=n / dt,
                p50_us=percentile(lat, 50) / 1e3,
                p99_us=percentile(lat, 99) / 1e3)


def run_spin(pool, n, us):
    t0 = time.perf_counter()
    res = pool.gather(spin, [us] * n)
    dt = time.perf_counter() - t0
    if len(res) != n:
        sys.exit("bench_peers: spin: wrong number of results")
    return dict(tasks=n, seconds=dt, tasks_per_s=n / dt,
                efficiency=n * us * 1e-6 / (pool.workers * dt))


def proc_cpu_seconds(pid):
    """utime+stime of a process from /proc, or None if not readable."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_idle(pool, seconds):
    pids = set()
    for _ in range(20):
        pids.update(pool.gather(whoami, [0.05] * (2 * pool.workers)))
        if len(pids) >= pool.workers:
            break
    pids = sorted(pids)
    w0 = [proc_cpu_seconds(p) for p in pids]
    r0 = time.process_time()
    t0 = time.perf_counter()
    time.sleep(seconds)
    dt = time.perf_counter() - t0
    r1 = time.process_time()
    w1 = [proc_cpu_seconds(p) for p in pids]
    shares = [(b - a) / dt for a, b in zip(w0, w1)
              if a is not None and b is not None]
    return dict(tasks=0, seconds=dt,
                root_cpu_share=(r1 - r0) / dt,
                worker_cpu_share=(sum(shares) / len(shares)) if shares
                else None,
                worker_pids_seen=len(pids))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("impl", choices=["mpi4py", "ppe", "mpool"])
    ap.add_argument("workload",
                    choices=["tiny", "latency", "spin", "noop", "idle"])
    ap.add_argument("--tasks", type=int, default=None)
    ap.add_argument("--us", type=float, default=1000.0,
                    help="spin: CPU microseconds per task (default 1000)")
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="idle: seconds to stay idle (default 2)")
    ap.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                    help="ppe/mpool pool size (mpi4py: MPI size - 1)")
    a = ap.parse_args()
    defaults = dict(tiny=20000, latency=2000, spin=2000, noop=1, idle=0)
    n = a.tasks if a.tasks is not None else defaults[a.workload]

    pool = make_pool(a.impl, a.workers)
    try:
        if a.workload == "noop":
            if pool.call(sq, 3) != 9:
                sys.exit("bench_peers: noop: wrong result")
            out = dict(tasks=1)
        else:
            warm_up(pool)
            if a.workload == "tiny":
                out = run_tiny(pool, n)
            elif a.workload == "latency":
                out = run_latency(pool, n)
            elif a.workload == "spin":
                out = run_spin(pool, n, a.us)
            else:
                out = run_idle(pool, a.seconds)
    finally:
        pool.shutdown()
    if a.workload == "noop":
        out["seconds"] = time.perf_counter() - T_START

    rec = {"impl": a.impl, "workload": a.workload, "ranks": pool.ranks,
           "workers": pool.workers, "tasks": n, "seconds": None,
           "tasks_per_s": None, "p50_us": None, "p99_us": None,
           "efficiency": None}
    if a.workload == "spin":
        rec["us"] = a.us
    rec.update(out)
    print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
