"""Blob envelope encryption (transitions/crypto/blobs.py): throughput ÷ one-shot AES-256-GCM; peak extra memory.

1. Throughput, at 16 MiB and 64 MiB of os.urandom data (one process, interleaved B, A1, A2, B, A1, A2, ...):
   B  = cryptography's AESGCM.encrypt + decrypt of the whole buffer with one nonce (the floor: one AEAD pass each
        way, one output allocation each way, no chunking, no envelope);
   A1 = BlobCipher.encrypt + BlobCipher.decrypt (bytes in, bytes out);
   A2 = BlobCipher.encrypt_stream + decrypt_stream between io.BytesIO objects (CPU only, no disk); each
        destination BytesIO starts at its final size, so its own growth is not charged to the cipher. Reading
        from and writing to a BytesIO still copies every chunk once each way, which B does not do.
   The figure is the throughput ratio, B time ÷ A time per pair, so higher is better: goal ≥ 0.8 (alarm < 0.6).
   Each ratio is given as the median of the per-pair ratios with a distribution-free confidence interval for that
   median (order statistics of the binomial; about 96% at n=15, and min–max below n=6, where no 95% interval
   exists), plus min–max.
2. Peak EXTRA memory ÷ blob size, each figure from its own fresh subprocess (so no earlier peak or allocator
   state leaks into it), measured two ways:
   - tracemalloc: every allocation made through Python's allocators, which includes the bytes objects that
     cryptography returns; it does not see OpenSSL's own mallocs or the interpreter's fixed costs;
   - peak resident set of the whole process minus VmRSS just before the operation, after the peak counter has
     been reset by writing "5" to /proc/self/clear_refs (Linux). It sees everything, OpenSSL included, but counts
     whole pages and whatever the C allocator keeps mapped. The peak is read from VmHWM in /proc/self/status,
     not from getrusage's ru_maxrss: ru_maxrss is max(VmHWM, the RSS the process had when it called exec), and a
     child forked from this benchmark inherits the parent's RSS (hundreds of MiB after the throughput part) as
     that pre-exec figure. ru_maxrss is kept in the JSON for reference.
   The verdict uses the larger of the two. Operations (N = blob size):
   - stream round trip: file → encrypt_stream → encrypted file → decrypt_stream → decrypted file, all on disk in
     a temporary folder. Goal ≤ 1.2 × N (alarm > 2.0). Streaming should hold a few chunks whatever the blob
     size: here 3 × 1 MiB (the chunk being sealed or opened, the next one read ahead, and the result).
   - in-memory encrypt (input bytes already held) and in-memory decrypt (blob bytes already held), and one-shot
     AESGCM encrypt / decrypt as their floor. The output itself is N, so 1.0 is the floor here; this is
     reported, with no goal.
   Every decrypted output is checked against the original.

    .venv/bin/python bench/b_blob_crypto.py [--n 15] [--warmup 2] [--sizes 16,64] [--only speed|memory]
"""

from __future__ import annotations

import argparse
import filecmp
import io
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ratio import interleaved, summarise, verdict  # noqa: E402

SPEED_TARGET, SPEED_ALARM = 0.8, 0.6  # throughput ratio, ours ÷ one-shot AES-GCM: higher is better
STREAM_MEM_TARGET, STREAM_MEM_ALARM = 1.2, 2.0  # peak extra memory of the stream round trip ÷ blob size
SIZES_MIB = (16, 64)
MIB = 1024 * 1024
CONTEXT = "bench|blob|1"
KEK = bytes(range(32))  # the keyring's master key: fixed, so child processes can read the parent's blobs
AEAD_KEY = bytes(range(32, 64))
AEAD_NONCE = bytes(12)  # one fixed nonce for the baseline: acceptable in a benchmark only, never in code
MEMORY_OPS = ("stream-roundtrip", "memory-encrypt", "memory-decrypt", "oneshot-encrypt", "oneshot-decrypt")
METHODS = ("tracemalloc", "rss")


def _cipher() -> Any:
    from transitions.crypto import BlobCipher, Keyring

    return BlobCipher(Keyring(keys={"k1": KEK}, active_id="k1"))


def median_ci(values: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """Distribution-free interval for the median from order statistics: [x_(k), x_(n+1-k)] with the largest k
    whose coverage 1 - 2·P(Bin(n, ½) < k) is still ≥ `confidence`; min–max (and its coverage) if none is."""
    xs = sorted(values)
    n = len(xs)

    def coverage(k: int) -> float:  # P(x_(k) <= median <= x_(n+1-k))
        return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / (1 << n)

    k = 1
    while k + 1 <= (n + 1) // 2 and coverage(k + 1) >= confidence:
        k += 1
    return {"low": xs[k - 1], "high": xs[n - k], "coverage": coverage(k)}


def verdict_at_least(median: float, target: float, alarm: float) -> str:
    """For "higher is better" ratios: ok, under-target, or ALARM."""
    if median < alarm:
        return "ALARM"
    if median < target:
        return "under target"
    return "ok"


# ---- 1. throughput ------------------------------------------------------------------------------------------


def run_speed_size(size_mib: int, n: int = 15, warmup: int = 2) -> dict[str, Any]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    size = size_mib * MIB
    data = os.urandom(size)
    cipher = _cipher()
    aead = AESGCM(AEAD_KEY)

    # Correctness, once and untimed: every path gives back the same bytes, and both blob forms are identical in
    # length (the stream form is the documented format too).
    blob = cipher.encrypt(data, context=CONTEXT)
    assert cipher.decrypt(blob, context=CONTEXT) == data
    enc = io.BytesIO()
    cipher.encrypt_stream(io.BytesIO(data), enc, context=CONTEXT)
    assert len(enc.getvalue()) == len(blob)
    enc.seek(0)
    dec = io.BytesIO()
    cipher.decrypt_stream(enc, dec, context=CONTEXT)
    assert dec.getvalue() == data
    blob_len = len(blob)
    assert aead.decrypt(AEAD_NONCE, aead.encrypt(AEAD_NONCE, data, None), None) == data
    del blob, enc, dec

    def oneshot() -> None:
        sealed = aead.encrypt(AEAD_NONCE, data, None)
        assert len(aead.decrypt(AEAD_NONCE, sealed, None)) == size

    def in_memory() -> None:
        sealed = cipher.encrypt(data, context=CONTEXT)
        assert len(cipher.decrypt(sealed, context=CONTEXT)) == size

    def streaming() -> None:
        # Both destinations are pre-sized: a BytesIO that grows reallocates as it goes, and below glibc's mmap
        # threshold (which rises to the size of the last big buffer freed, so 16 MiB but not 64 MiB) each
        # reallocation copies, which cost about 10 ms per 16 MiB here. That is BytesIO's cost, not the cipher's.
        sealed = io.BytesIO(bytes(blob_len))
        cipher.encrypt_stream(io.BytesIO(data), sealed, context=CONTEXT)
        assert sealed.tell() == blob_len
        sealed.seek(0)
        opened = io.BytesIO(bytes(size))
        cipher.decrypt_stream(sealed, opened, context=CONTEXT)
        assert opened.tell() == size

    base, mem, stream = interleaved([oneshot, in_memory, streaming], n, warmup)
    results = {}
    for key, label, ours in (("memory", "encrypt + decrypt", mem),
                             ("stream", "encrypt_stream + decrypt_stream", stream)):
        rr = [b / a for a, b in zip(ours, base, strict=True)]
        med = statistics.median(rr)
        results[key] = {
            "name": f"blob {label}, {size_mib} MiB: throughput ÷ one-shot AES-GCM",
            "n": n,
            "a_med": statistics.median(ours),
            "b_med": statistics.median(base),
            "ratio": summarise(rr),
            "ci": median_ci(rr),
            "better": "higher",
            "target": SPEED_TARGET,
            "alarm": SPEED_ALARM,
            "verdict": verdict_at_least(med, SPEED_TARGET, SPEED_ALARM),
            "bytes": size,
            "throughput_mb_s": {"a": 2 * size / statistics.median(ours) / 1e6,
                                "b": 2 * size / statistics.median(base) / 1e6},
            "pairs": [{"a": a, "b": b, "ratio": r} for a, b, r in zip(ours, base, rr, strict=True)],
            "unit": "s per round trip; ratio = B time ÷ A time (throughput ratio)",
        }
    return results


def run_speed(n: int = 15, warmup: int = 2, sizes: Sequence[int] = SIZES_MIB) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for size_mib in sizes:
        for key, value in run_speed_size(size_mib, n, warmup).items():
            results[f"blob_speed_{key}_{size_mib}MiB"] = value
    return results


# ---- 2. peak extra memory, one fresh subprocess per figure -----------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS
    except OSError:
        return False
    return True


def _child(op: str, method: str, folder: Path) -> dict[str, Any]:
    """Runs in a fresh interpreter: one operation, one way of measuring its peak extra memory."""
    import gc
    import resource
    import tracemalloc

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cipher = _cipher()
    aead = AESGCM(AEAD_KEY)
    # Warm up the same code paths on 64 KiB, so one-off set-up (key derivation, OpenSSL contexts, imports) is not
    # charged to the operation.
    small = os.urandom(64 * 1024)
    assert cipher.decrypt(cipher.encrypt(small, context=CONTEXT), context=CONTEXT) == small
    warm = io.BytesIO()
    cipher.encrypt_stream(io.BytesIO(small), warm, context=CONTEXT)
    warm.seek(0)
    cipher.decrypt_stream(warm, io.BytesIO(), context=CONTEXT)
    aead.decrypt(AEAD_NONCE, aead.encrypt(AEAD_NONCE, small, None), None)
    del small, warm

    held: bytes = b""  # the input an in-memory operation starts from: not counted as extra
    if op in ("memory-encrypt", "oneshot-encrypt"):
        held = (folder / "plain.bin").read_bytes()
    elif op == "memory-decrypt":
        held = (folder / "blob.bin").read_bytes()
    elif op == "oneshot-decrypt":
        held = (folder / "oneshot.bin").read_bytes()
    gc.collect()

    reset, hwm_before = True, 0
    if method == "tracemalloc":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    else:
        reset = _reset_peak_rss()
        before = _status_kib("VmRSS") * 1024
        hwm_before = _status_kib("VmHWM") * 1024

    out: bytes = b""
    if op == "stream-roundtrip":
        with open(folder / "plain.bin", "rb") as src, open(folder / "stream.enc", "wb") as dst:
            cipher.encrypt_stream(src, dst, context=CONTEXT)
        with open(folder / "stream.enc", "rb") as src, open(folder / "stream.dec", "wb") as dst:
            cipher.decrypt_stream(src, dst, context=CONTEXT)
    elif op == "memory-encrypt":
        out = cipher.encrypt(held, context=CONTEXT)
    elif op == "memory-decrypt":
        out = cipher.decrypt(held, context=CONTEXT)
    elif op == "oneshot-encrypt":
        out = aead.encrypt(AEAD_NONCE, held, None)
    elif op == "oneshot-decrypt":
        out = aead.decrypt(AEAD_NONCE, held, None)
    else:
        raise ValueError(op)

    if method == "tracemalloc":
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        slack = maxrss = 0
    else:
        # VmHWM, not ru_maxrss: getrusage reports max(VmHWM, the RSS the process had when it exec'd), and a child
        # forked from this (large) benchmark process inherits the parent's RSS as that pre-exec figure.
        peak = _status_kib("VmHWM") * 1024
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux; for the JSON only
        slack = hwm_before - before  # > 0 only if the peak could not be reset: the figure may then be low
    if op.endswith("decrypt"):
        assert out == (folder / "plain.bin").read_bytes(), op
    elif op.endswith("encrypt"):
        assert len(out) == (folder / ("blob.bin" if op.startswith("memory") else "oneshot.bin")).stat().st_size
    return {"op": op, "method": method, "extra": peak - before, "reset": reset, "slack": slack, "ru_maxrss": maxrss}


def _measure(op: str, method: str, folder: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", op, method, str(folder)],
                          cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {op} {method} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run_memory_size(size_mib: int) -> dict[str, Any]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    size = size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="bench-blob-crypto-") as tmp:
        folder = Path(tmp)
        with open(folder / "plain.bin", "wb") as plain:
            for _ in range(size_mib):
                plain.write(os.urandom(MIB))
        with open(folder / "plain.bin", "rb") as src, open(folder / "blob.bin", "wb") as dst:
            _cipher().encrypt_stream(src, dst, context=CONTEXT)
        (folder / "oneshot.bin").write_bytes(AESGCM(AEAD_KEY).encrypt(AEAD_NONCE, (folder / "plain.bin").read_bytes(),
                                                                     None))
        figures: dict[str, dict[str, Any]] = {}
        for op in MEMORY_OPS:
            figures[op] = {}
            for method in METHODS:
                m = _measure(op, method, folder)
                if op == "stream-roundtrip":
                    assert filecmp.cmp(folder / "plain.bin", folder / "stream.dec", shallow=False)
                    assert (folder / "stream.enc").stat().st_size == (folder / "blob.bin").stat().st_size
                    (folder / "stream.dec").unlink()
                figures[op][method] = {"extra_bytes": m["extra"], "ratio": m["extra"] / size, "reset": m["reset"],
                                       "slack_bytes": m["slack"], "ru_maxrss_bytes": m["ru_maxrss"]}
    stream = max(figures["stream-roundtrip"][m]["ratio"] for m in METHODS)
    return {
        "name": f"stream round trip on disk, {size_mib} MiB: peak extra memory ÷ blob",
        "bytes": size,
        "value": stream,
        "better": "lower",
        "target": STREAM_MEM_TARGET,
        "alarm": STREAM_MEM_ALARM,
        "verdict": verdict(stream, STREAM_MEM_TARGET, STREAM_MEM_ALARM),
        "figures": figures,
        "unit": "bytes; ratio = peak extra ÷ blob size (max of tracemalloc and VmHWM − VmRSS for the verdict)",
    }


def run_memory(sizes: Sequence[int] = SIZES_MIB) -> dict[str, Any]:
    return {f"blob_peak_{size_mib}MiB": run_memory_size(size_mib) for size_mib in sizes}


# ---- both -------------------------------------------------------------------------------------------------------


def run(n: int = 15, warmup: int = 2, sizes: Sequence[int] = SIZES_MIB, only: str | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if only in (None, "speed"):
        results.update(run_speed(n, warmup, sizes))
    if only in (None, "memory"):
        results.update(run_memory(sizes))
    return results


def report_speed(result: dict[str, Any]) -> str:
    r, ci, tp = result["ratio"], result["ci"], result["throughput_mb_s"]
    return (f"{result['name']}: median {r['median']:.3f}, {ci['coverage']:.0%} CI [{ci['low']:.3f}–{ci['high']:.3f}], "
            f"min–max [{r['min']:.3f}–{r['max']:.3f}] (n={result['n']})  goal ≥ {result['target']} "
            f"(alarm < {result['alarm']})  [{result['verdict']}]\n"
            f"  round trip median {result['a_med'] * 1e3:.1f} ms ({tp['a']:.0f} MB/s) vs one-shot "
            f"{result['b_med'] * 1e3:.1f} ms ({tp['b']:.0f} MB/s)")


def _mem_cell(figure: dict[str, Any]) -> str:
    note = "" if figure["reset"] and figure["slack_bytes"] <= 0 else " (peak not reset: may be low)"
    return f"{figure['ratio']:.3f} ({figure['extra_bytes'] / MIB:.1f} MiB){note}"


def report_memory(result: dict[str, Any]) -> str:
    lines = [f"{result['name']}: {result['value']:.3f}  goal ≤ {result['target']} (alarm > {result['alarm']})  "
             f"[{result['verdict']}]",
             f"  peak extra ÷ {result['bytes'] // MIB} MiB, one fresh process each: tracemalloc | VmHWM − VmRSS"]
    floors = {"stream-roundtrip": "goal ≤ 1.2", "memory-encrypt": "floor 1.0 (the output)",
              "memory-decrypt": "floor 1.0 (the output)", "oneshot-encrypt": "AESGCM floor",
              "oneshot-decrypt": "AESGCM floor"}
    for op, figures in result["figures"].items():
        lines.append(f"  {op:<17} {_mem_cell(figures['tracemalloc']):>16} | {_mem_cell(figures['rss']):>16}   "
                     f"{floors[op]}")
    return "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    return "\n".join(report_speed(r) if "ratio" in r else report_memory(r) for r in results.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES_MIB), help="MiB, comma-separated")
    parser.add_argument("--only", choices=("speed", "memory"), default=None)
    parser.add_argument("--child", nargs=3, metavar=("OP", "METHOD", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        op, method, folder = args.child
        print(json.dumps(_child(op, method, Path(folder))))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(report(run(args.n, args.warmup, sizes, args.only)))


if __name__ == "__main__":
    main()
