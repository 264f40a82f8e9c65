"""From a layer x layer score matrix to a model pair's numbers: the best layer
pair, the aggregates, and Benjamini-Hochberg over many pairs' p-values.

Torch-free (numpy; scipy only for the ``matching`` aggregate), so that the
jobs that only read scores (the aggregate, the scorecards) start without
loading torch: each job is a fresh process. :mod:`prh.alignment` computes the
matrices and :mod:`prh.calibration` their permutation nulls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
#: ... and so is one whose chance level (the median permutation-null mean of
#: its calibrated pairs) takes this share of its scale or more
CHANCE_CEILING = 0.75


@dataclass(frozen=True)
class Saturation:
    """How close one metric's scores over a run's pairs are to its maximum.

    kNN metrics saturate when k is a large share of N: cycle_knn with k = 10
    on 80 samples has a chance level of about 0.78 of its maximum 1, and
    with fewer samples most pairs score 1. Such scores hardly tell pairs
    apart. ``kind``: "ceiling" (most pairs at the maximum: the scores say
    nothing), "chance" (chance alone reaches most of the scale) or None."""

    metric: str
    max_score: float
    at_ceiling: int  # finite scores within SATURATION_MARGIN of the maximum
    n: int  # finite scores
    chance: float  # median null mean of the calibrated pairs (NaN: none)
    low: float  # the smallest and largest finite score
    high: float

    @property
    def kind(self) -> str | None:
        if self.n and self.at_ceiling >= SATURATED_SHARE * self.n:
            return "ceiling"
        if self.chance >= CHANCE_CEILING * self.max_score:
            return "chance"
        return None

    def note(self, params: dict[str, Any] | None = None, n_samples: int | None = None) -> str:
        """One sentence for logs and the findings page ("" when not saturated)."""
        k = (params or {}).get("topk")
        setting = ", ".join(s for s in (f"N = {n_samples}" if n_samples else "",
                                        f"k = {k}" if k is not None else "") if s)
        where = f" at {setting}" if setting else ""
        fix = "use more samples or a smaller topk" if k is not None else "use more samples"
        top = f"{self.max_score:g}"
        if self.kind == "ceiling":
            return (f"{self.metric} is saturated{where}: {self.at_ceiling} of {self.n} pairs "
                    f"score within {SATURATION_MARGIN:.0%} of its maximum {top}, so its "
                    f"scores cannot tell these pairs apart; {fix}")
        if self.kind == "chance":
            return (f"{self.metric} is near saturation{where}: chance alone (the median "
                    f"permutation-null mean, {self.chance:.3g}) is {self.chance / self.max_score:.0%}"
                    f" of its maximum {top}, so its scores ({self.low:.3g} to {self.high:.3g}) "
                    f"have little room above chance and separate pairs poorly; {fix}")
        return ""


def saturation(metric: str, scores: Sequence[float], max_score: float,
               null_means: Sequence[float] = ()) -> Saturation:
    """:class:`Saturation` of one metric from its pairs' scores and, when
    calibrated, their permutation-null means (NaN entries ignored)."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    nm = np.asarray(null_means, dtype=np.float64)
    nm = nm[np.isfinite(nm)]
    return Saturation(metric, float(max_score),
                      int(np.sum(s >= (1 - SATURATION_MARGIN) * max_score)), int(s.size),
                      float(np.median(nm)) if nm.size else math.nan,
                      float(s.min()) if s.size else math.nan,
                      float(s.max()) if s.size else math.nan)
