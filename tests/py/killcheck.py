#!/usr/bin/python3
"""killcheck.py -- checks outputs of jobs killed at a write and resumed.

  killcheck.py REF.h5 OUT.h5...
      every OUT holds what REF (an uninterrupted run) holds: the same
      datasets and values (h5same.py's comparison, strings included), no
      input recorded as failed (/mpx/item_error all empty), the closing
      attributes of a finished file (end_time, rows, failed), and one
      readable line per run in /mpx/runs ("<time> host=... pid=<n> ...",
      recorded=<n> never past the job's inputs).
Prints one line per OUT that differs; exit 0 when none does, else 1.
"""
import os
import re
import sys

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h5same import same  # noqa: E402

ROWS = "target"  # a result dataset of w4job's
RUN = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ host=\S+ pid=\d+ .*recorded=(\d+) ")


def check(ref, out):
    err = same(ref, out)
    if err:
        return err
    with h5py.File(out, "r") as f:
        errors = f["mpx/item_error"][()]
        if any(e != b"" for e in errors):
            return f"item_error holds {[e for e in errors if e != b''][:3]}"
        end = f.attrs.get("end_time", b"")
        if not end or (f.attrs.get("rows"), f.attrs.get("failed")) != (len(f[ROWS]), 0):
            return f"closing attributes: end_time {end!r} rows {f.attrs.get('rows')} failed {f.attrs.get('failed')}"
        items = len(f["mpx/item_status"])
        runs = f["mpx/runs"][()]
        if len(runs) == 0:
            return "no /mpx/runs line"
        for i, r in enumerate(runs):
            m = RUN.match(r)
            if not m:
                return f"/mpx/runs row {i} reads {r[:60]!r}"
            if int(m.group(1)) > items:
                return f"/mpx/runs row {i} says recorded={m.group(1)} of {items} inputs"
    return None


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    ref, bad = sys.argv[1], 0
    for out in sys.argv[2:]:
        try:
            err = check(ref, out)
        except Exception as e:  # a file HDF5 cannot read is a failure too
            err = f"cannot be read: {e}"

        if err:
            bad += 1
            print(f"killcheck: {out}: {err}")
    print(f"killcheck: {len(sys.argv) - 2 - bad} of {len(sys.argv) - 2} outputs equal the reference")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
