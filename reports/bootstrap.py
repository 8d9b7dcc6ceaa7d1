"""Paired bootstrap confidence interval for the difference of two models' mean per-item outcome.

Two models evaluated on the same benchmark items give paired outcomes ``a[i]``, ``b[i]`` (e.g. 1/0 for a
correct EgoMCQ answer, the AP of one EK100-MIR query). The statistic is the mean paired difference
``mean(a − b)``; its sampling distribution is estimated by resampling *items* with replacement (the same
resampled items for both models, which is what pairing means: item difficulty cancels), and the interval is
the percentile interval of the resampled statistics (Efron & Tibshirani 1993, ch. 13). An interval that
excludes 0 says the difference is unlikely to be an accident of which items the benchmark happens to hold;
it says nothing about training noise (seeds), which needs repeated runs.

Resampling is vectorised in chunks (at most ~4 M indices at a time) with a seeded ``numpy`` generator, so a
result is reproducible and memory stays small for 10⁴ resamples of 10⁵ items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from henasy.core.errors import BenchError

CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class BootstrapCI:
    """Mean paired difference ``mean(a − b)`` and its percentile interval."""

    diff: float
    low: float
    high: float
    n: int
    n_boot: int
    confidence: float
    seed: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def scaled(self, factor: float) -> BootstrapCI:
        """The same interval in other units (e.g. ×100 for fractions shown as percentages)."""
        return BootstrapCI(
            self.diff * factor,
            self.low * factor,
            self.high * factor,
            self.n,
            self.n_boot,
            self.confidence,
            self.seed,
        )


def _as_pair(a: Any, b: Any) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise BenchError(
            f"paired bootstrap needs two 1-D arrays of equal length, got {a.shape} and {b.shape}"
        )
    if a.size == 0:
        raise BenchError("paired bootstrap needs at least one paired item")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise BenchError("paired bootstrap got NaN/inf outcomes; drop those items first")
    return a - b  # (N,) paired differences


def _resampled_means(d: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot,) means of ``d`` over item sets drawn with replacement, in chunks of ~4 M indices."""
    n = d.size
    stats = np.empty(n_boot)
    chunk = max(1, CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))  # (chunk, N) resampled item indices
        stats[start:stop] = d[idx].mean(axis=1)
    return stats


def paired_bootstrap_strata(
    pairs: list[tuple[Any, Any]],
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapCI:
    """Interval of the mean over strata of ``mean(a_k − b_k)``, resampling items within each stratum.

    One stratum is the plain paired bootstrap; several serve metrics that average item sets of different
    kinds with equal weight (EK100-MIR ``mAP_avg`` = mean of the video→text and text→video mAPs; EGTEA's
    mean over splits): each stratum's items are resampled on their own (a stratified bootstrap).
    """
    if not pairs:
        raise BenchError("paired bootstrap needs at least one stratum of paired items")
    if n_boot < 1 or not 0 < confidence < 1:
        raise BenchError(f"need n_boot >= 1 and 0 < confidence < 1, got {n_boot} and {confidence}")
    diffs = [_as_pair(a, b) for a, b in pairs]
    rng = np.random.default_rng(seed)
    stats = np.mean([_resampled_means(d, n_boot, rng) for d in diffs], axis=0)  # (n_boot,)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    diff = float(np.mean([d.mean() for d in diffs]))
    return BootstrapCI(diff, float(low), float(high), sum(d.size for d in diffs), n_boot, confidence, seed)


def paired_bootstrap(
    a: Any,
    b: Any,
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapCI:
    """Percentile bootstrap interval of ``mean(a − b)`` over paired items (``a[i]`` and ``b[i]`` pair up)."""
    return paired_bootstrap_strata([(a, b)], n_boot=n_boot, confidence=confidence, seed=seed)
