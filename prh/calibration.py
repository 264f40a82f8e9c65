"""Calibrated alignment: permutation nulls, p-values, bootstrap intervals, BH.

A raw score means little alone: its chance level moves with N, k, the feature
dimension and the number of layer pairs an aggregate maximises over. Here the
null is built the honest way: permute the sample order of one model (the same
permutation for all of its layers), recompute the whole layer x layer matrix
and the same aggregate, K times. Permuting samples only relabels kNN lists and
permutes kernels, so nothing per layer is recomputed
(:func:`prh.alignment.permuted_sweeps`).

From the null: p = (1 + #{null >= s}) / (K + 1); tau = the
ceil((1 - alpha)(K + 1))-th smallest of the null values together with s; the
calibrated score clip((s - tau) / (s_max - tau), 0, 1), with s_max the
metric's maximum (k for lcs_knn, else 1).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .alignment import ModelStats, permuted_sweep, sweep
from .checks import check_float, check_int
from .metrics import get_metric, resolve_params

MIN_RESAMPLES = 20


def _matching(s: np.ndarray) -> float:
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


def _check_aggregates(aggregates: Iterable[str]) -> tuple[str, ...]:
    out = tuple(aggregates)
    for how in out:
        if how not in AGGREGATES:
            raise ValueError(f"unknown aggregate {how!r}; choose one of {', '.join(AGGREGATES)}")
    if not out:
        raise ValueError("aggregates is empty; name at least one of " + ", ".join(AGGREGATES))
    return out


def check_alpha(alpha: Any) -> float:
    alpha = check_float(alpha, "alpha", low=0.0, low_open=True)
    if alpha >= 1.0:
        raise ValueError(f"alpha={alpha!r} is out of range: it must be in (0, 1)")
    return alpha


@dataclass(frozen=True)
class Calibration:
    """A score against its permutation null."""

    score: float
    p_value: float
    tau: float
    calibrated: float
    null_mean: float
    null_std: float
    n_permutations: int
    alpha: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def calibrate(score: float, null: Sequence[float], *, alpha: float = 0.05,
              s_max: float = 1.0) -> Calibration:
    """p-value, threshold tau and calibrated score of ``score`` given its null values."""
    alpha = check_alpha(alpha)
    null = np.asarray(null, dtype=np.float64)
    k = null.size
    if k < MIN_RESAMPLES:
        raise ValueError(
            f"the null has {k} values; a permutation test needs n_permutations >= {MIN_RESAMPLES}"
        )
    p = (1 + int(np.sum(null >= score))) / (k + 1)
    together = np.sort(np.append(null, score))
    rank = math.ceil((1 - alpha) * (k + 1))
    tau = float(together[min(rank, k + 1) - 1])
    calibrated = 0.0 if s_max <= tau else float(np.clip((score - tau) / (s_max - tau), 0.0, 1.0))
    return Calibration(float(score), p, tau, calibrated, float(null.mean()),
                       float(null.std(ddof=1)), k, alpha)


def sample_permutations(n: int, k: int, seed: int) -> np.ndarray:
    """(k, n) seeded, reproducible permutations of n samples."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n) for _ in range(k)])


Orders = list[tuple[str, str, dict]]  # (order "xy" or "yx", metric, resolved params)


def _orders(sx: ModelStats, metrics: Mapping[str, Mapping[str, Any]], both_orders: bool) -> Orders:
    """Every (order, metric) to score: asymmetric metrics in both orders when asked."""
    out = []
    for name, params in metrics.items():
        p = resolve_params(name, dict(params or {}), n=sx.n)
        out.append(("xy", name, p))
        if both_orders and not get_metric(name).symmetric:
            out.append(("yx", name, p))
    return out


def _pair(sx, sy, order):
    return (sx, sy) if order == "xy" else (sy, sx)


def null_distributions(sx: ModelStats, sy: ModelStats, metrics: Mapping[str, Mapping[str, Any]], *,
                       n_permutations: int = 200, seed: int = 0,
                       aggregates: Iterable[str] = ("max",), both_orders: bool = False,
                       progress: Callable[[Iterable], Iterable] | None = None,
                       ) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Permutation nulls of several metrics at once: {(order, metric): {aggregate: (K,)}}.

    Each permutation reorders the second model's samples (Y for "xy", X for
    "yx": either way the pairing is broken the same way) and is shared by all
    metrics, so kernels permuted for one CKA variant serve the other.
    """
    hows = _check_aggregates(aggregates)
    k = check_int(n_permutations, "n_permutations", low=MIN_RESAMPLES)
    todo = _orders(sx, metrics, both_orders)
    perms = torch.from_numpy(sample_permutations(sx.n, k, seed)).to(sx.device)
    out = {(o, m): {how: np.empty(k) for how in hows} for o, m, _ in todo}
    for i, perm in enumerate(progress(perms) if progress else perms):
        for order, metric, p in todo:
            s = permuted_sweep(*_pair(sx, sy, order), metric, perm, p)
            for how in hows:
                out[(order, metric)][how][i] = aggregate(s, how)
    return out


def bootstrap_intervals(sx: ModelStats, sy: ModelStats, metrics: Mapping[str, Mapping[str, Any]], *,
                        n_boot: int = 200, seed: int = 0, level: float = 0.95,
                        aggregates: Iterable[str] = ("max",), both_orders: bool = False,
                        progress: Callable[[Iterable], Iterable] | None = None,
                        ) -> dict[tuple[str, str], dict[str, tuple[float, float]]]:
    """Percentile bootstrap intervals: {(order, metric): {aggregate: (low, high)}}.

    Each replicate draws N samples with replacement for both models alike
    (pairs stay pairs) and serves every metric; Gram matrices are gathered, kNN
    lists searched again with copies of a sample excluded from its neighbours.
    """
    hows = _check_aggregates(aggregates)
    b = check_int(n_boot, "n_boot", low=MIN_RESAMPLES)
    level = check_float(level, "level", low=0.0, high=1.0, low_open=True)
    todo = _orders(sx, metrics, both_orders)
    rng = np.random.default_rng(seed)
    values = {(o, m): {how: np.empty(b) for how in hows} for o, m, _ in todo}
    draws = [torch.from_numpy(rng.integers(0, sx.n, size=sx.n)) for _ in range(b)]
    for i, idx in enumerate(progress(draws) if progress else draws):
        rx, ry = sx.resample(idx), sy.resample(idx)
        for order, metric, p in todo:
            s = sweep(*_pair(rx, ry, order), metric, **p)
            for how in hows:
                values[(order, metric)][how][i] = aggregate(s, how)
    tail = 100 * (1 - level) / 2
    return {key: {how: (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail)))
                  for how, v in per.items()}
            for key, per in values.items()}


def permutation_null(sx: ModelStats, sy: ModelStats, metric: str, *,
                     n_permutations: int = 200, seed: int = 0,
                     aggregates: Iterable[str] = ("max",), **params: Any) -> dict[str, np.ndarray]:
    """One metric's null: {aggregate: (K,) array}."""
    return null_distributions(sx, sy, {metric: params}, n_permutations=n_permutations,
                              seed=seed, aggregates=aggregates)[("xy", metric)]


def bootstrap(sx: ModelStats, sy: ModelStats, metric: str, *, n_boot: int = 200,
              seed: int = 0, level: float = 0.95, aggregates: Iterable[str] = ("max",),
              **params: Any) -> dict[str, tuple[float, float]]:
    """One metric's percentile bootstrap intervals: {aggregate: (low, high)}."""
    return bootstrap_intervals(sx, sy, {metric: params}, n_boot=n_boot, seed=seed, level=level,
                               aggregates=aggregates)[("xy", metric)]


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


def calibrate_pair(sx: ModelStats, sy: ModelStats, metrics: Mapping[str, Mapping[str, Any]], *,
                   aggregates: Iterable[str] = ("max",), n_permutations: int = 200,
                   n_boot: int = 200, alpha: float = 0.05, seed: int = 0, both_orders: bool = True,
                   progress: Callable[[Iterable], Iterable] | None = None,
                   ) -> dict[tuple[str, str], tuple[np.ndarray, dict[str, dict[str, float]]]]:
    """Scores of one model pair with every metric, each calibrated against its null.

    Returns {(order, metric): (S, {aggregate: row})}, order "xy" for every
    metric and "yx" for asymmetric ones (when ``both_orders``); a row holds
    score, p_value, tau, calibrated, null_mean, null_std, n_permutations,
    alpha, ci_low and ci_high (NaN when n_boot is 0), and ``null``, the (K,)
    null values of the aggregate.
    """
    hows = _check_aggregates(aggregates)
    alpha = check_alpha(alpha)
    todo = _orders(sx, metrics, both_orders)
    nulls = null_distributions(sx, sy, metrics, n_permutations=n_permutations, seed=seed,
                               aggregates=hows, both_orders=both_orders, progress=progress)
    cis = (bootstrap_intervals(sx, sy, metrics, n_boot=n_boot, seed=seed + 1, aggregates=hows,
                               both_orders=both_orders, progress=progress) if n_boot else {})
    out = {}
    for order, metric, p in todo:
        S = sweep(*_pair(sx, sy, order), metric, **p)
        s_max = get_metric(metric).max_score(**p)
        rows = {}
        for how in hows:
            row = calibrate(aggregate(S, how), nulls[(order, metric)][how], alpha=alpha,
                            s_max=s_max).as_dict()
            row["ci_low"], row["ci_high"] = cis.get((order, metric), {}).get(how, (math.nan, math.nan))
            row["null"] = nulls[(order, metric)][how]
            rows[how] = row
        out[(order, metric)] = (S, rows)
    return out


def calibrated_scores(sx: ModelStats, sy: ModelStats, metric: str, *,
                      aggregates: Iterable[str] = ("max",), n_permutations: int = 200,
                      n_boot: int = 0, alpha: float = 0.05, seed: int = 0,
                      **params: Any) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
    """One metric in the X-Y order: (S, {aggregate: row}); see :func:`calibrate_pair`."""
    return calibrate_pair(sx, sy, {metric: params}, aggregates=aggregates,
                          n_permutations=n_permutations, n_boot=n_boot, alpha=alpha,
                          seed=seed, both_orders=False)[("xy", metric)]


def sample_size_curve(sx: ModelStats, sy: ModelStats, metric: str, sizes: Iterable[int], *,
                      how: str = "max", n_permutations: int = 200, alpha: float = 0.05,
                      seed: int = 0, **params: Any) -> list[dict[str, float]]:
    """Aggregate score and its null on nested, seeded subsets of the samples.

    The subsets grow along one random order, so each contains the smaller
    ones, and a curve that still climbs at the largest size says more samples
    would move the score.
    """
    _check_aggregates([how])
    sizes = sorted({check_int(n, "sample size", low=4, high=sx.n) for n in sizes})
    order = torch.from_numpy(np.random.default_rng(seed).permutation(sx.n))
    rows = []
    for n in sizes:
        idx = order[:n]
        rx, ry = sx.resample(idx), sy.resample(idx)
        p = resolve_params(metric, params, n=n)
        S = sweep(rx, ry, metric, **p)
        null = permutation_null(rx, ry, metric, n_permutations=n_permutations, seed=seed,
                                aggregates=[how], **p)[how]
        cal = calibrate(aggregate(S, how), null, alpha=alpha,
                        s_max=get_metric(metric).max_score(**p))
        rows.append({"n": n, **cal.as_dict()})
    return rows
