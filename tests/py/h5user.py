#!/usr/bin/python3
"""h5user.py -- a user's own additions to an mpx job output, made and
checked with h5py and numpy (for tests/job/test_integrity.c).

  h5user.py add KIND F.h5 SNAP   adds KIND to F.h5, then snapshots every
                                 user object (values, dtypes, shapes,
                                 layouts, attributes) to SNAP (a pickle):
                                   norm     /norm = feature * 2, contiguous
                                   all      a contiguous float64 dataset, a
                                            chunked resizable int32 one,
                                            100 small datasets, a group
                                            with a dataset inside, and
                                            attributes on / and /feature
                                   many     100 small datasets
                                   chunked  a chunked resizable dataset
  h5user.py check F.h5 SNAP      every user object of SNAP is in F.h5,
                                 unchanged; and F.h5 holds no other
                                 object outside the job's own
  h5user.py same A.h5 B.h5       the job's datasets (feature, target,
                                 mpx/item_status, item_rows, item_offset)
                                 of A and B have equal shapes, dtypes and
                                 values
  h5user.py poke F.h5            changes feature[5, 3] in place
  h5user.py schema F.h5          /mpx has an attribute "schema" that names
                                 the job's arrays (feature, target) and no
                                 user dataset

Exit 0 when all is well, 1 with the first difference, 2 on bad usage.
"""
import pickle
import sys

import h5py
import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from h5same import differ, outcome  # noqa: E402

JOB = ["feature", "target", "mpx/item_status", "mpx/item_rows", "mpx/item_offset"]
# The job's own objects: its data sets and everything under /mpx.
JOB_TOP = {"feature", "target", "mpx"}
# Attributes the user puts on the job's objects carry this prefix; the
# job's own attributes (end_time, ...) may change on resume.
USER_ATTR = "user_"


def add_norm(f):
    f.create_dataset("norm", data=f["feature"][()] * 2)  # contiguous


def add_many(f, n=100):
    for i in range(n):
        f.create_dataset(f"u{i:03d}", data=np.arange(i, i + 5 + i % 7, dtype=np.int64) * (i + 1))


def add_chunked(f):
    rng = np.random.default_rng(7)
    d = f.create_dataset("grow", shape=(300, 8), maxshape=(None, 8), chunks=(64, 8), dtype=np.int32)
    d[:] = rng.integers(-1000, 1000, size=(300, 8), dtype=np.int32)
    d.resize((500, 8))
    d[300:] = rng.integers(-1000, 1000, size=(200, 8), dtype=np.int32)
    d.attrs["units"] = "counts"


def add_all(f):
    rng = np.random.default_rng(11)
    f.create_dataset("plain", data=rng.standard_normal((1000, 16)))  # contiguous
    add_chunked(f)
    add_many(f)
    g = f.create_group("user_group")
    g.attrs["purpose"] = "analysis"
    s = g.create_group("sub")
    s.create_dataset("labels", data=np.array(["a", "bb", "ccc"], dtype=h5py.string_dtype()))
    g.create_dataset("weights", data=rng.random(33).astype(np.float32))
    f.attrs["user_note"] = "checked by hand"
    f.attrs["user_scale"] = np.float64(2.5)
    f.attrs["user_bins"] = np.arange(12, dtype=np.int16)
    f["feature"].attrs["user_unit"] = "dB"
    f["feature"].attrs["user_range"] = np.array([-1.0, 1.0], dtype=np.float32)


ADD = {"norm": add_norm, "all": add_all, "many": add_many, "chunked": add_chunked}


def attrs_of(obj, user_only):
    out = {}
    for k in obj.attrs:
        if user_only and not k.startswith(USER_ATTR):
            continue
        v = obj.attrs[k]
        out[k] = (np.asarray(v).dtype.str, np.asarray(v).shape, np.asarray(v).tolist())
    return out


def snapshot(f):
    """Every object outside the job's, and the user attributes of / and
    of the job's datasets."""
    objs = {}

    def visit(name, o):
        if name.split("/")[0] in JOB_TOP:
            return
        if isinstance(o, h5py.Dataset):
            v = o[()]
            objs[name] = {
                "kind": "dataset",
                "dtype": o.dtype.str if o.dtype.kind != "O" else "vlen-str",
                "shape": o.shape,
                "maxshape": o.maxshape,
                "chunks": o.chunks,
                "compression": o.compression,
                "value": v.tolist() if v.dtype.kind == "O" else v,
                "attrs": attrs_of(o, False),
            }
        else:
            objs[name] = {"kind": "group", "members": sorted(o.keys()), "attrs": attrs_of(o, False)}

    f.visititems(visit)
    job_attrs = {"/": attrs_of(f, True)}
    for n in JOB:
        if n in f:
            job_attrs[n] = attrs_of(f[n], True)
    return {"objects": objs, "job_attrs": job_attrs}


def differs(a, b):
    if a.keys() != b.keys():
        return f"keys {sorted(a)} vs {sorted(b)}"
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)):
                return f"{k}: array vs non-array"
            if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y):
                return f"{k}: {x.dtype}{x.shape} vs {y.dtype}{y.shape} (or values)"
        elif isinstance(x, dict) and isinstance(y, dict):
            d = differs(x, y)
            if d:
                return f"{k}: {d}"
        elif x != y:
            return f"{k}: {x!r} vs {y!r}"
    return None


def check(path, snap):
    with open(snap, "rb") as s:
        before = pickle.load(s)
    with h5py.File(path, "r") as f:
        after = snapshot(f)
    nb, na = set(before["objects"]), set(after["objects"])
    if nb - na:
        return f"user objects gone: {sorted(nb - na)[:10]}"
    if na - nb:
        return f"objects appeared outside the job's: {sorted(na - nb)[:10]}"
    for name in sorted(nb):
        d = differs(before["objects"][name], after["objects"][name])
        if d:
            return f"user object /{name} changed: {d}"
    for name, attrs in before["job_attrs"].items():
        d = differs(attrs, after["job_attrs"].get(name, {}))
        if d:
            return f"user attributes of {name} changed: {d}"
    n = len(nb)
    na_attrs = sum(len(a) for a in before["job_attrs"].values())
    print(f"h5user: {n} user objects and {na_attrs} user attributes unchanged")
    return None


def same(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for n in JOB:
            if n not in fa or n not in fb:
                return f"{n}: missing in {a if n not in fa else b}"
            err = differ(n, fa, fb)
            if err:
                return err
    return None


def poke(path):
    with h5py.File(path, "r+") as f:
        v = f["feature"][5, 3]
        f["feature"][5, 3] = v + np.float32(0.5)
    return None


def schema(path):
    with h5py.File(path, "r") as f:
        if "mpx" not in f or "schema" not in f["mpx"].attrs:
            return "/mpx has no attribute 'schema'"
        v = f["mpx"].attrs["schema"]
        items = [v] if np.ndim(v) == 0 else list(np.ravel(v))
        text = " ".join(x.decode() if isinstance(x, bytes) else str(x) for x in items)
        for name in ("feature", "target"):
            if name not in text:
                return f"schema {text!r} does not name '{name}'"
        users = [n for n in f if n not in JOB_TOP]
        for n in users:
            if any(w.split(":")[0] == n for w in text.replace(",", " ").split()):
                return f"schema {text!r} names the user dataset '{n}'"
    print(f"h5user: schema {text!r}")
    return None


def main():
    a = sys.argv[1:]
    if len(a) == 4 and a[0] == "add" and a[1] in ADD:
        with h5py.File(a[2], "r+") as f:
            ADD[a[1]](f)
        with h5py.File(a[2], "r") as f:
            snap = snapshot(f)
        with open(a[3], "wb") as s:
            pickle.dump(snap, s)
        print(f"h5user: added {a[1]} to {a[2]}: {len(snap['objects'])} user objects")
        err = None
    elif len(a) == 3 and a[0] == "check":
        err = check(a[1], a[2])
    elif len(a) == 3 and a[0] == "same":
        err = same(a[1], a[2])
    elif len(a) == 2 and a[0] == "poke":
        err = poke(a[1])
    elif len(a) == 2 and a[0] == "schema":
        err = schema(a[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return outcome("h5user", err, f"{a[0]} ok" if a[0] in ("same", "poke") else None)


if __name__ == "__main__":
    sys.exit(main())
