#!/usr/bin/python3
"""guard_h5.py -- h5py checks for the job_guard test (tests/job/test_guard.c).

  guard_h5.py runs F.h5 N       /mpx/runs is a 1-D string dataset of N
                                non-empty rows (one per run that did work);
                                prints them
  guard_h5.py gzip F.h5 LEVEL   /feature and /target are gzip-compressed at
                                LEVEL (0: not compressed at all)

Exit 0 when the check holds, else 1 with the reason.
"""
import sys

import h5py

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from h5same import outcome  # noqa: E402


def text(v):
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def runs(path, n):
    with h5py.File(path, "r") as f:
        if "mpx/runs" not in f:
            return "no dataset /mpx/runs"
        d = f["mpx/runs"]
        if not isinstance(d, h5py.Dataset) or d.ndim != 1:
            return f"/mpx/runs is not a 1-D dataset: {d}"
        if d.dtype.kind not in "SOU" and h5py.check_string_dtype(d.dtype) is None:
            return f"/mpx/runs is not a string dataset ({d.dtype})"
        rows = [text(v) for v in d[()]]
        for i, r in enumerate(rows):
            print(f"  /mpx/runs[{i}]: {r}")
        if len(rows) != n:
            return f"/mpx/runs has {len(rows)} rows, want {n}"
        if any(not r.strip() for r in rows):
            return "/mpx/runs has an empty row"
    return None


def gzip(path, level):
    with h5py.File(path, "r") as f:
        for name in ("feature", "target"):
            d = f[name]
            if level == 0:
                if d.compression is not None:
                    return f"/{name} is compressed ({d.compression})"
            elif d.compression != "gzip" or d.compression_opts != level:
                return (f"/{name}: compression {d.compression} "
                        f"{d.compression_opts}, want gzip {level}")
    return None


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "runs":
        err = runs(a[1], int(a[2]))
    elif len(a) == 3 and a[0] == "gzip":
        err = gzip(a[1], int(a[2]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return outcome("guard_h5", err)


if __name__ == "__main__":
    sys.exit(main())
