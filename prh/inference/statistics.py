"""The rows of the statistics tables, read from one set of shared resamples
(:class:`~prh.inference.resampling.PairReplicates`): normal intervals of
every pair's score, paired differences of two pairs, and the trend of
alignment with competence; and the one-call forms that draw the resamples
first (:func:`score_intervals`, :func:`compare_pairs`,
:func:`competence_trend`)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..checks import check_float
from ..metric_info import METRICS
from ..sweep.cache import LayerCache
from .pairs import check_aggregates
from .resampling import PairReplicates, pair_replicates


def _coverage(metric: str, method: str, count: int) -> str:
    """What the simulation says of this interval: the metric's measured
    verdict for its own scheme, "not measured" for any other."""
    if (method, count) != METRICS[metric].interval:
        return "not measured"
    return METRICS[metric].interval_coverage


def interval_rows(rep: PairReplicates, *, level: float = 0.95) -> list[dict[str, Any]]:
    """One row per pair, order, metric and aggregate: x, y, order, metric,
    aggregate, score, se, low, high (score +- t se), method, n_resamples.
    ``order`` is "xy", "yx" or, for an asymmetric metric scored both ways,
    also "mean": the mean of both orders (what the competence figure plots),
    with its own interval (not the mean of the two intervals)."""
    level = check_float(level, "level", low=0.0, high=1.0, low_open=True)
    rows = []
    for (x, y, order, metric), per in rep.full.items():
        meth, r = rep.method(metric)
        orders = [order]
        if order == "yx":
            orders.append("mean")
        for o in orders:
            for how in per:
                if o == "mean":
                    score, reps = rep.value(x, y, metric, how)
                else:
                    score, reps = per[how], rep.reps[(x, y, order, metric)][how]
                se, low, high, _ = rep.interval(metric, score, reps, level)
                rows.append({"x": x, "y": y, "order": o, "metric": metric, "aggregate": how,
                             "score": score, "se": se, "low": low, "high": high,
                             "method": meth, "n_resamples": r,
                             "coverage": _coverage(metric, meth, r)})
    return rows


Comparison = tuple[tuple[str, str], tuple[str, str]]


def comparison_rows(rep: PairReplicates, comparisons: Sequence[Comparison], *,
                    aggregate_how: str = "max", level: float = 0.95) -> list[dict[str, Any]]:
    """Paired differences score(pair_a) - score(pair_b), one row per comparison
    and metric: pair_a, pair_b, metric, aggregate, score_a, score_b,
    difference, se, low, high, p_value (two-sided, normal: difference = 0),
    method, n_resamples. Both pairs were re-scored on the same resamples, so
    the difference's se holds their covariance."""
    level = check_float(level, "level", low=0.0, high=1.0, low_open=True)
    check_aggregates([aggregate_how])
    rows = []
    for metric in rep.schemes:
        meth, r = rep.method(metric)
        for a, b in comparisons:
            sa, ra = rep.value(*a, metric, aggregate_how)
            sb, rb = rep.value(*b, metric, aggregate_how)
            se, low, high, p = rep.interval(metric, sa - sb, ra - rb, level)
            rows.append({"pair_a": tuple(a), "pair_b": tuple(b), "metric": metric,
                         "aggregate": aggregate_how, "score_a": sa, "score_b": sb,
                         "difference": sa - sb, "se": se, "low": low, "high": high,
                         "p_value": p, "method": meth, "n_resamples": r})
    return rows


def _spearman(c: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of competence c (M,) with each row of s (..., M)."""
    from scipy.stats import rankdata

    rc = rankdata(c)
    rs = rankdata(s, axis=-1)
    rc, rs = rc - rc.mean(), rs - rs.mean(axis=-1, keepdims=True)
    den = np.sqrt((rc**2).sum() * (rs**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rs * rc).sum(axis=-1) / np.where(den > 0, den, 1), 0.0)


def _slope(c: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Least-squares slope of each row of s (..., M) on competence c (M,)."""
    cc = c - c.mean()
    return ((s - s.mean(axis=-1, keepdims=True)) * cc).sum(axis=-1) / (cc**2).sum()


TREND_STATISTICS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "spearman": _spearman, "slope": _slope,
}


def check_trend(models: Sequence[str], competence: Sequence[float],
                partners: Sequence[str]) -> np.ndarray:
    """The competence values of a trend, checked: >= 3 models, not all equal."""
    c = np.asarray(competence, dtype=np.float64)
    if len(models) < 3 or c.shape != (len(models),):
        raise ValueError(f"a trend needs >= 3 models with one competence each; got "
                         f"{len(models)} models and {c.size} competence values")
    if np.ptp(c) == 0:
        raise ValueError("competence is the same for every model; there is no trend to test")
    if not partners:
        raise ValueError("partners is empty; name at least one model of the other modality")
    return c


def trend_rows(rep: PairReplicates, models: Sequence[str], competence: Sequence[float],
               partners: Sequence[str], *, aggregate_how: str = "max",
               level: float = 0.95) -> list[dict[str, Any]]:
    """Does alignment rise with competence? Per partner and pooled, two statistics.

    ``models`` (one modality, M >= 3) with their ``competence`` are paired with
    each of ``partners`` (pairs (model, partner) in ``rep``). For each
    partner: the Spearman rank correlation of score with competence and the
    least-squares slope of score on competence; pooled: the mean of the
    partners' statistics (for the slope, the fit with one intercept per
    partner). All pairs share the resamples, so the se holds the covariance of
    scores that share samples and models.

    Each row: metric, aggregate, partner ("pooled" for all), statistic,
    estimate, se, low, high, p_value (two-sided normal, estimate = 0: the
    sample noise), p_models (permutation of the competence labels: exact over
    the M! orderings up to M = 8, else 10,000 seeded ones with the identity
    among them: could the models' order alone give this?),
    n_models, method, n_resamples. With few models a rank correlation can be
    the same on every resample: then se is 0 and only p_models is informative.
    """
    from itertools import permutations as orderings

    level = check_float(level, "level", low=0.0, high=1.0, low_open=True)
    check_aggregates([aggregate_how])
    models, partners = list(models), list(partners)
    c = check_trend(models, competence, partners)
    m = len(models)
    if m <= 8:
        perms = list(orderings(range(m)))
    else:  # Monte Carlo: the identity and 9,999 seeded orderings
        rng = np.random.default_rng(0)
        perms = [tuple(range(m))] + [tuple(rng.permutation(m)) for _ in range(9_999)]
    rows = []
    for metric in rep.schemes:
        meth, r = rep.method(metric)
        vals = [[rep.value(m, p, metric, aggregate_how) for m in models] for p in partners]
        s = np.array([[v[0] for v in row] for row in vals])                    # (P, M)
        reps = np.stack([np.stack([v[1] for v in row], -1) for row in vals], 1)  # (R, P, M)
        for name, fn in TREND_STATISTICS.items():
            est = fn(c, s)
            rv = fn(c, reps)
            null = np.array([fn(c[list(o)], s) for o in perms])
            cols = [(p, est[i], rv[:, i], null[:, i]) for i, p in enumerate(partners)]
            cols.append(("pooled", est.mean(), rv.mean(axis=1), null.mean(axis=1)))
            for partner, e, reps_e, nv in cols:
                se, low, high, p = rep.interval(metric, float(e), reps_e, level)
                if name == "spearman":  # a correlation's interval ends at +-1
                    low, high = max(low, -1.0), min(high, 1.0)
                p_models = float(np.mean(np.abs(nv) >= abs(e) - 1e-12))
                rows.append({"metric": metric, "aggregate": aggregate_how,
                             "partner": partner, "statistic": name, "estimate": float(e),
                             "se": se, "low": low, "high": high, "p_value": p,
                             "p_models": p_models, "n_models": len(models),
                             "method": meth, "n_resamples": r})
    return rows


def score_intervals(sx: LayerCache, sy: LayerCache, metrics: Mapping[str, Mapping[str, Any]], *,
                    method: str = "auto", n_resamples: int | None = None, seed: int = 0,
                    level: float = 0.95, aggregates: Iterable[str] = ("max",),
                    both_orders: bool = False, blocks: Sequence[Any] | None = None,
                    progress: Callable[[Iterable], Iterable] | None = None,
                    ) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """Normal intervals score +- t se with se from resamples without replacement.

    Returns {(order, metric): {aggregate: {score, se, low, high, method,
    n_resamples}}}; ``method`` "auto" takes each metric's family default
    (:data:`prh.inference.resampling.INTERVAL_SCHEMES`), whose coverage the
    simulation measures.
    """
    rep = pair_replicates({"x": sx, "y": sy}, [("x", "y")], metrics, method=method,
                          n_resamples=n_resamples, seed=seed, aggregates=aggregates,
                          both_orders=both_orders, blocks=blocks, progress=progress)
    out: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in interval_rows(rep, level=level):
        out.setdefault((row["order"], row["metric"]), {})[row["aggregate"]] = {
            k: row[k] for k in ("score", "se", "low", "high", "method", "n_resamples")}
    return out


def compare_pairs(caches: Mapping[str, LayerCache], comparisons: Sequence[Comparison],
                  metrics: Mapping[str, Mapping[str, Any]], *, aggregate_how: str = "max",
                  method: str = "auto", n_resamples: int | None = None, seed: int = 0,
                  level: float = 0.95, blocks: Sequence[Any] | None = None,
                  progress: Callable[[Iterable], Iterable] | None = None) -> list[dict[str, Any]]:
    """Paired differences score(pair_a) - score(pair_b) of pairs scored on the same samples.

    ``caches`` maps model names to their LayerCache (one dataset, same sample
    order); each comparison is ((x_a, y_a), (x_b, y_b)), e.g. ((A, C), (B, C)).
    Every pair is re-scored on the same resamples (each model resampled once
    per replicate), so the difference's standard error holds the covariance of
    the two scores: on shared samples it is smaller than two separate
    intervals imply when the scores covary. Rows: :func:`comparison_rows`.
    """
    comparisons = [(tuple(a), tuple(b)) for a, b in comparisons]
    pairs = sorted({p for c in comparisons for p in c})
    rep = pair_replicates(caches, pairs, metrics, method=method, n_resamples=n_resamples,
                          seed=seed, aggregates=[aggregate_how], blocks=blocks,
                          progress=progress)
    return comparison_rows(rep, comparisons, aggregate_how=aggregate_how, level=level)


def competence_trend(caches: Mapping[str, LayerCache], models: Sequence[str],
                     competence: Sequence[float], partners: Sequence[str],
                     metrics: Mapping[str, Mapping[str, Any]], *, aggregate_how: str = "max",
                     method: str = "auto", n_resamples: int | None = None, seed: int = 0,
                     level: float = 0.95, blocks: Sequence[Any] | None = None,
                     progress: Callable[[Iterable], Iterable] | None = None) -> list[dict[str, Any]]:
    """The trend of alignment with competence (rows: :func:`trend_rows`),
    every (model, partner) pair re-scored on the same resamples."""
    check_trend(list(models), competence, list(partners))
    pairs = [(m, p) for m in models for p in partners]
    rep = pair_replicates(caches, pairs, metrics, method=method, n_resamples=n_resamples,
                          seed=seed, aggregates=[aggregate_how], blocks=blocks,
                          progress=progress)
    return trend_rows(rep, models, competence, partners, aggregate_how=aggregate_how,
                      level=level)
