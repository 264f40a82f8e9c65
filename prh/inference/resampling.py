"""Resamples without replacement: index sets, standard errors, and every
model pair re-scored on the same resamples.

Every statistic of :mod:`prh.inference.statistics` is a function of the
scores of several model pairs on the same samples. One engine
(:func:`replicate_scores`) draws index sets, resamples each model once per
set (Gram matrices gathered, kNN lists searched again: the per-model work
the permutation null reuses) and scores every pair on it, so the scores of
pairs that share samples are re-scored together and a difference, a rank
correlation or a slope sees their covariance.

Resamples never repeat a sample (a repeat biases a bootstrap here: a copy
fills a neighbour slot, a copied pair repeats kernel entries). Two schemes,
both centred on the full-sample score (score +- t se, t the quantile of
Student's t with R - 1 degrees of freedom for R replicates), which targets
the mean score at this N:

- "jackknife": the delete-a-group jackknife. Samples fall into G seeded
  groups; replicate g leaves group g out; se^2 = (G-1)/G sum (t_g - mean)^2,
  and the interval takes Student's t with G - 1 degrees of freedom.
- "subsample": M seeded subsets of b = N/2 samples without replacement;
  se^2 = b/(N-b) var(t_b), the rate correction for subsampling without
  replacement (exact for means: var(t_b - t_N) = (1/b - 1/N) sigma^2).

Which one a metric gets ("auto") is :data:`INTERVAL_SCHEMES`, chosen from the
coverage simulation (:mod:`prh.simulation`, benchmarks/bench_coverage.py;
the table is in the README, "Measured coverage"): the 20-group jackknife
covers CKA and unbiased CKA (0.965 at N = 256 and 1024), the 5-group one
SVCCA (0.97, 0.945). For the kNN metrics and CKNNA removing samples
reshuffles the neighbour lists of the rest, which inflates any jackknife se:
5 large groups (delete-d, d = N/5) keep it to 1.2-1.8x the real spread
(coverage 0.955-1.0: conservative, and said so in the output); half-samples
under-covered cycle_knn (0.90).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from ..checks import check_int
from ..metric_info import DEFAULT_RESAMPLES, METRICS, get_metric, interval_scheme as scheme_for
from ..scoring import aggregate
from ..sweep.cache import LayerCache
from ..sweep.dispatch import sweep
from .pairs import check_aggregates, in_order, scored_orders

#: Default (scheme, replicates) per metric (its home: prh.metric_info).
INTERVAL_SCHEMES: dict[str, tuple[str, int]] = {m: METRICS[m].interval for m in METRICS}


def resample_indices(n: int, method: str, count: int, *, seed: int = 0,
                     size: int | None = None, blocks: Sequence[Any] | None = None
                     ) -> list[np.ndarray]:
    """Index sets (sorted, no repeats) of one scheme: ``count`` = G
    leave-a-group-out sets for "jackknife", ``count`` subsets of ``size``
    (default N // 2) for "subsample". A metric's own scheme and count come
    from :func:`scheme_for`.

    With ``blocks`` (a label per sample: several captions of one image, samples
    of one source), whole blocks are left out or kept, never split: samples of
    one block are not independent draws, and splitting them would make the
    spread look smaller than it is.
    """
    if method not in DEFAULT_RESAMPLES:
        raise ValueError(f"unknown interval method {method!r}; choose "
                         + " or ".join(DEFAULT_RESAMPLES))
    rng = np.random.default_rng(seed)
    if blocks is None:
        units = [np.array([i]) for i in range(n)]
    else:
        labels = np.asarray(blocks)
        if labels.shape != (n,):
            raise ValueError(f"blocks label {labels.size} samples but the models have {n}")
        _, codes = np.unique(labels, return_inverse=True)
        units = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]
    u = len(units)
    if method == "jackknife":
        g = check_int(count, "jackknife groups", low=2, high=u)
        out = []
        keep = np.ones(n, dtype=bool)
        for grp in np.array_split(rng.permutation(u), g):
            keep[:] = True
            keep[np.concatenate([units[i] for i in grp])] = False
            out.append(np.flatnonzero(keep))
        return out
    b = u // 2 if size is None else check_int(size, "subsample size", low=4, high=u - 1)
    m = check_int(count, "subsamples", low=2)
    return [np.sort(np.concatenate([units[i] for i in rng.choice(u, size=b, replace=False)]))
            for _ in range(m)]


def replicate_se(method: str, replicates: np.ndarray, n: int, size: int | None = None) -> np.ndarray:
    """Standard error from replicate values (first axis: replicates) of one scheme."""
    t = np.asarray(replicates, dtype=np.float64)
    r = t.shape[0]
    if method == "jackknife":
        return np.sqrt((r - 1) / r * np.sum((t - t.mean(axis=0)) ** 2, axis=0))
    b = n // 2 if size is None else size
    return np.sqrt(b / (n - b)) * t.std(axis=0, ddof=1)


def normal_interval(estimate: float, se: float, level: float = 0.95,
                    df: int | None = None) -> tuple[float, float, float]:
    """(low, high, two-sided p of estimate = 0) of the interval estimate +- t se:
    Student's t with ``df`` degrees of freedom (the se of G jackknife groups
    has G - 1), the normal when ``df`` is None."""
    # the routines scipy.stats' norm and t call, without importing scipy.stats
    # (a second of every statistics job)
    from scipy.special import ndtr, ndtri, stdtr, stdtrit

    q = 0.5 + level / 2
    z = float(ndtri(q) if df is None else stdtrit(df, q))
    if not np.isfinite(se) or not np.isfinite(estimate):
        return math.nan, math.nan, math.nan
    if se == 0:
        return estimate, estimate, (1.0 if estimate == 0 else 0.0)
    x = -abs(estimate) / se
    return estimate - z * se, estimate + z * se, float(2 * (ndtr(x) if df is None else stdtr(df, x)))


PairKey = tuple[str, str, str, str]  # (model_x, model_y, order, metric)


def replicate_scores(caches: Mapping[str, LayerCache], pairs: Sequence[tuple[str, str]],
                     metrics: Mapping[str, Mapping[str, Any]], index_sets: Sequence[Any], *,
                     aggregates: Iterable[str] = ("max",), both_orders: bool = False,
                     progress: Callable[[Iterable], Iterable] | None = None,
                     ) -> dict[PairKey, dict[str, np.ndarray]]:
    """Aggregate scores of every pair on every index set: {(x, y, order, metric): {how: (R,)}}.

    Each model is resampled once per index set and serves all its pairs and
    metrics, so R index sets cost R resamples per model, not per pair.
    """
    hows = check_aggregates(aggregates)
    pairs = [tuple(p) for p in pairs]
    used = sorted({name for p in pairs for name in p})
    missing = [name for name in used if name not in caches]
    if missing:
        raise ValueError(f"pairs name models without a layer cache: {missing}")
    first = caches[used[0]]
    todo = scored_orders(first, metrics, both_orders)
    r = len(index_sets)
    out = {(x, y, o, m): {how: np.empty(r) for how in hows} for x, y in pairs for o, m, _ in todo}
    for i, idx in enumerate(progress(index_sets) if progress else index_sets):
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.int64, device=first.device)
        res = {name: caches[name].resample(idx) for name in used}
        for x, y in pairs:
            for order, metric, p in todo:
                s = sweep(*in_order(res[x], res[y], order), metric, **p)
                for how in hows:
                    out[(x, y, order, metric)][how][i] = aggregate(s, how)
    return out


@dataclass
class PairReplicates:
    """Scores of model pairs on the full sample and on resamples of it.

    Built by :func:`pair_replicates`; every interval, paired difference and
    trend below is read from one of these, so they all see the same resamples
    (and a workflow computes it once per dataset, not once per statistic).
    ``full[(x, y, order, metric)][how]`` is the full-sample aggregate score,
    ``reps[...][how]`` its (R,) values on the metric's resamples, and
    ``schemes[metric]`` = (method, R, mean subset size).
    """

    n: int
    full: dict[PairKey, dict[str, float]]
    reps: dict[PairKey, dict[str, np.ndarray]]
    schemes: dict[str, tuple[str, int, float]]

    def value(self, x: str, y: str, metric: str, how: str) -> tuple[float, np.ndarray]:
        """(full score, replicates) of the pair x-y (given either way round for
        a metric scored in both orders): the x-y order, or for an asymmetric
        metric scored both ways the mean of both orders (what the figures and
        the competence axis show)."""
        if (x, y, "xy", metric) not in self.full and (y, x, "xy", metric) in self.full and (
                get_metric(metric).symmetric or (y, x, "yx", metric) in self.full):
            x, y = y, x  # symmetric, or the mean of both orders: the same either way round
        key = (x, y, "xy", metric)
        if key not in self.full:
            raise KeyError(f"no replicates of {x} x {y} for {metric}")
        back = (x, y, "yx", metric)
        if back in self.full:
            return ((self.full[key][how] + self.full[back][how]) / 2,
                    (self.reps[key][how] + self.reps[back][how]) / 2)
        return self.full[key][how], self.reps[key][how]

    def interval(self, metric: str, estimate: float, replicates: np.ndarray,
                 level: float) -> tuple[float, float, float, float]:
        """(se, low, high, two-sided p of estimate = 0) from the metric's resamples."""
        meth, r, size = self.schemes[metric]
        se = float(replicate_se(meth, replicates, self.n, size))
        return (se, *normal_interval(float(estimate), se, level, r - 1))

    def method(self, metric: str) -> tuple[str, int]:
        meth, r, _ = self.schemes[metric]
        return meth, r


def pair_replicates(caches: Mapping[str, LayerCache], pairs: Sequence[tuple[str, str]],
                    metrics: Mapping[str, Mapping[str, Any]], *, method: str = "auto",
                    n_resamples: int | None = None, seed: int = 0,
                    aggregates: Iterable[str] = ("max",), both_orders: bool = True,
                    blocks: Sequence[Any] | None = None,
                    progress: Callable[[Iterable], Iterable] | None = None) -> PairReplicates:
    """Full-sample and resampled scores of ``pairs`` for every metric.

    Metrics are grouped by their interval scheme (:func:`scheme_for`); each
    scheme draws its index sets once (seeded; ``blocks`` keeps blocks whole)
    and :func:`replicate_scores` resamples every model once per set for all
    pairs. Asymmetric metrics are scored in both orders when ``both_orders``.
    """
    hows = check_aggregates(aggregates)
    pairs = [tuple(p) for p in pairs]
    if not pairs:
        raise ValueError("pairs is empty; name at least one (model_x, model_y) pair")
    n = next(iter(caches.values())).n
    by_scheme: dict[tuple[str, int], dict] = {}
    for metric, p in metrics.items():
        by_scheme.setdefault(scheme_for(metric, method, n_resamples), {})[metric] = p
    full: dict[PairKey, dict[str, float]] = {}
    reps: dict[PairKey, dict[str, np.ndarray]] = {}
    schemes: dict[str, tuple[str, int, float]] = {}
    for (meth, count), subset in by_scheme.items():
        sets = resample_indices(n, meth, count, seed=seed, blocks=blocks)
        got = replicate_scores(caches, pairs, subset, sets, aggregates=hows,
                               both_orders=both_orders, progress=progress)
        reps.update(got)
        size = float(np.mean([len(s) for s in sets]))
        for metric in subset:
            schemes[metric] = (meth, len(sets), size)
    for x, y in pairs:
        for order, metric, p in scored_orders(caches[x], metrics, both_orders):
            S = sweep(*in_order(caches[x], caches[y], order), metric, **p)
            full[(x, y, order, metric)] = {how: aggregate(S, how) for how in hows}
    return PairReplicates(n, full, reps, schemes)
