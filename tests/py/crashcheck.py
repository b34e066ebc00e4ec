#!/usr/bin/python3
"""crashcheck.py -- checks with h5py and numpy the output of a W4 job whose
chosen parts crashed (tests/job/w4job.c --crash-parts), as a user would.

  crashcheck.py N K F.h5 SPEC

F holds the W4 workload over range(N) split into K parts (np.array_split),
SPEC is w4job's --crash-parts (P:HOW,...; "-" for none) and names the parts
that must be recorded as failed:
  segv   status MPX_ECRASHED (-24), error naming SIGSEGV
  abort  status MPX_ECRASHED (-24), error naming SIGABRT
  exit   status MPX_EEXIT (-25), error naming exit(0)
  hang   status MPX_ETIMELIMIT (-26), error naming the time limit
Every other part must be recorded as successful (status 0, no error) with
its rows, and feature/target must hold exactly the rows of the successful
parts, in part order, as numpy computes W4 (h5same.py's w4). Exit 0 when
all holds, else 1 with the first difference.
"""
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h5same import outcome  # noqa: E402

EXPECT = {
    "segv": (-24, "SIGSEGV"),
    "abort": (-24, "SIGABRT"),
    "exit": (-25, "exit(0)"),
    "hang": (-26, "time limit"),
}


def parse_spec(spec):
    crashes = {}
    if spec == "-":
        return crashes
    for item in spec.split(","):
        p, how = item.split(":")
        crashes[int(p)] = EXPECT[how]
    return crashes


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def check(n, k, path, crashes):
    parts = np.array_split(np.arange(n), k)
    ok = [p for j, p in enumerate(parts) if j not in crashes]
    i = np.concatenate(ok) if ok else np.arange(0)
    feature = np.sin(0.001 * i[:, None] + 0.1 * np.arange(64)[None, :]).astype(np.float32)
    target = (i % 7).astype(np.int32)
    with h5py.File(path, "r") as f:
        status = f["mpx/item_status"][()]
        errors = f["mpx/item_error"][()]
        rows = f["mpx/item_rows"][()]
        off = f["mpx/item_offset"][()]
        if not (len(status) == len(errors) == len(rows) == len(off) == k):
            return f"{len(status)} items recorded, want {k}"
        for j in range(k):
            want, cause = crashes.get(j, (0, None))
            if status[j] != want:
                return f"part {j}: status {status[j]}, want {want}"
            msg = text(errors[j])
            if cause is None and msg:
                return f"part {j}: succeeded with an error message '{msg}'"
            if cause is not None and cause not in msg:
                return f"part {j}: error '{msg}' does not name '{cause}'"
            nrows = 0 if cause else len(parts[j])
            if rows[j] != nrows:
                return f"part {j}: {rows[j]} rows, want {nrows}"
        if not np.array_equal(off, np.concatenate([[0], np.cumsum(rows)[:-1]])):
            return "item_offset is not the running sum of item_rows"
        if f["feature"].dtype != np.float32 or f["target"].dtype != np.int32:
            return "wrong dtypes"
        if f["feature"].shape != feature.shape or f["target"].shape != target.shape:
            return f"feature {f['feature'].shape}, target {f['target'].shape}, want {feature.shape}, {target.shape}"
        if not np.array_equal(f["feature"][()], feature):
            return "feature differs from numpy's W4 rows of the successful parts"
        if not np.array_equal(f["target"][()], target):
            return "target differs from numpy's W4 rows of the successful parts"
        if f.attrs["items"] != k or not f.attrs["end_time"]:
            return "attributes incomplete"
        if f.attrs["failed"] != len(crashes):
            return f"attribute failed = {f.attrs['failed']}, want {len(crashes)}"
    return None


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        crashes = parse_spec(sys.argv[4])
    except (ValueError, KeyError):
        print(f"crashcheck: bad SPEC '{sys.argv[4]}'", file=sys.stderr)
        return 2
    err = check(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], crashes)
    return outcome("crashcheck", err)


if __name__ == "__main__":
    sys.exit(main())
