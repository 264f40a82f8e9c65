"""Calibrated alignment: permutation nulls, p-values, BH; intervals, paired
comparisons and trends from resamples without replacement.

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

from .alignment import PERMUTATION_BATCH, ModelStats, one_cpu_thread, permuted_sweep, sweep
from .checks import check_float, check_int
from .metric_info import METRICS, interval_scheme as scheme_for
from .metrics import get_metric, resolve_params
from .scoring import AGGREGATES, aggregate

MIN_RESAMPLES = 20


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


Permutations = Any  # a (K, N) integer array, or a function (n, k, seed) -> (K, N)


def permutation_matrix(permutations: Permutations, n: int, k: int, seed: int) -> np.ndarray:
    """The (K, N) permutations a null uses: ``None`` draws k uniform ones
    (:func:`sample_permutations`), a function is called as fn(n, k, seed)
    (e.g. :func:`block_permutations`), an array is taken as given; each row
    must reorder range(N) and K >= MIN_RESAMPLES."""
    if permutations is None:
        return sample_permutations(n, k, seed)
    perms = permutations(n, k, seed) if callable(permutations) else permutations
    perms = np.asarray(perms.cpu() if isinstance(perms, torch.Tensor) else perms)
    if perms.ndim != 2 or perms.shape[1] != n or not np.issubdtype(perms.dtype, np.integer):
        raise ValueError(f"permutations must be an integer array of shape (K, {n}), "
                         f"got {perms.dtype} of shape {perms.shape}")
    check_int(perms.shape[0], "number of permutations K", low=MIN_RESAMPLES)
    bad = [i for i, row in enumerate(perms) if not np.array_equal(np.sort(row), np.arange(n))]
    if bad:
        raise ValueError(f"permutations row {bad[0]} is not a reordering of 0..{n - 1} "
                         f"({len(bad)} such rows)")
    return perms.astype(np.int64)


def block_permutations(blocks: Sequence[Any], *, within: bool = False
                       ) -> Callable[[int, int, int], np.ndarray]:
    """A permutation function for block-exchangeable nulls: ``blocks[n]`` labels sample n.

    Default: whole blocks are exchanged with blocks of the same size, keeping
    their inner order (several captions of one image move together, so a
    caption never meets another caption of its own image by chance); with
    ``within``, samples are shuffled only inside their block (samples grouped
    by source stay in their source).
    """
    labels = np.asarray(blocks)
    _, codes = np.unique(labels, return_inverse=True)
    members = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]

    def draw(n: int, k: int, seed: int) -> np.ndarray:
        if n != len(labels):
            raise ValueError(f"blocks label {len(labels)} samples but the models have {n}")
        rng = np.random.default_rng(seed)
        out = np.empty((k, n), dtype=np.int64)
        for i in range(k):
            perm = np.arange(n)
            if within:
                for m in members:
                    perm[m] = rng.permutation(m)
            else:
                by_size: dict[int, list[int]] = {}
                for c, m in enumerate(members):
                    by_size.setdefault(len(m), []).append(c)
                for group in by_size.values():
                    for c, d in zip(group, rng.permutation(group)):
                        perm[members[c]] = members[d]
            out[i] = perm
        return out
    return draw


def null_distributions(sx: ModelStats, sy: ModelStats, metrics: Mapping[str, Mapping[str, Any]], *,
                       n_permutations: int = 200, seed: int = 0,
                       aggregates: Iterable[str] = ("max",), both_orders: bool = False,
                       progress: Callable[[Iterable], Iterable] | None = None,
                       permutations: Permutations = None, return_matrices: bool = False,
                       ) -> Any:
    """Permutation nulls of several metrics at once: {(order, metric): {aggregate: (K,)}}.

    Each permutation reorders the second model's samples (Y for "xy", X for
    "yx": either way the pairing is broken the same way) and is shared by all
    metrics; permutations are scored in batches of
    :data:`prh.alignment.PERMUTATION_BATCH`.
    ``permutations`` replaces the K uniform draws: a (K, N) array (to
    reproduce another tool's null) or a function (n, k, seed) -> (K, N) such
    as :func:`block_permutations` (exchangeable blocks). With
    ``return_matrices`` the result is (that dict, {(order, metric): (K, Lx, Ly)
    null layer x layer matrices}).
    """
    hows = _check_aggregates(aggregates)
    k = check_int(n_permutations, "n_permutations", low=MIN_RESAMPLES)
    todo = _orders(sx, metrics, both_orders)
    perms_np = permutation_matrix(permutations, sx.n, k, seed)
    k = perms_np.shape[0]
    perms = torch.from_numpy(perms_np).to(sx.device)
    out = {(o, m): {how: np.empty(k) for how in hows} for o, m, _ in todo}
    mats = {(o, m): None for o, m, _ in todo}
    starts = range(0, k, PERMUTATION_BATCH)  # batches: CKA nulls cost less per permutation
    for start in progress(starts) if progress else starts:
        batch = perms[start:start + PERMUTATION_BATCH]
        for order, metric, p in todo:
            with one_cpu_thread(sx.device):
                mats_batch = permuted_sweep(*_pair(sx, sy, order), metric, batch, p)
            for i, s in enumerate(mats_batch, start):
                if return_matrices:
                    if mats[(order, metric)] is None:
                        mats[(order, metric)] = np.empty((k, *s.shape))
                    mats[(order, metric)][i] = s
                for how in hows:
                    out[(order, metric)][how][i] = aggregate(s, how)
    return (out, mats) if return_matrices else out


def permutation_null(sx: ModelStats, sy: ModelStats, metric: str, *,
                     n_permutations: int = 200, seed: int = 0,
                     aggregates: Iterable[str] = ("max",), permutations: Permutations = None,
                     **params: Any) -> dict[str, np.ndarray]:
    """One metric's null: {aggregate: (K,) array}; ``permutations`` as in
    :func:`null_distributions`."""
    return null_distributions(sx, sy, {metric: params}, n_permutations=n_permutations,
                              seed=seed, aggregates=aggregates,
                              permutations=permutations)[("xy", metric)]


def calibrate_pair(sx: ModelStats, sy: ModelStats, metrics: Mapping[str, Mapping[str, Any]], *,
                   aggregates: Iterable[str] = ("max",), n_permutations: int = 200,
                   alpha: float = 0.05, seed: int = 0, both_orders: bool = True,
                   progress: Callable[[Iterable], Iterable] | None = None,
                   permutations: Permutations = None,
                   ) -> dict[tuple[str, str], tuple[np.ndarray, dict[str, dict[str, float]]]]:
    """Scores of one model pair with every metric, each calibrated against its null.

    Returns {(order, metric): (S, {aggregate: row})}, order "xy" for every
    metric and "yx" for asymmetric ones (when ``both_orders``); a row holds
    score, p_value, tau, calibrated, null_mean, null_std, n_permutations,
    alpha, ``null``, the (K,) null values of the aggregate, and ``null_matrices``, the (K, Lx, Ly) null
    layer x layer matrices (shared by the aggregates). ``permutations``: see
    :func:`null_distributions`.
    """
    hows = _check_aggregates(aggregates)
    alpha = check_alpha(alpha)
    todo = _orders(sx, metrics, both_orders)
    nulls, null_mats = null_distributions(sx, sy, metrics, n_permutations=n_permutations,
                                          seed=seed, aggregates=hows, both_orders=both_orders,
                                          progress=progress, permutations=permutations,
                                          return_matrices=True)
    out = {}
    for order, metric, p in todo:
        S = sweep(*_pair(sx, sy, order), metric, **p)
        s_max = get_metric(metric).max_score(**p)
        rows = {}
        for how in hows:
            row = calibrate(aggregate(S, how), nulls[(order, metric)][how], alpha=alpha,
                            s_max=s_max).as_dict()
            row["null"] = nulls[(order, metric)][how]
            row["null_matrices"] = null_mats[(order, metric)]
            rows[how] = row
        out[(order, metric)] = (S, rows)
    return out


def calibrated_scores(sx: ModelStats, sy: ModelStats, metric: str, *,
                      aggregates: Iterable[str] = ("max",), n_permutations: int = 200,
                      alpha: float = 0.05, seed: int = 0,
                      permutations: Permutations = None,
                      **params: Any) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
    """One metric in the X-Y order: (S, {aggregate: row}); see :func:`calibrate_pair`."""
    return calibrate_pair(sx, sy, {metric: params}, aggregates=aggregates,
                          n_permutations=n_permutations, alpha=alpha,
                          seed=seed, both_orders=False,
                          permutations=permutations)[("xy", metric)]


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


# ----------------------------------------------------------------------------
# Intervals from resamples without replacement, paired comparisons, trends
#
# Every statistic below is a function of the scores of several model pairs on
# the same samples. One engine (:func:`replicate_scores`) draws index sets,
# resamples each model once per set (Gram matrices gathered, kNN lists searched
# again: the per-model work the permutation null reuses) and scores every pair on
# it, so the scores of pairs that share samples are re-scored together and a
# difference, a rank correlation or a slope sees their covariance.
#
# Resamples never repeat a sample (a repeat is what biased the percentile
# bootstrap prh used before: a copy fills a neighbour slot, a copied pair
# repeats kernel entries). Two
# schemes, both centred on the full-sample score (score +- t se, t the
# quantile of Student's t with R - 1 degrees of freedom for R replicates),
# which targets the mean score at this N:
#
# - "jackknife": the delete-a-group jackknife. Samples fall into G seeded
#   groups; replicate g leaves group g out; se^2 = (G-1)/G sum (t_g - mean)^2,
#   and the interval takes Student's t with G - 1 degrees of freedom.
# - "subsample": M seeded subsets of b = N/2 samples without replacement;
#   se^2 = b/(N-b) var(t_b), the rate correction for subsampling without
#   replacement (exact for means: var(t_b - t_N) = (1/b - 1/N) sigma^2).
#
# Which one a metric gets ("auto") is :data:`INTERVAL_SCHEMES`, chosen from the
# coverage simulation (:mod:`prh.simulation`, benchmarks/bench_coverage.py;
# the table is in the README, "Measured coverage"): the 20-group jackknife
# covers CKA and unbiased CKA (0.965 at N = 256 and 1024), the 5-group one
# SVCCA (0.97, 0.945). For the kNN metrics and CKNNA removing samples
# reshuffles the neighbour lists of the rest, which inflates any jackknife se:
# 5 large groups (delete-d, d = N/5) keep it to 1.2-1.8x the real spread
# (coverage 0.955-1.0: conservative, and said so in the output); half-samples
# under-covered cycle_knn (0.90).

#: Default (scheme, replicates) per metric (its home: prh.metric_info).
INTERVAL_SCHEMES: dict[str, tuple[str, int]] = {m: METRICS[m].interval for m in METRICS}


def resample_indices(n: int, method: str, count: int | None = None, *, seed: int = 0,
                     size: int | None = None, blocks: Sequence[Any] | None = None
                     ) -> list[np.ndarray]:
    """Index sets (sorted, no repeats) of one scheme: G leave-a-group-out sets for
    "jackknife", ``count`` subsets of ``size`` (default N // 2) for "subsample".

    With ``blocks`` (a label per sample: several captions of one image, samples
    of one source), whole blocks are left out or kept, never split: samples of
    one block are not independent draws, and splitting them would make the
    spread look smaller than it is.
    """
    count = scheme_for("cka", method, count)[1]
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
    from scipy.stats import norm, t

    dist = norm if df is None else t(df)
    z = float(dist.ppf(0.5 + level / 2))
    if not np.isfinite(se) or not np.isfinite(estimate):
        return math.nan, math.nan, math.nan
    if se == 0:
        return estimate, estimate, (1.0 if estimate == 0 else 0.0)
    return estimate - z * se, estimate + z * se, float(2 * dist.sf(abs(estimate) / se))


PairKey = tuple[str, str, str, str]  # (model_x, model_y, order, metric)


def replicate_scores(stats: Mapping[str, ModelStats], pairs: Sequence[tuple[str, str]],
                     metrics: Mapping[str, Mapping[str, Any]], index_sets: Sequence[Any], *,
                     aggregates: Iterable[str] = ("max",), both_orders: bool = False,
                     progress: Callable[[Iterable], Iterable] | None = None,
                     ) -> dict[PairKey, dict[str, np.ndarray]]:
    """Aggregate scores of every pair on every index set: {(x, y, order, metric): {how: (R,)}}.

    Each model is resampled once per index set and serves all its pairs and
    metrics, so R index sets cost R resamples per model, not per pair.
    """
    hows = _check_aggregates(aggregates)
    pairs = [tuple(p) for p in pairs]
    used = sorted({name for p in pairs for name in p})
    missing = [name for name in used if name not in stats]
    if missing:
        raise ValueError(f"pairs name models without stats: {missing}")
    first = stats[used[0]]
    todo = _orders(first, metrics, both_orders)
    r = len(index_sets)
    out = {(x, y, o, m): {how: np.empty(r) for how in hows} for x, y in pairs for o, m, _ in todo}
    for i, idx in enumerate(progress(index_sets) if progress else index_sets):
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.int64, device=first.device)
        res = {name: stats[name].resample(idx) for name in used}
        for x, y in pairs:
            for order, metric, p in todo:
                s = sweep(*_pair(res[x], res[y], order), metric, **p)
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


def pair_replicates(stats: Mapping[str, ModelStats], pairs: Sequence[tuple[str, str]],
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
    hows = _check_aggregates(aggregates)
    pairs = [tuple(p) for p in pairs]
    if not pairs:
        raise ValueError("pairs is empty; name at least one (model_x, model_y) pair")
    n = next(iter(stats.values())).n
    by_scheme: dict[tuple[str, int], dict] = {}
    for metric, p in metrics.items():
        by_scheme.setdefault(scheme_for(metric, method, n_resamples), {})[metric] = p
    full: dict[PairKey, dict[str, float]] = {}
    reps: dict[PairKey, dict[str, np.ndarray]] = {}
    schemes: dict[str, tuple[str, int, float]] = {}
    for (meth, count), subset in by_scheme.items():
        sets = resample_indices(n, meth, count, seed=seed, blocks=blocks)
        got = replicate_scores(stats, pairs, subset, sets, aggregates=hows,
                               both_orders=both_orders, progress=progress)
        reps.update(got)
        size = float(np.mean([len(s) for s in sets]))
        for metric in subset:
            schemes[metric] = (meth, len(sets), size)
    for x, y in pairs:
        for order, metric, p in _orders(stats[x], metrics, both_orders):
            S = sweep(*_pair(stats[x], stats[y], order), metric, **p)
            full[(x, y, order, metric)] = {how: aggregate(S, how) for how in hows}
    return PairReplicates(n, full, reps, schemes)


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
    _check_aggregates([aggregate_how])
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
    _check_aggregates([aggregate_how])
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


def score_intervals(sx: ModelStats, sy: ModelStats, metrics: Mapping[str, Mapping[str, Any]], *,
                    method: str = "auto", n_resamples: int | None = None, seed: int = 0,
                    level: float = 0.95, aggregates: Iterable[str] = ("max",),
                    both_orders: bool = False, blocks: Sequence[Any] | None = None,
                    progress: Callable[[Iterable], Iterable] | None = None,
                    ) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """Normal intervals score +- t se with se from resamples without replacement.

    Returns {(order, metric): {aggregate: {score, se, low, high, method,
    n_resamples}}}; ``method`` "auto" takes each metric's family default
    (:data:`INTERVAL_SCHEMES`), whose coverage the simulation measures.
    """
    rep = pair_replicates({"x": sx, "y": sy}, [("x", "y")], metrics, method=method,
                          n_resamples=n_resamples, seed=seed, aggregates=aggregates,
                          both_orders=both_orders, blocks=blocks, progress=progress)
    out: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in interval_rows(rep, level=level):
        out.setdefault((row["order"], row["metric"]), {})[row["aggregate"]] = {
            k: row[k] for k in ("score", "se", "low", "high", "method", "n_resamples")}
    return out


def compare_pairs(stats: Mapping[str, ModelStats], comparisons: Sequence[Comparison],
                  metrics: Mapping[str, Mapping[str, Any]], *, aggregate_how: str = "max",
                  method: str = "auto", n_resamples: int | None = None, seed: int = 0,
                  level: float = 0.95, blocks: Sequence[Any] | None = None,
                  progress: Callable[[Iterable], Iterable] | None = None) -> list[dict[str, Any]]:
    """Paired differences score(pair_a) - score(pair_b) of pairs scored on the same samples.

    ``stats`` maps model names to their ModelStats (one dataset, same sample
    order); each comparison is ((x_a, y_a), (x_b, y_b)), e.g. ((A, C), (B, C)).
    Every pair is re-scored on the same resamples (each model resampled once
    per replicate), so the difference's standard error holds the covariance of
    the two scores: on shared samples it is smaller than two separate
    intervals imply when the scores covary. Rows: :func:`comparison_rows`.
    """
    comparisons = [(tuple(a), tuple(b)) for a, b in comparisons]
    pairs = sorted({p for c in comparisons for p in c})
    rep = pair_replicates(stats, pairs, metrics, method=method, n_resamples=n_resamples,
                          seed=seed, aggregates=[aggregate_how], blocks=blocks,
                          progress=progress)
    return comparison_rows(rep, comparisons, aggregate_how=aggregate_how, level=level)


def competence_trend(stats: Mapping[str, ModelStats], models: Sequence[str],
                     competence: Sequence[float], partners: Sequence[str],
                     metrics: Mapping[str, Mapping[str, Any]], *, aggregate_how: str = "max",
                     method: str = "auto", n_resamples: int | None = None, seed: int = 0,
                     level: float = 0.95, blocks: Sequence[Any] | None = None,
                     progress: Callable[[Iterable], Iterable] | None = None) -> list[dict[str, Any]]:
    """The trend of alignment with competence (rows: :func:`trend_rows`),
    every (model, partner) pair re-scored on the same resamples."""
    check_trend(list(models), competence, list(partners))
    pairs = [(m, p) for m in models for p in partners]
    rep = pair_replicates(stats, pairs, metrics, method=method, n_resamples=n_resamples,
                          seed=seed, aggregates=[aggregate_how], blocks=blocks,
                          progress=progress)
    return trend_rows(rep, models, competence, partners, aggregate_how=aggregate_how,
                      level=level)
