#!/usr/bin/python3
"""runcheck.py -- checks the -o output of mpx-run with h5py, as a user would.

  runcheck.py check CMDS F.h5 T0 T1 [EXPECT]
      F holds one row per line of the commands file CMDS, in order: seq
      1..n, the command, and exitval, signal, stdout and stderr as
      /bin/sh -c gives them when this script runs the command itself (in
      the current directory; all at once: the commands of a list are
      independent, as under mpx-run, and may sleep); outputs holding a
      NUL are stored %-escaped (%00, %25) with bit 1 (stdout) or 2
      (stderr) of `escaped` set, and decode to the same bytes; host is
      this host, starttime within [T0, T1] (epoch seconds), runtime >= 0,
      tries 1, /mpx/item_status 0.
      EXPECT (optional) also pins values: "SEQ:EXITVAL:SIGNAL,...".
  runcheck.py same A.h5 B.h5
      A and B hold the same seq, command, exitval, signal, stdout, stderr
      and escaped columns (the rest, times and hosts, may differ).
  runcheck.py pairs F.h5 N
      F holds N rows, in pairs: row 2k's command, run without the shell
      (plain words), and row 2k+1's, the same with ";" appended (run by
      the shell), gave the same exitval, signal, stdout, stderr and
      escaped.
Exit 0 when all holds, else 1 with the first difference.
"""
import os
import signal
import socket
import subprocess
import sys

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h5same import outcome  # noqa: E402

NUL = b"\0"
COLUMNS = ["seq", "command", "exitval", "signal", "stdout", "stderr", "escaped"]


def unescape(b):
    out, i = bytearray(), 0
    while i < len(b):
        if b[i:i + 3] == b"%00":
            out.append(0)
            i += 3
        elif b[i:i + 3] == b"%25":
            out.append(0x25)
            i += 3
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


def raw(v):
    return v if isinstance(v, bytes) else str(v).encode()


def start(cmd):
    """/bin/sh -c cmd started, its outputs on pipes."""
    # argv[0] "sh", as mpx-run starts it: the shell names itself so in its
    # messages ("sh: 1: x: not found")
    return subprocess.Popen(["sh", "-c", cmd], executable="/bin/sh",
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGPIPE, signal.SIG_DFL))


def finish(p):
    """exitval, signal, stdout, stderr of a command start() started."""
    out, err = p.communicate()
    rc = p.returncode
    return (rc, 0, out, err) if rc >= 0 else (0, -rc, out, err)


def check(cmds, path, t0, t1, expect):
    with open(cmds, "rb") as f:
        lines = f.read().decode().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    n = len(lines)
    host = socket.gethostname()
    ran = [finish(p) for p in [start(cmd) for cmd in lines]]
    with h5py.File(path, "r") as f:
        col = {c: f[c][()] for c in COLUMNS + ["host", "starttime", "runtime", "tries"]}
        for c, v in col.items():
            if len(v) != n:
                return f"{c}: {len(v)} rows, want {n}"
        if (f["mpx/item_status"][()] != 0).any():
            return "an item recorded as failed"
        for i, cmd in enumerate(lines):
            seq = i + 1
            if col["seq"][i] != seq:
                return f"row {i}: seq {col['seq'][i]}"
            if raw(col["command"][i]).decode() != cmd:
                return f"seq {seq}: command {col['command'][i]!r}, want {cmd!r}"
            ev, sg, out, err = ran[i]
            esc = int(col["escaped"][i])
            got_out, got_err = raw(col["stdout"][i]), raw(col["stderr"][i])
            nul = (NUL in out, NUL in err)
            if (bool(esc & 1), bool(esc & 2)) != nul:
                return f"seq {seq}: escaped {esc}, outputs with a NUL: {nul}"
            if esc & 1:
                got_out = unescape(got_out)
            if esc & 2:
                got_err = unescape(got_err)
            if (col["exitval"][i], col["signal"][i]) != (ev, sg):
                return (f"seq {seq} ({cmd}): exitval {col['exitval'][i]} signal "
                        f"{col['signal'][i]}, want {ev} {sg}")
            if got_out != out:
                return f"seq {seq} ({cmd}): stdout {got_out!r}, want {out!r}"
            if got_err != err:
                return f"seq {seq} ({cmd}): stderr {got_err!r}, want {err!r}"
            if raw(col["host"][i]).decode() != host:
                return f"seq {seq}: host {col['host'][i]!r}, want {host!r}"
            if not t0 - 0.01 <= col["starttime"][i] <= t1 + 0.01:
                return f"seq {seq}: starttime {col['starttime'][i]:.3f} outside [{t0:.3f}, {t1:.3f}]"
            if not 0 <= col["runtime"][i] <= t1 - t0 + 0.01:
                return f"seq {seq}: runtime {col['runtime'][i]}"
            if col["tries"][i] != 1:
                return f"seq {seq}: tries {col['tries'][i]}"
        for item in filter(None, expect.split(",")):
            seq, ev, sg = (int(x) for x in item.split(":"))
            if (col["exitval"][seq - 1], col["signal"][seq - 1]) != (ev, sg):
                return f"seq {seq}: exitval/signal not {ev}/{sg}"
    return None


def same(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for c in COLUMNS:
            x, y = fa[c][()], fb[c][()]
            if len(x) != len(y):
                return f"{c}: {len(x)} rows vs {len(y)}"
            for i, (u, v) in enumerate(zip(x, y)):
                if u != v:
                    return f"{c}: row {i}: {u!r} vs {v!r}"
    return None


def pairs(path, n):
    with h5py.File(path, "r") as f:
        col = {c: f[c][()] for c in COLUMNS}
    if len(col["seq"]) != n:
        return f"{len(col['seq'])} rows, want {n}"
    for i in range(0, n, 2):
        if raw(col["command"][i]) + b";" != raw(col["command"][i + 1]):
            return f"rows {i} and {i + 1} are not a pair"
        for c in ("exitval", "signal", "stdout", "stderr", "escaped"):
            u, v = col[c][i], col[c][i + 1]
            if c == "stdout" and raw(col["command"][i]).split()[0] in (b"env", b"/usr/bin/env"):
                # the same environment, in the shell's order or the caller's
                u, v = sorted(raw(u).split(b"\n")), sorted(raw(v).split(b"\n"))
            if u != v:
                return (f"{raw(col['command'][i])!r}: {c} {col[c][i]!r} "
                        f"without the shell, {col[c][i + 1]!r} with it")
    return None


def main():
    a = sys.argv[1:]
    if len(a) in (5, 6) and a[0] == "check":
        err = check(a[1], a[2], float(a[3]), float(a[4]), a[5] if len(a) == 6 else "")
    elif len(a) == 3 and a[0] == "same":
        err = same(a[1], a[2])
    elif len(a) == 3 and a[0] == "pairs":
        err = pairs(a[1], int(a[2]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return outcome("runcheck", err)


if __name__ == "__main__":
    sys.exit(main())
