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

from collections.abc import Iterator
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


def _index_chunks(n: int, n_boot: int, rng: np.random.Generator) -> Iterator[tuple[int, int, np.ndarray]]:
    """(start, stop, idx) for resamples ``start:stop`` of ``n`` items, in chunks of ~4 M indices.

    ``idx`` is (stop − start, n): the item indices each resample draws with replacement. Every resampling
    function draws through here, so one seed gives the same item sets to all of them.
    """
    chunk = max(1, CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        yield start, stop, rng.integers(0, n, size=(stop - start, n))  # (chunk, N) resampled item indices


def _resampled_means(d: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot,) means of ``d`` over item sets drawn with replacement, in chunks of ~4 M indices."""
    stats = np.empty(n_boot)
    for start, stop, idx in _index_chunks(d.size, n_boot, rng):
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
    low, high = percentile_interval(stats, confidence)
    diff = float(np.mean([d.mean() for d in diffs]))
    return BootstrapCI(diff, low, high, sum(d.size for d in diffs), n_boot, confidence, seed)


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


def _resampled_row_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, R) means of each row of ``x`` (R, N) over item sets drawn with replacement, shared by all rows.

    Draws the indices ``_resampled_means`` draws (both go through ``_index_chunks``), turns each
    resample into item counts (``bincount``) and takes every row's mean with one matrix product, so R rows
    cost about as much as one.
    """
    r, n = x.shape
    out = np.empty((n_boot, r))
    for start, stop, idx in _index_chunks(n, n_boot, rng):  # idx: (m, N) resampled item indices
        m = stop - start
        flat = (idx + (np.arange(m) * n)[:, None]).ravel()  # (m·N,) index into a flattened (m, N) table
        counts = np.bincount(flat, minlength=m * n).reshape(m, n).astype(np.float64)  # (m, N) draws per item
        out[start:stop] = counts @ x.T / n  # (m, R)
    return out


def bootstrap_row_means(
    strata: list[Any], *, n_boot: int = 10_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(observed (R,), resampled (n_boot, R)) statistics of R rows evaluated on the same items.

    ``strata[k]`` is an (R, N_k) array: row r's outcome on item i of stratum k (the same item in the same
    column for every row). The statistic is the mean over strata of the per-stratum item means (one stratum:
    the plain mean). Items are resampled within each stratum, identically for every row, so the difference
    of two rows' resampled statistics is their paired bootstrap (``paired_bootstrap_strata`` draws the same
    indices with the same seed). Percentiles of a column give that row's interval.
    """
    if not strata:
        raise BenchError("bootstrap needs at least one stratum of items")
    if n_boot < 1:
        raise BenchError(f"need n_boot >= 1, got {n_boot}")
    arrays = [np.asarray(s, dtype=np.float64) for s in strata]
    rows = arrays[0].shape[0] if arrays[0].ndim == 2 else -1
    for a in arrays:
        if a.ndim != 2 or a.shape[0] != rows or a.shape[1] == 0:
            raise BenchError(f"every stratum must be an (R, N>0) array with the same R, got {a.shape}")
        if not np.isfinite(a).all():
            raise BenchError("bootstrap got NaN/inf outcomes; drop those items first")
    rng = np.random.default_rng(seed)
    resampled = np.mean([_resampled_row_means(a, n_boot, rng) for a in arrays], axis=0)  # (n_boot, R)
    observed = np.mean([a.mean(axis=1) for a in arrays], axis=0)  # (R,)
    return observed, resampled


def percentile_interval(stats: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The percentile interval (Efron & Tibshirani 1993, ch. 13) of resampled statistics ``stats`` (n_boot,)."""
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)
