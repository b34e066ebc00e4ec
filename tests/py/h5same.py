#!/usr/bin/python3
"""h5same.py -- checks mpx job outputs with h5py and numpy, as a user would.

  h5same.py A.h5 B.h5     every dataset of A (data and /mpx/item_status,
                          item_rows, item_offset) equals B's: same shape,
                          dtype and values; exit 0, else 1 with the first
                          difference
  h5same.py --w4 N F.h5   F holds the W4 workload over range(N) exactly as
                          numpy computes it: feature[i, j] =
                          float32(sin(0.001 i + 0.1 j)), target = i % 7,
                          and the /mpx records are consistent
"""
import sys

import h5py
import numpy as np

COMPARED = ["mpx/item_status", "mpx/item_rows", "mpx/item_offset"]


def datasets(f):
    names = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return sorted(n for n in names if not n.startswith("mpx/")) + COMPARED


def differ(n, fa, fb):
    """How dataset n of the open file fa differs from fb's (shape, dtype or
    the first differing value), or None when they are equal."""
    x, y = fa[n][()], fb[n][()]
    if x.shape != y.shape or x.dtype != y.dtype:
        return f"{n}: {x.shape} {x.dtype} vs {y.shape} {y.dtype}"
    if not np.array_equal(x, y):
        i = np.argwhere(x != y)[0]
        return f"{n}: first difference at {tuple(i)}"
    return None


def same(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        na, nb = datasets(fa), datasets(fb)
        if na != nb:
            return f"datasets differ: {na} vs {nb}"
        for n in na:
            err = differ(n, fa, fb)
            if err:
                return err
    return None


def w4(n, path):
    i = np.arange(n)
    feature = np.sin(0.001 * i[:, None] + 0.1 * np.arange(64)[None, :]).astype(np.float32)
    target = (i % 7).astype(np.int32)
    with h5py.File(path, "r") as f:
        if f["feature"].dtype != np.float32 or f["target"].dtype != np.int32:
            return "wrong dtypes"
        if not np.array_equal(f["feature"][()], feature):
            return f"feature differs from numpy ({f['feature'].shape})"
        if not np.array_equal(f["target"][()], target):
            return "target differs from numpy"
        rows = f["mpx/item_rows"][()]
        off = f["mpx/item_offset"][()]
        if rows.sum() != n or not np.array_equal(off, np.concatenate([[0], np.cumsum(rows)[:-1]])):
            return "item_rows/item_offset inconsistent"
        if (f["mpx/item_status"][()] != 0).any():
            return "failed items recorded"
        if f.attrs["items"] != len(rows) or not f.attrs["end_time"]:
            return "attributes incomplete"
    return None


def outcome(tool, err, ok="ok"):
    """The exit status of a check: 1 after printing "tool: err" when err is
    set, else 0 after printing "tool: ok" (nothing when ok is None)."""
    if err:
        print(f"{tool}:", err)
        return 1
    if ok is not None:
        print(f"{tool}: {ok}")
    return 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--w4":
        err = w4(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 3:
        err = same(sys.argv[1], sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return outcome("h5same", err)


if __name__ == "__main__":
    sys.exit(main())
