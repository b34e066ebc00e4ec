#!/usr/bin/python3
"""Peer implementations for the mpx benchmark (see scripts/bench.py).

Runs one workload on one Python pool implementation and prints ONE JSON line
on stdout with the same fields as apps/mpx-bench:

  {"impl", "workload", "ranks", "workers", "tasks", "seconds",
   "tasks_per_s", "p50_us", "p99_us", "efficiency"}   (null = not applicable)

Usage (always the Debian interpreter; the pyenv python3 lacks mpi4py):

  /usr/bin/python3 scripts/bench_peers.py ppe   WORKLOAD [--tasks N] [--us U]
  /usr/bin/python3 scripts/bench_peers.py mpool WORKLOAD [--tasks N] [--us U]
  mpirun -n 3 --oversubscribe --allow-run-as-root --bind-to none \\
      /usr/bin/python3 -m mpi4py.futures scripts/bench_peers.py mpi4py WORKLOAD ...
  /usr/bin/python3 scripts/bench_peers.py verify FILE.h5|PREFIX [--rows N]
      [--full] [--zeros]

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
           w4       --rows N (200000) indices split into --parts K (8) by
                    np.array_split; executor.map (ppe, mpi4py; mpool: Pool.map)
                    computes each part's rows (feature float32 [m x 64] =
                    sin(0.001*i + 0.1*j), target int32 = i % 7), the root
                    np.concatenates them and writes --out DIR/w4-IMPL.*:
                    --format npy (two np.save files, w4-IMPL_feature.npy and
                    w4-IMPL_target.npy) or h5 (h5py, datasets feature and
                    target in w4-IMPL.h5); --sync os.fsyncs the files. Times
                    map + concatenate + write (+ fsync); "rows_per_s",
                    "bytes" (file sizes), "gib_per_s" (bytes / seconds)
           map      --tasks N calls of f(x)=x*x through executor.map(f,
                    range(N), chunksize=C) (mpool: Pool.imap), results
                    iterated in order; --chunksize C (default 1)
           rss      as map, over a generator of --tasks N inputs (chunksize C,
                    default 256); "maxrss_kib" is the root's peak RSS
                    (getrusage ru_maxrss), "baseline_rss_kib" the peak before
                    the map
           h5write  w4 with other defaults (--rows 4194304 --parts 64
                    --format h5: a 1 GiB feature dataset), for contrast with
                    mpx's job and dd in scripts/bench.py
           faults   a crash storm: --tasks N tasks of f(i)=i*i, each
                    submitted on its own (futures: submit; mpool:
                    apply_async), whose fate is fixed by a hash of i (see
                    fault_fate): with --crash-rate P (0.03) a share P/3
                    segfaults (SIGSEGV to itself), P/3 calls os.abort(), P/6
                    calls os._exit(0) and P/6 sleeps 0.2 s (a "hang": over
                    mpx's 50 ms task timeout; the peers have none, so it
                    just runs long). Every outcome is collected against an
                    overall --deadline D (120 s; futures: as_completed with
                    the remaining time, mpool: callbacks + a condition wait);
                    then a fresh x*x task probes the pool for 10 s. Reports
                    "completed" (right result), "crashed" (an exception,
                    e.g. BrokenProcessPool), "wrong", "lost" (no outcome by
                    the deadline), "timed_out" (0: no task time limit),
                    "pool_alive", "note", "last_outcome_s". --progress FILE
                    gets a "start EPOCH" line, then one "I c|x|w" line per
                    outcome (written as it arrives), so that the driver can
                    still count outcomes when the process dies with its
                    workers (mpi4py under mpirun)
           verify   (not a pool) checks a w4 output against the formula:
                    FILE.h5 (datasets feature, target) or PREFIX for
                    PREFIX_feature.npy + PREFIX_target.npy; shapes, dtypes
                    and a sample of rows (all rows with --full; all zeros
                    expected with --zeros); prints one
                    JSON line {"verified": true|false, ...}, exit 1 if bad
Pools are warmed up with 2*workers trivial tasks (not timed) for every
workload but noop; only the workload itself is timed. The faults workload
prints its own JSON line (impl, workload, variant, tasks, completed, crashed,
timed_out, lost, wrong, seconds, pool_alive, note, ...).

The spin clock is time.thread_time() (CPU time of the worker thread, so a
preempted task still burns its full U us of CPU); BENCH_SPIN_CLOCK=perf
switches to the wall clock time.perf_counter().
"""
import argparse
import json
import os
import signal
import sys
import threading
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


W4_WIDTH = 64


def w4_compute(idx):
    """Rows of the W4 arrays for the int64 indices idx (as apps/w4.c)."""
    import numpy as np
    idx = np.asarray(idx, dtype=np.int64)
    x = 0.001 * idx.astype(np.float64)[:, None] + \
        0.1 * np.arange(W4_WIDTH, dtype=np.float64)[None, :]
    feature = np.sin(x).astype(np.float32)
    target = (idx % 7).astype(np.int32)
    return feature, target


def w4_part(part):
    """The task of the w4 workload: one np.array_split part (an int64 index
    array) -> (feature [m x 64] float32, target [m] int32)."""
    return w4_compute(part)


def w4_zero_part(part):
    """w4 with nothing computed (--zeros, as mpx-bench --task zero_rows): the
    same arrays, all zeros -- the pool, the transfer and the file alone."""
    import numpy as np
    m = len(part)
    return (np.zeros((m, W4_WIDTH), dtype=np.float32),
            np.zeros(m, dtype=np.int32))


FAULT_RATE = 0.03          # default --crash-rate: 1% : 1% : 0.5% : 0.5%
FAULT_HANG_S = 0.2         # a "hang" (mpx's task timeout in the bench: 0.05)
FAULT_FATES = ("segv", "abort", "exit", "hang")


def fault_fate(i, rate=FAULT_RATE):
    """The fate of task i of the crash storm, the same for every
    implementation (apps/mpx-bench faults uses the same hash): h =
    ((i * 2654435761) mod 2^32) / 2^32; h < rate/3 segfaults, < 2 rate/3
    aborts, < 5 rate/6 exits, < rate hangs, else "ok"."""
    h = ((i * 2654435761) % 2**32) / 2**32
    if h >= rate:
        return "ok"
    if h < rate / 3:
        return "segv"
    if h < 2 * rate / 3:
        return "abort"
    if h < 5 * rate / 6:
        return "exit"
    return "hang"


def fault_counts(n, rate=FAULT_RATE):
    """{fate: number of tasks} of a storm of n tasks."""
    c = dict.fromkeys(("ok",) + FAULT_FATES, 0)
    for i in range(n):
        c[fault_fate(i, rate)] += 1
    return c


def fault_task(i, rate):
    """Task i of the crash storm: returns i*i unless its fate kills it."""
    fate = fault_fate(i, rate)
    if fate == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(10)                 # not reached: the signal kills us
    elif fate == "abort":
        os.abort()
    elif fate == "exit":
        os._exit(0)
    elif fate == "hang":
        time.sleep(FAULT_HANG_S)
    return i * i


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

    def map(self, fn, iterable, chunksize=1):
        """Executor.map: an iterator over the results in input order."""
        return self.ex.map(fn, iterable, chunksize=chunksize)

    def shutdown(self):
        self.ex.shutdown(wait=True)

    def abandon(self):
        """Shut down without waiting for tasks that may never finish."""
        self.ex.shutdown(wait=True, cancel_futures=True)


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

    def map(self, fn, iterable, chunksize=1):
        """Pool.imap: an iterator over the results in input order."""
        return self.pool.imap(fn, iterable, chunksize=chunksize)

    def shutdown(self):
        self.pool.close()
        self.pool.join()

    def abandon(self):
        """Pool.join would wait forever for a task whose worker died."""
        self.pool.terminate()
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


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run_w4(pool, workload, rows, parts, out, fmt, sync, impl, zeros=False):
    """np.array_split + map + np.concatenate + np.save/h5py (+ fsync)."""
    import numpy as np
    if not out:
        sys.exit("bench_peers: %s needs --out DIR" % workload)
    os.makedirs(out, exist_ok=True)
    base = os.path.join(out, "%s-%s" % (workload, impl))
    if fmt == "npy":
        paths = [base + "_feature.npy", base + "_target.npy"]
    else:
        paths = [base + ".h5"]
        import h5py
    for p in paths:
        if os.path.exists(p):
            os.remove(p)
    t0 = time.perf_counter()
    split = np.array_split(range(0, rows), parts)
    results = list(pool.map(w4_zero_part if zeros else w4_part, split))
    feature = np.concatenate([r[0] for r in results])
    target = np.concatenate([r[1] for r in results])
    t_map = time.perf_counter() - t0
    if fmt == "npy":
        np.save(paths[0], feature)
        np.save(paths[1], target)
    else:
        with h5py.File(paths[0], "w") as f:
            f.create_dataset("feature", data=feature)
            f.create_dataset("target", data=target)
    if sync:
        for p in paths:
            fsync_path(p)
    dt = time.perf_counter() - t0
    if feature.shape != (rows, W4_WIDTH) or target.shape != (rows,):
        sys.exit("bench_peers: %s: wrong shapes %s %s" % (
            workload, feature.shape, target.shape))
    nbytes = sum(os.path.getsize(p) for p in paths)
    return dict(tasks=parts, seconds=dt, tasks_per_s=parts / dt, rows=rows,
                rows_per_s=rows / dt, bytes=nbytes,
                gib_per_s=nbytes / dt / 2**30,
                data_bytes=feature.nbytes + target.nbytes,
                map_concat_s=t_map, format=fmt, synced=bool(sync),
                task="zeros" if zeros else "w4",
                files=paths)


def run_map(pool, n, chunksize):
    t0 = time.perf_counter()
    s = 0
    k = 0
    for r in pool.map(sq, range(n), chunksize=chunksize):
        if r != k * k:
            sys.exit("bench_peers: map: result %d is %r, not %d" % (k, r, k * k))
        s += r
        k += 1
    dt = time.perf_counter() - t0
    if k != n:
        sys.exit("bench_peers: map: %d results of %d" % (k, n))
    return dict(tasks=n, seconds=dt, tasks_per_s=n / dt, chunksize=chunksize)


def maxrss_kib():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def run_rss(pool, n, chunksize):
    base = maxrss_kib()
    t0 = time.perf_counter()
    k = 0
    for r in pool.map(sq, (i for i in range(n)), chunksize=chunksize):
        if r != k * k:
            sys.exit("bench_peers: rss: result %d is %r" % (k, r))
        k += 1
    dt = time.perf_counter() - t0
    if k != n:
        sys.exit("bench_peers: rss: %d results of %d" % (k, n))
    return dict(tasks=n, seconds=dt, tasks_per_s=n / dt, chunksize=chunksize,
                maxrss_kib=maxrss_kib(), baseline_rss_kib=base)


class FaultProgress:
    """The --progress file: "start EPOCH", then "I c|x|w" per outcome,
    each line written (one write(2)) as it happens."""

    def __init__(self, path):
        self.f = open(path, "w", buffering=1) if path else None
        self.lock = threading.Lock()

    def start(self):
        if self.f:
            self.f.write("start %.6f\n" % time.time())

    def outcome(self, i, kind):
        if self.f:
            with self.lock:
                self.f.write("%d %s\n" % (i, kind))

    def close(self):
        if self.f:
            self.f.close()


def run_faults(pool, impl, n, rate, deadline, progress_path):
    """The crash storm (see the docstring); returns the JSON fields."""
    prog = FaultProgress(progress_path)
    done = {}                       # i -> "c" (right), "x" (error), "w"
    errors = {}                     # exception type name -> count
    first_err = [None]              # (i, text, seconds) of the first error
    cond = threading.Condition()
    t0 = time.perf_counter()
    last = [None]

    def record(i, kind, exc=None):
        with cond:
            if i in done:
                return
            done[i] = kind
            last[0] = time.perf_counter() - t0
            if exc is not None:
                name = type(exc).__name__
                errors[name] = errors.get(name, 0) + 1
                if first_err[0] is None:
                    first_err[0] = (i, "%s: %s" % (name, exc), last[0])
            cond.notify_all()
        prog.outcome(i, kind)

    prog.start()
    submit_error = None
    if impl == "mpool":
        def on_result(i):
            return lambda r: record(i, "c" if r == i * i else "w")

        def on_error(i):
            return lambda e: record(i, "x", e)
        for i in range(n):
            pool.pool.apply_async(fault_task, (i, rate),
                                  callback=on_result(i),
                                  error_callback=on_error(i))
        end = t0 + deadline
        with cond:
            while len(done) < n:
                left = end - time.perf_counter()
                if left <= 0:
                    break
                cond.wait(left)
    else:
        from concurrent.futures import as_completed, TimeoutError as FTE
        futs = {}
        try:
            for i in range(n):
                futs[pool.ex.submit(fault_task, i, rate)] = i
        except Exception as e:      # a pool broken while submitting
            submit_error = (len(futs), "%s: %s" % (type(e).__name__, e))
        left = max(0.0, t0 + deadline - time.perf_counter())
        try:
            for f in as_completed(futs, timeout=left):
                i = futs[f]
                e = f.exception()
                if e is not None:
                    record(i, "x", e)
                else:
                    record(i, "c" if f.result() == i * i else "w")
        except FTE:
            pass
    seconds = time.perf_counter() - t0
    with cond:
        kinds = list(done.values())
        lost_ids = [i for i in range(n) if i not in done]
    completed, crashed, wrong = (kinds.count(k) for k in "cxw")
    if submit_error:
        # submit raised for the tasks after the pool broke: an error too
        crashed += n - submit_error[0]
        lost_ids = [i for i in lost_ids if i < submit_error[0]]
    lost = len(lost_ids)

    # Is the same pool still usable? One fresh x*x task, 10 s.
    t1 = time.perf_counter()
    alive_err = None
    try:
        if impl == "mpool":
            alive = pool.pool.apply_async(sq, (12345,)).get(10) == 12345**2
        else:
            alive = pool.ex.submit(sq, 12345).result(10) == 12345**2
    except Exception as e:
        alive = False
        alive_err = type(e).__name__
    probe_s = time.perf_counter() - t1

    # What happened, in a few words.
    fatal = sum(1 for i in range(n) if fault_fate(i, rate) in
                ("segv", "abort", "exit"))
    bits = []
    if "BrokenProcessPool" in errors:
        bits.append("BrokenProcessPool after the first crash ({:.2f} s): "
                    "{:,} futures failed".format(
                        first_err[0][2], errors["BrokenProcessPool"]))
    others = {k: v for k, v in errors.items() if k != "BrokenProcessPool"}
    if others:
        bits.append("errors: " + ", ".join(
            "{:,} {}".format(v, k) for k, v in sorted(others.items())))
    if submit_error:
        bits.append("submit raised {} for the other {:,}".format(
            submit_error[1].split(":")[0], n - submit_error[0]))
    if lost:
        lf = sum(1 for i in lost_ids if fault_fate(i, rate) in
                 ("segv", "abort", "exit"))
        bits.append("hung: {:,} results never arrived ({:,} of them "
                    "tasks that kill their worker; {:,} such tasks in "
                    "all); the last outcome came at {}, then nothing until "
                    "the {:g} s deadline".format(
                        lost, lf, fatal, "%.2f s" % last[0] if last[0]
                        is not None else "-", deadline))
    if not bits:
        bits.append("every task came back")
    if not alive:
        bits.append("the probe got %s" % (alive_err or "a wrong result"))
    prog.close()
    return dict(tasks=n, completed=completed, crashed=crashed, timed_out=0,
                lost=lost, wrong=wrong, seconds=seconds,
                tasks_per_s=None, pool_alive=alive, note="; ".join(bits),
                crash_rate=rate, deadline_s=deadline,
                last_outcome_s=last[0], probe_s=probe_s, errors=errors,
                first_error=first_err[0][1][:200] if first_err[0] else None,
                fates=fault_counts(n, rate))


def verify_main(argv):
    """verify FILE.h5|PREFIX [--rows N] [--full]: checks a W4 output."""
    import numpy as np
    ap = argparse.ArgumentParser(prog="bench_peers.py verify")
    ap.add_argument("target")
    ap.add_argument("--rows", type=int, default=None,
                    help="expected number of rows")
    ap.add_argument("--full", action="store_true",
                    help="check every row (default: a sample of 4096)")
    ap.add_argument("--zeros", action="store_true",
                    help="expect all zeros (mpx-bench --task zero_rows)")
    a = ap.parse_args(argv)
    rec = {"verify": a.target, "verified": False}
    try:
        if a.target.endswith(".h5"):
            import h5py
            f = h5py.File(a.target, "r")
            feature, target = f["feature"], f["target"]
        else:
            f = None
            feature = np.load(a.target + "_feature.npy", mmap_mode="r")
            target = np.load(a.target + "_target.npy", mmap_mode="r")
        n = feature.shape[0]
        rec.update(rows=n, feature_shape=list(feature.shape),
                   feature_dtype=str(feature.dtype),
                   target_shape=list(target.shape),
                   target_dtype=str(target.dtype))
        bad = []
        if a.rows is not None and n != a.rows:
            bad.append("rows %d != %d" % (n, a.rows))
        if feature.dtype != np.float32 or feature.ndim != 2 or \
                feature.shape[1] != W4_WIDTH:
            bad.append("feature is %s %s" % (feature.dtype, feature.shape))
        if target.dtype != np.int32 or target.shape[:1] != (n,) or \
                (target.ndim == 2 and target.shape[1] != 1) or target.ndim > 2:
            bad.append("target is %s %s" % (target.dtype, target.shape))
        if not bad and n:
            if a.full or n <= 4096:
                idx = np.arange(n)
            else:
                rng = np.random.default_rng(12345)
                idx = np.unique(np.concatenate(
                    [[0, n - 1], rng.integers(0, n, 4094)]))
            fe = np.asarray(feature[idx] if f is None else feature[idx, :])
            tg = np.asarray(target[idx]).reshape(-1)
            want_f, want_t = w4_compute(idx)
            if a.zeros:
                want_f, want_t = np.zeros_like(want_f), np.zeros_like(want_t)
            err = float(np.max(np.abs(fe - want_f)))
            rec["rows_checked"] = int(len(idx))
            rec["max_abs_err"] = err
            if err > 1e-6:
                bad.append("feature differs by up to %g" % err)
            if not np.array_equal(tg, want_t):
                bad.append("target differs")
        if f is not None:
            f.close()
        if bad:
            rec["error"] = "; ".join(bad)
        else:
            rec["verified"] = True
    except Exception as e:  # missing file, not HDF5, ...
        rec["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(rec), flush=True)
    return 0 if rec["verified"] else 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "verify":
        sys.exit(verify_main(sys.argv[2:]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("impl", choices=["mpi4py", "ppe", "mpool"])
    ap.add_argument("workload",
                    choices=["tiny", "latency", "spin", "noop", "idle", "w4",
                             "h5write", "map", "rss", "faults"])
    ap.add_argument("--tasks", type=int, default=None)
    ap.add_argument("--us", type=float, default=1000.0,
                    help="spin: CPU microseconds per task (default 1000)")
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="idle: seconds to stay idle (default 2)")
    ap.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                    help="ppe/mpool pool size (mpi4py: MPI size - 1)")
    ap.add_argument("--chunksize", type=int, default=None,
                    help="map/rss: inputs per chunk (default 1 / 256)")
    ap.add_argument("--rows", type=int, default=None,
                    help="w4/h5write: indices (default 200000 / 4194304)")
    ap.add_argument("--parts", type=int, default=None,
                    help="w4/h5write: array_split parts (default 8 / 64)")
    ap.add_argument("--out", default=None,
                    help="w4/h5write: output directory")
    ap.add_argument("--format", choices=["npy", "h5"], default=None,
                    help="w4/h5write: np.save or h5py (default npy / h5)")
    ap.add_argument("--sync", action="store_true",
                    help="w4/h5write: os.fsync the files before stopping "
                    "the clock")
    ap.add_argument("--zeros", action="store_true",
                    help="w4/h5write: the tasks return zeros (nothing "
                    "computed), as mpx-bench --task zero_rows")
    ap.add_argument("--keep", action="store_true",
                    help="w4/h5write: keep the files (default: remove them)")
    ap.add_argument("--crash-rate", type=float, default=FAULT_RATE,
                    help="faults: share of tasks that crash or hang "
                    "(default 0.03 = 1%% segv, 1%% abort, 0.5%% exit, 0.5%% "
                    "hang)")
    ap.add_argument("--deadline", type=float, default=120.0,
                    help="faults: seconds to wait for all outcomes "
                    "(default 120)")
    ap.add_argument("--progress", default=None,
                    help="faults: file to append each outcome to as it "
                    "arrives")
    a = ap.parse_args()
    defaults = dict(tiny=20000, latency=2000, spin=2000, noop=1, idle=0,
                    map=100000, rss=1000000, faults=10000)
    n = a.tasks if a.tasks is not None else defaults.get(a.workload, 0)
    if a.workload in ("w4", "h5write"):
        big = a.workload == "h5write"
        a.rows = a.rows if a.rows is not None else (4194304 if big else 200000)
        a.parts = a.parts if a.parts is not None else (64 if big else 8)
        a.format = a.format or ("h5" if big else "npy")
        if a.rows < 0 or a.parts < 1:
            sys.exit("bench_peers: bad --rows/--parts")
    if a.chunksize is None:
        a.chunksize = 256 if a.workload == "rss" else 1
    if a.chunksize < 1:
        sys.exit("bench_peers: --chunksize must be >= 1")
    if not 0 <= a.crash_rate <= 1 or a.deadline <= 0:
        sys.exit("bench_peers: --crash-rate must be in [0, 1] and "
                 "--deadline > 0")

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
            elif a.workload in ("w4", "h5write"):
                out = run_w4(pool, a.workload, a.rows, a.parts, a.out,
                             a.format, a.sync, a.impl, a.zeros)
            elif a.workload == "map":
                out = run_map(pool, n, a.chunksize)
            elif a.workload == "rss":
                out = run_rss(pool, n, a.chunksize)
            elif a.workload == "faults":
                out = run_faults(pool, a.impl, n, a.crash_rate, a.deadline,
                                 a.progress)
                # printed before the shutdown, which a dead worker may hang
                rec = {"impl": a.impl, "workload": a.workload,
                       "variant": "", "ranks": pool.ranks,
                       "workers": pool.workers}
                rec.update(out)
                print(json.dumps(rec), flush=True)
            else:
                out = run_idle(pool, a.seconds)
    finally:
        if a.workload == "faults":
            pool.abandon()
        else:
            pool.shutdown()
    if a.workload == "faults":
        return
    if a.workload == "noop":
        out["seconds"] = time.perf_counter() - T_START

    rec = {"impl": a.impl, "workload": a.workload, "ranks": pool.ranks,
           "workers": pool.workers, "tasks": n, "seconds": None,
           "tasks_per_s": None, "p50_us": None, "p99_us": None,
           "efficiency": None}
    if a.workload == "spin":
        rec["us"] = a.us
    files = out.pop("files", [])
    rec.update(out)
    print(json.dumps(rec), flush=True)
    if not a.keep:
        for p in files:
            try:
                os.remove(p)
            except OSError:
                pass


if __name__ == "__main__":
    main()
