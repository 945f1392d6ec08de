"""Seeded percentile-bootstrap confidence intervals: for means of per-image values and for set metrics.

Images are resampled with replacement; for set metrics (FID, KID) the same resampled ids index both
the predictions and their GT (paired design), so the interval reflects which images were drawn.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap_mean_ci(values, resamples: int = 1000, level: float = 0.95, seed: int = 0) -> tuple:
    """(low, high, level) percentile interval of the mean. inf/nan values propagate into the bounds."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2 or resamples <= 0:
        mean = float(values.mean()) if values.size else float("nan")
        return (mean, mean, level)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 256):  # chunks bound memory for large N
        stop = min(resamples, start + 256)
        idx = rng.integers(0, values.size, size=(stop - start, values.size))
        with np.errstate(invalid="ignore"):
            means[start:stop] = values[idx].mean(axis=1)
    alpha = (1.0 - level) / 2
    with np.errstate(invalid="ignore"):
        low, high = np.quantile(means, [alpha, 1 - alpha])
    return (float(low), float(high), level)


def bootstrap_statistic_ci(
    n: int, statistic: Callable[[np.ndarray], float], resamples: int = 100, level: float = 0.95, seed: int = 0
) -> tuple:
    """Percentile interval of statistic(idx) over `resamples` draws of n ids with replacement."""
    if n < 2 or resamples <= 0:
        return None
    rng = np.random.default_rng(seed)
    stats = np.array([statistic(rng.integers(0, n, size=n)) for _ in range(resamples)])
    alpha = (1.0 - level) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return (float(low), float(high), level)
