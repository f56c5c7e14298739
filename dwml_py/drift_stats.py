"""Drift statistics over binned distributions: the numbers, kept apart from how the bins are
counted (in the warehouse, by SQL) so each can be checked on its own.

Every function takes the reference and current *counts* over the same bins, as the warehouse
returns them; the tests compare each with scipy/numpy on the same bins.

Conventions (documented defaults, after common practice in credit-risk and ML monitoring):

* PSI: sum over bins of (c - r) * ln(c / r) with the shares r, c of each bin; an empty bin's
  share is floored at `PSI_FLOOR` (1e-4) so the sum stays finite. >= 0.1 moderate, >= 0.25 major.
* Jensen-Shannon *distance* (the square root of the divergence) with base 2, so it lies in
  [0, 1]; >= 0.1 counts as drift.
* Wasserstein-1 between the two binned distributions placed at the same support points
  (the bins' representative values), divided by the reference's standard deviation so it is
  unit-free; >= 0.1 counts as drift.
* KS: the largest gap between the two cumulative distributions at the bin edges. With one bin
  per distinct value this is exactly the two-sample KS statistic; with quantile bins it is a
  lower bound of it.

>>> round(psi([50, 50], [50, 50]), 12)
0.0
>>> round(ks_statistic([1, 1, 0, 0], [0, 0, 1, 1]), 3)
1.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PSI_FLOOR = 1e-4


def _shares(counts: Sequence[float]) -> np.ndarray:
    values = np.asarray(counts, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("counts must be a non-empty 1-d sequence")
    if np.any(values < 0):
        raise ValueError("counts must not be negative")
    total = values.sum()
    if total <= 0:
        raise ValueError("counts must not all be zero")
    return values / total


def _same_length(reference, current) -> tuple[np.ndarray, np.ndarray]:
    r, c = _shares(reference), _shares(current)
    if len(r) != len(c):
        raise ValueError(f"reference has {len(r)} bins but current has {len(c)}")
    return r, c


def psi(reference_counts: Sequence[float], current_counts: Sequence[float], floor: float = PSI_FLOOR) -> float:
    """Population stability index of two binned distributions."""
    r, c = _same_length(reference_counts, current_counts)
    r = np.maximum(r, floor)
    c = np.maximum(c, floor)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two categorical distributions."""
    r, c = _same_length(reference_counts, current_counts)
    m = (r + c) / 2

    def kl(p, q):
        mask = p > 0
        return float(np.sum(p[mask] * np.log2(p[mask] / q[mask])))

    divergence = (kl(r, m) + kl(c, m)) / 2
    return float(np.sqrt(max(divergence, 0.0)))


def ks_statistic(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """Largest gap between the cumulative distributions over the bins."""
    r, c = _same_length(reference_counts, current_counts)
    return float(np.max(np.abs(np.cumsum(r) - np.cumsum(c))))


def wasserstein(support: Sequence[float], reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """Wasserstein-1 distance of two distributions over the same sorted support points."""
    x = np.asarray(support, dtype=float)
    r, c = _same_length(reference_counts, current_counts)
    if len(x) != len(r):
        raise ValueError(f"{len(x)} support points for {len(r)} bins")
    if np.any(np.diff(x) < 0):
        raise ValueError("support points must be sorted")
    gaps = np.abs(np.cumsum(r) - np.cumsum(c))[:-1]
    return float(np.sum(gaps * np.diff(x)))


def normalised_wasserstein(support, reference_counts, current_counts, reference_std: float) -> float:
    """Wasserstein-1 divided by the reference's standard deviation (0 when that is 0 and nothing moved)."""
    distance = wasserstein(support, reference_counts, current_counts)
    if not reference_std or not np.isfinite(reference_std):
        return 0.0 if distance == 0 else float("inf")
    return distance / reference_std


def unseen_share(reference_categories: Sequence[str], current_counts_by_category: dict) -> float:
    """Share of current rows whose category the reference never saw."""
    known = set(reference_categories)
    total = sum(current_counts_by_category.values())
    if total <= 0:
        return 0.0
    return sum(n for cat, n in current_counts_by_category.items() if cat not in known) / total


def severity(value: float, moderate: float, major: float | None = None) -> str:
    """none / moderate / major for a value against its thresholds."""
    if major is not None and value >= major:
        return "major"
    if value >= moderate:
        return "moderate"
    return "none"
