"""Paired (interleaved) timing: the only kind of figure worth quoting on a shared, noisy machine.

performance.md §2 and §5.1: run A and B alternately (A, B, A, B, ...), divide each A by the B measured right
next to it, and report the median of those per-pair ratios. Drift in machine load between runs then cancels
out, because both sides of each pair saw (nearly) the same load.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def interleaved(funcs: Sequence[Callable[[], object]], n: int, warmup: int = 1) -> list[list[float]]:
    """Call every function once per round, in order, for `warmup` untimed rounds then `n` timed rounds.

    Returns one list of wall-clock seconds per function (index i of each list = round i).
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    for _ in range(warmup):
        for f in funcs:
            f()
    samples: list[list[float]] = [[] for _ in funcs]
    for _ in range(n):
        for i, f in enumerate(funcs):
            t0 = time.perf_counter()
            f()
            samples[i].append(time.perf_counter() - t0)
    return samples


def summarise(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def ratios(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Median/min/max of the per-pair ratio a_i / b_i, plus each side's median (seconds)."""
    rr = [x / y for x, y in zip(a, b, strict=True)]
    return {
        "n": len(rr),
        "a_med": statistics.median(a),
        "b_med": statistics.median(b),
        "ratio": summarise(rr),
        "pairs": [{"a": x, "b": y, "ratio": r} for x, y, r in zip(a, b, rr, strict=True)],
    }


def paired(fa: Callable[[], object], fb: Callable[[], object], n: int = 7, warmup: int = 1) -> dict[str, Any]:
    """Run A and B alternately; return median/min/max of the per-pair ratio A/B and each side's median."""
    sa, sb = interleaved([fa, fb], n, warmup)
    return ratios(sa, sb)


def fmt_ratio(result: dict[str, Any]) -> str:
    r = result["ratio"]
    return f"median {r['median']:.3f} [{r['min']:.3f}–{r['max']:.3f}] (n={result['n']})"


def verdict(median: float, target: float, alarm: float) -> str:
    """For "lower is better" ratios: ok, over-target, or ALARM."""
    if median > alarm:
        return "ALARM"
    if median > target:
        return "over target"
    return "ok"
