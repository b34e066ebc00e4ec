#!/usr/bin/python3
"""numpy reference of the mpx-features domain code (apps/features/audio.c).

It decodes WAV files and computes the same 64 spectral features as the C
code, following the specification in apps/features/audio.h: frames of 512
samples with hop 256 (one zero-padded frame below 512 samples), a periodic
Hann window, the |rfft|^2 power spectrum, 32 triangular HTK-mel filters on
34 points from mel(0) to mel(rate/2), log10(E + 1e-10) per band and frame,
then the mean and the population standard deviation over frames.

The WAV parser is written here with numpy rather than the stdlib `wave`
module (which rejects float and WAVE_FORMAT_EXTENSIBLE files before Python
3.12) and mirrors the C reader rule for rule, messages included.

Usage:
  features_ref.py FILE.wav...
      print "PATH<TAB>f0 ... f63" per file ("PATH<TAB>ERROR: message" for a
      file that cannot be read); exit 1 if any file failed.
  features_ref.py --check OUT.h5 --inputs FILE...
      compare the HDF5 written by mpx-features (/feature float32 [n x 64],
      /target int32 [n], /path strings, /file_status int32 [n], /file_error
      strings; row i is input i) with this reference: files read here must
      have status 0, features within rtol 1e-4 / atol 1e-4 and the file-name
      label as target; files that fail here must have a non-zero status and
      a non-empty error. Exit 0 on a match, 1 with the differences otherwise.

Run it with /usr/bin/python3 (Debian's numpy and h5py).
"""

import os
import re
import stat
import struct
import sys

import numpy as np

NFEAT = 64
NMEL = 32
FRAME = 512
HOP = 256
RTOL = 1e-4
ATOL = 1e-4


class WavError(Exception):
    """A file the reference cannot decode or compute features for."""


def _fmt(body):
    """Parses a fmt chunk body; returns (tag, channels, rate, bytes)."""
    if len(body) < 16:
        raise WavError(f"truncated fmt chunk ({len(body)} bytes, need 16)")
    tag, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == 0xFFFE:
        if len(body) < 40 or struct.unpack_from("<H", body, 16)[0] < 22:
            raise WavError("truncated fmt chunk (extensible format without "
                           "its 22-byte extension)")
        sub = struct.unpack_from("<H", body, 24)[0]
        if sub not in (1, 3):
            raise WavError(f"unsupported extensible sub-format {sub} "
                           "(only PCM and float)")
        tag = sub
    elif tag not in (1, 3):
        raise WavError(f"unsupported format {tag} (only PCM and float)")
    if channels == 0:
        raise WavError("0 channels")
    if rate == 0 or rate > 2**31 - 1:
        raise WavError(f"invalid sample rate {rate}")
    if tag == 1 and not 1 <= bits <= 32:
        raise WavError(f"unsupported PCM sample width {bits} bits")
    if tag == 3 and bits not in (32, 64):
        raise WavError(f"unsupported float sample width {bits} bits")
    nbytes = (bits + 7) // 8
    if align != channels * nbytes:
        raise WavError(f"block align {align} does not match {channels} "
                       f"channel(s) of {nbytes} bytes")
    return tag, channels, rate, nbytes


def _decode(raw, tag, nbytes):
    """Decodes little-endian samples to float64 in the C reader's scale."""
    if tag == 3:
        return np.frombuffer(raw, "<f4" if nbytes == 4 else "<f8").astype(
            np.float64)
    if nbytes == 1:
        return (np.frombuffer(raw, np.uint8).astype(np.float64) - 128) / 128
    if nbytes == 2:
        return np.frombuffer(raw, "<i2").astype(np.float64) / 32768
    if nbytes == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        return v.astype(np.float64) / 8388608
    return np.frombuffer(raw, "<i4").astype(np.float64) / 2147483648


def _kind(mode):
    """The kind of a file that is not a regular one, as the C reader says."""
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "unknown file type"


def read_wav(path):
    """Returns (mono float32 samples, rate) or raises WavError.

    Like the C reader it opens without blocking and reads regular files
    only, so a FIFO among the inputs fails here too instead of hanging."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise WavError(f"cannot open: {e.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise WavError(f"not a regular file ({_kind(mode)})")
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as f:
            buf = f.read()
    except OSError as e:
        raise WavError(f"cannot read: {e.strerror}") from None
    finally:
        os.close(fd)
    if not buf:
        raise WavError("empty file")
    if len(buf) < 12:
        if buf[:4] == b"RIFF"[:len(buf)]:
            raise WavError(f"truncated RIFF header ({len(buf)} bytes)")
        raise WavError("not a RIFF/WAVE file")
    if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    fmt = data = None
    pos = 12
    while pos + 8 <= len(buf):
        cid = buf[pos:pos + 4]
        size = struct.unpack_from("<I", buf, pos + 4)[0]
        body = pos + 8
        avail = len(buf) - body
        take = min(size, avail)  # clamp oversized (streamed) chunks
        if fmt is None and cid == b"fmt ":
            fmt = _fmt(buf[body:body + take])
        elif data is None and cid == b"data":
            data = buf[body:body + take]
        if size >= avail:
            break
        pos = body + size + (size & 1)
    if fmt is None:
        raise WavError("no fmt chunk before the end of file" if data is not None
                       else "no fmt chunk")
    if data is None:
        raise WavError("no data chunk")
    tag, channels, rate, nbytes = fmt
    count = len(data) // (channels * nbytes)
    if count == 0:
        raise WavError("0 samples")
    v = _decode(data[:count * channels * nbytes], tag, nbytes)
    v = v.reshape(count, channels)
    mono = v[:, 0] if channels == 1 else v.sum(axis=1) / channels
    return mono.astype(np.float32), rate


def mel_bank(rate):
    """The 32 x 257 triangular filter weights at the bin frequencies."""
    lo = 2595.0 * np.log10(1.0)
    hi = 2595.0 * np.log10(1.0 + rate / 2.0 / 700.0)
    j = np.arange(NMEL + 2, dtype=np.float64)
    h = 700.0 * (10.0 ** ((lo + j * (hi - lo) / (NMEL + 1)) / 2595.0) - 1.0)
    f = np.arange(FRAME // 2 + 1, dtype=np.float64) * rate / FRAME
    k = np.arange(NMEL)[:, None]
    up = (f - h[k]) / (h[k + 1] - h[k])
    down = (h[k + 2] - f) / (h[k + 2] - h[k + 1])
    return np.maximum(0.0, np.minimum(up, down))


def features(x, rate):
    """The 64 features of float32 samples x at rate (float32 array)."""
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    n = len(x)
    if n == 0:
        raise WavError("0 samples")
    if rate <= 0:
        raise WavError(f"invalid sample rate {rate}")
    bad = np.flatnonzero(~np.isfinite(x))
    if len(bad):
        raise WavError(f"sample {bad[0]} is not finite")
    if n < FRAME:
        frames = np.zeros((1, FRAME))
        frames[0, :n] = x
    else:
        nf = 1 + (n - FRAME) // HOP
        idx = np.arange(FRAME)[None, :] + HOP * np.arange(nf)[:, None]
        frames = x[idx]
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(FRAME) / FRAME)
    spec = np.fft.rfft(frames * w, axis=1)
    power = spec.real ** 2 + spec.imag ** 2
    logs = np.log10(power @ mel_bank(rate).T + 1e-10)
    return np.concatenate([logs.mean(axis=0), logs.std(axis=0)]).astype(
        np.float32)


def file_features(path):
    """read_wav followed by features."""
    x, rate = read_wav(path)
    return features(x, rate)


def target_from_path(path):
    """Leading digits of the basename before '_', else -1."""
    m = re.match(r"([0-9]+)_", os.path.basename(path))
    if not m or int(m.group(1)) > 2**31 - 1:
        return -1
    return int(m.group(1))


def _text(v):
    """An HDF5 string (bytes, str or numpy scalar) as str."""
    if isinstance(v, (bytes, np.bytes_)):
        return v.decode("utf-8", "replace")
    return str(v)


def check(h5path, inputs):
    """Compares the app's HDF5 output with the reference; returns 0 or 1."""
    import h5py

    problems = []
    with h5py.File(h5path, "r") as f:
        for name in ("feature", "target", "path", "file_status", "file_error"):
            if name not in f:
                print(f"check: {h5path} has no /{name} dataset")
                return 1
        feat = f["feature"][()]
        target = f["target"][()]
        paths = [_text(p) for p in f["path"][()]]
        status = f["file_status"][()]
        errors = [_text(e) for e in f["file_error"][()]]
    n = len(inputs)
    if feat.dtype != np.float32 or feat.shape != (n, NFEAT):
        problems.append(f"/feature is {feat.dtype} {feat.shape}, want "
                        f"float32 ({n}, {NFEAT})")
    for name, arr in (("target", target), ("file_status", status)):
        if arr.dtype != np.int32 or arr.shape != (n,):
            problems.append(f"/{name} is {arr.dtype} {arr.shape}, want "
                            f"int32 ({n},)")
    for name, arr in (("path", paths), ("file_error", errors)):
        if len(arr) != n:
            problems.append(f"/{name} has {len(arr)} entries, want {n}")
    if problems:
        print("check: FAILED\n  " + "\n  ".join(problems))
        return 1

    max_diff, nok, nfail = 0.0, 0, 0
    for i, path in enumerate(inputs):
        if paths[i] != path and os.path.realpath(paths[i]) != os.path.realpath(
                path):
            problems.append(f"row {i}: /path is {paths[i]!r}, input is "
                            f"{path!r}")
        try:
            ref = file_features(path)
        except WavError as e:
            nfail += 1
            if status[i] == 0:
                problems.append(f"row {i} ({path}): status 0 but the "
                                f"reference cannot read it ({e})")
            elif not errors[i].strip():
                problems.append(f"row {i} ({path}): status {status[i]} with "
                                "an empty error message")
            continue
        nok += 1
        if status[i] != 0:
            problems.append(f"row {i} ({path}): status {status[i]} "
                            f"({errors[i]!r}) but the reference reads it")
            continue
        got = feat[i].astype(np.float64)
        diff = np.abs(got - ref.astype(np.float64))
        max_diff = max(max_diff, float(np.max(diff)))
        if not np.allclose(got, ref, rtol=RTOL, atol=ATOL):
            j = int(np.argmax(diff))
            problems.append(f"row {i} ({path}): features differ, worst "
                            f"feature {j}: app {got[j]:.7g}, reference "
                            f"{ref[j]:.7g} (|diff| {diff[j]:.3g})")
        want = target_from_path(path)
        if target[i] != want:
            problems.append(f"row {i} ({path}): target {target[i]}, want "
                            f"{want}")
    if problems:
        print(f"check: FAILED, {len(problems)} problem(s) over {n} rows:")
        for p in problems[:30]:
            print("  " + p)
        if len(problems) > 30:
            print(f"  ... and {len(problems) - 30} more")
        return 1
    print(f"check: OK, {n} rows ({nok} read, {nfail} failed as expected), "
          f"max |feature diff| {max_diff:.3g}")
    return 0


def main(argv):
    """Command-line entry point (see the module docstring)."""
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    if argv[0] == "--check":
        if len(argv) < 3 or argv[2] != "--inputs":
            print("usage: features_ref.py --check OUT.h5 --inputs FILE...",
                  file=sys.stderr)
            return 2
        return check(argv[1], argv[3:])
    rc = 0
    for path in argv:
        try:
            row = file_features(path)
        except WavError as e:
            print(f"{path}\tERROR: {e}")
            rc = 1
            continue
        print(path + "\t" + " ".join(f"{v:.9g}" for v in row))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
