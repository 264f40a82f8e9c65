"""From a layer x layer score matrix to a model pair's numbers: the best layer
pair, the aggregates, and Benjamini-Hochberg over many pairs' p-values.

Torch-free (numpy; scipy only for the ``matching`` aggregate), so that the
jobs that only read scores (the aggregate, the scorecards) start without
loading torch: each job is a fresh process. :mod:`prh.alignment` computes the
matrices and :mod:`prh.calibration` their permutation nulls.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np


def best_layer_pair(S: Any) -> tuple[float, tuple[int, int]]:
    """The largest score of a layer x layer matrix and its (i, j); ties go to the
    first in row-major order. NaN entries are ignored."""
    s = np.asarray(S, dtype=np.float64)
    if s.ndim != 2 or s.size == 0:
        raise ValueError(f"S must be a non-empty 2-D matrix of scores, got shape {s.shape}")
    if np.isnan(s).all():
        raise ValueError("S holds only NaN scores; there is no best layer pair")
    flat = int(np.nanargmax(s))
    i, j = divmod(flat, s.shape[1])
    return float(s[i, j]), (i, j)


def _matching(s: np.ndarray) -> float:
    # scipy costs a fraction of a second to import; only this aggregate needs it
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(s, maximize=True)
    return float(s[rows, cols].mean())


AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "max": lambda s: float(np.max(s)),                       # the paper's choice
    "mean": lambda s: float(np.mean(s)),                     # every layer pair alike
    "row_max_mean": lambda s: float(np.mean(np.max(s, axis=1))),  # each X layer's best match
    "matching": _matching,                                   # best one-to-one layer matching
}


def aggregate(S: np.ndarray, how: str = "max") -> float:
    """One number for a layer x layer score matrix."""
    if how not in AGGREGATES:
        raise ValueError(f"unknown aggregate {how!r}; choose one of {', '.join(AGGREGATES)}")
    return AGGREGATES[how](np.asarray(S, dtype=np.float64))


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate); NaN stays NaN."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if not ok.any():
        return out
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    vals = p[ok]
    m = vals.size
    order = np.argsort(vals)
    scaled = vals[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1].clip(max=1.0)
    res = np.empty(m)
    res[order] = adjusted
    out[ok] = res
    return out


#: a score within this fraction of its metric's maximum is at the ceiling
SATURATION_MARGIN = 0.01
#: a metric with at least this share of its pairs at the ceiling is saturated
SATURATED_SHARE = 0.5


def saturation(scores: Sequence[float], max_score: float) -> tuple[int, int]:
    """(scores at the ceiling, finite scores) of one metric over a run's pairs.

    kNN metrics saturate when k is a large share of N (cycle_knn with k = 10
    on 80 samples is 1 for almost every pair): their scores no longer tell
    pairs apart. :func:`saturated` says whether it is most of them."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    return int(np.sum(s >= (1 - SATURATION_MARGIN) * max_score)), int(s.size)


def saturated(at_ceiling: int, n: int) -> bool:
    return n > 0 and at_ceiling >= SATURATED_SHARE * n


def saturation_note(metric: str, at_ceiling: int, n: int, max_score: float,
                    params: dict[str, Any] | None = None, n_samples: int | None = None) -> str:
    """One sentence on a saturated metric, for logs and the findings page."""
    k = (params or {}).get("topk")
    setting = ", ".join(s for s in (f"N = {n_samples}" if n_samples else "",
                                    f"k = {k}" if k is not None else "") if s)
    fix = "use more samples or a smaller topk" if k is not None else "use more samples"
    return (f"{metric} is saturated: {at_ceiling} of {n} pairs score within "
            f"{SATURATION_MARGIN:.0%} of its maximum {max_score:g}"
            f"{f' ({setting})' if setting else ''}, so it cannot tell these pairs apart; "
            f"{fix}")
