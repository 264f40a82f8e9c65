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

from .alignment import PERMUTATION_BATCH, ModelStats, one_cpu_thread, permuted_sweep, sweep
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
                     aggregates: Iterable[str] = ("max",), permutations: Permutations = None,
                     **params: Any) -> dict[str, np.ndarray]:
    """One metric's null: {aggregate: (K,) array}; ``permutations`` as in
    :func:`null_distributions`."""
    return null_distributions(sx, sy, {metric: params}, n_permutations=n_permutations,
                              seed=seed, aggregates=aggregates,
                              permutations=permutations)[("xy", metric)]


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
                   permutations: Permutations = None,
                   ) -> dict[tuple[str, str], tuple[np.ndarray, dict[str, dict[str, float]]]]:
    """Scores of one model pair with every metric, each calibrated against its null.

    Returns {(order, metric): (S, {aggregate: row})}, order "xy" for every
    metric and "yx" for asymmetric ones (when ``both_orders``); a row holds
    score, p_value, tau, calibrated, null_mean, null_std, n_permutations,
    alpha, ci_low and ci_high (NaN when n_boot is 0), ``null``, the (K,)
    null values of the aggregate, and ``null_matrices``, the (K, Lx, Ly) null
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
            row["null_matrices"] = null_mats[(order, metric)]
            rows[how] = row
        out[(order, metric)] = (S, rows)
    return out


def calibrated_scores(sx: ModelStats, sy: ModelStats, metric: str, *,
                      aggregates: Iterable[str] = ("max",), n_permutations: int = 200,
                      n_boot: int = 0, alpha: float = 0.05, seed: int = 0,
                      permutations: Permutations = None,
                      **params: Any) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
    """One metric in the X-Y order: (S, {aggregate: row}); see :func:`calibrate_pair`."""
    return calibrate_pair(sx, sy, {metric: params}, aggregates=aggregates,
                          n_permutations=n_permutations, n_boot=n_boot, alpha=alpha,
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
# again: the per-model work the bootstrap reuses) and scores every pair on
# it, so the scores of pairs that share samples are re-scored together and a
# difference, a rank correlation or a slope sees their covariance.
#
# Resamples never repeat a sample (a repeat is what biases the bootstrap: a
# copy fills a neighbour slot, a copied pair repeats kernel entries). Two
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
# coverage simulation (:mod:`prh.simulation`, benchmarks/bench_coverage.py):
# at N = 256 (60 draws) the 20-group jackknife's se matched the score's spread
# for CKA (se/sd 0.98) but was 1.3-2.1x too large for the kNN metrics and
# CKNNA (removing samples reshuffles the neighbour lists of the rest); with 5
# larger groups (delete-d with d = N/5, which non-smooth statistics need)
# their se/sd fell to 1.2-1.3 and coverage to 0.93-0.95; half-sampling
# matched cycle_knn's spread (0.92).

#: Default (scheme, replicates) per metric, chosen by measured coverage.
INTERVAL_SCHEMES: dict[str, tuple[str, int]] = {
    "cka": ("jackknife", 20), "unbiased_cka": ("jackknife", 20), "svcca": ("jackknife", 20),
    "mutual_knn": ("jackknife", 5), "lcs_knn": ("jackknife", 5),
    "edit_distance_knn": ("jackknife", 5), "cknna": ("jackknife", 5),
    "cycle_knn": ("subsample", 50),
}
#: Default number of replicates per scheme (groups for the jackknife).
DEFAULT_RESAMPLES = {"jackknife": 20, "subsample": 50}


def scheme_for(metric: str, method: str = "auto", n_resamples: int | None = None
               ) -> tuple[str, int]:
    """(scheme, replicates) of ``metric``: ``method`` itself or the metric's
    default (:data:`INTERVAL_SCHEMES`); ``n_resamples`` overrides the count."""
    get_metric(metric)
    if method == "auto":
        meth, count = INTERVAL_SCHEMES[metric]
    elif method in DEFAULT_RESAMPLES:
        meth, count = method, DEFAULT_RESAMPLES[method]
    else:
        raise ValueError(f"unknown interval method {method!r}; choose auto, "
                         + " or ".join(DEFAULT_RESAMPLES))
    return meth, (count if n_resamples is None else int(n_resamples))


def method_for(metric: str, method: str = "auto") -> str:
    """The interval scheme of ``metric``: ``method`` itself, or the metric's default."""
    return scheme_for(metric, method)[0]


def resample_indices(n: int, method: str, count: int | None = None, *, seed: int = 0,
                     size: int | None = None) -> list[np.ndarray]:
    """Index sets (sorted, no repeats) of one scheme: G leave-a-group-out sets for
    "jackknife", ``count`` subsets of ``size`` (default N // 2) for "subsample"."""
    count = scheme_for("cka", method, count)[1]
    rng = np.random.default_rng(seed)
    if method == "jackknife":
        g = check_int(count, "jackknife groups", low=2, high=n)
        groups = np.array_split(rng.permutation(n), g)
        keep = np.ones(n, dtype=bool)
        out = []
        for grp in groups:
            keep[:] = True
            keep[grp] = False
            out.append(np.flatnonzero(keep))
        return out
    b = n // 2 if size is None else check_int(size, "subsample size", low=4, high=n - 1)
    m = check_int(count, "subsamples", low=2)
    return [np.sort(rng.choice(n, size=b, replace=False)) for _ in range(m)]


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


def _grouped_replicates(stats, pairs, metrics, *, method, n_resamples, seed, aggregates,
                        both_orders, progress):
    """replicate_scores per scheme: {metric: (scheme, replicates)} (one draw per scheme)."""
    n = next(iter(stats.values())).n
    by_scheme: dict[tuple[str, int], dict] = {}
    for metric, p in metrics.items():
        by_scheme.setdefault(scheme_for(metric, method, n_resamples), {})[metric] = p
    out = {}
    for (meth, count), subset in by_scheme.items():
        sets = resample_indices(n, meth, count, seed=seed)
        reps = replicate_scores(stats, pairs, subset, sets, aggregates=aggregates,
                                both_orders=both_orders, progress=progress)
        out[meth, count] = (sets, reps)
    return out


def score_intervals(sx: ModelStats, sy: ModelStats, metrics: Mapping[str, Mapping[str, Any]], *,
                    method: str = "auto", n_resamples: int | None = None, seed: int = 0,
                    level: float = 0.95, aggregates: Iterable[str] = ("max",),
                    both_orders: bool = False,
                    progress: Callable[[Iterable], Iterable] | None = None,
                    ) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """Normal intervals score +- z se with se from resamples without replacement.

    Returns {(order, metric): {aggregate: {score, se, low, high, method,
    n_resamples}}}; ``method`` "auto" takes each metric's family default
    (:data:`INTERVAL_SCHEMES`), whose coverage the simulation measures.
    """
    level = check_float(level, "level", low=0.0, high=1.0, low_open=True)
    hows = _check_aggregates(aggregates)
    stats = {"x": sx, "y": sy}
    grouped = _grouped_replicates(stats, [("x", "y")], metrics, method=method,
                                  n_resamples=n_resamples, seed=seed, aggregates=hows,
                                  both_orders=both_orders, progress=progress)
    out = {}
    for (meth, _), (sets, reps) in grouped.items():
        size = len(sets[0])
        for (_, _, order, metric), per in reps.items():
            p = resolve_params(metric, dict(metrics[metric] or {}), n=sx.n)
            S = sweep(*_pair(sx, sy, order), metric, **p)
            rows = {}
            for how in hows:
                score = aggregate(S, how)
                se = float(replicate_se(meth, per[how], sx.n, size))
                low, high, _ = normal_interval(score, se, level, len(sets) - 1)
                rows[how] = {"score": score, "se": se, "low": low, "high": high,
                             "method": meth, "n_resamples": len(sets)}
            out[(order, metric)] = rows
    return out


def compare_pairs(stats: Mapping[str, ModelStats],
                  comparisons: Sequence[tuple[tuple[str, str], tuple[str, str]]],
                  metrics: Mapping[str, Mapping[str, Any]], *, aggregate_how: str = "max",
                  method: str = "auto", n_resamples: int | None = None, seed: int = 0,
                  level: float = 0.95,
                  progress: Callable[[Iterable], Iterable] | None = None) -> list[dict[str, Any]]:
    """Paired differences score(pair_a) - score(pair_b) of pairs scored on the same samples.

    ``stats`` maps model names to their ModelStats (one dataset, same sample
    order); each comparison is ((x_a, y_a), (x_b, y_b)), scored in the x-y
    order, e.g. ((A, C), (B, C)). Every pair is re-scored on the same
    resamples (each model resampled once per replicate), so the difference's
    standard error holds the covariance of the two scores: on shared samples
    it is smaller than two separate intervals imply when the scores covary. Returns one
    row per comparison and metric: pair_a, pair_b, metric, aggregate,
    score_a, score_b, difference, se, low, high, p_value (two-sided, normal:
    difference = 0), method, n_resamples.
    """
    level = check_float(level, "level", low=0.0, high=1.0, low_open=True)
    _check_aggregates([aggregate_how])
    comparisons = [(tuple(a), tuple(b)) for a, b in comparisons]
    pairs = sorted({p for c in comparisons for p in c})
    n = next(iter(stats.values())).n
    grouped = _grouped_replicates(stats, pairs, metrics, method=method, n_resamples=n_resamples,
                                  seed=seed, aggregates=[aggregate_how], both_orders=False,
                                  progress=progress)
    full = _full_scores(stats, pairs, metrics, aggregate_how)
    rows = []
    for (meth, _), (sets, reps) in grouped.items():
        size = len(sets[0])
        for metric in metrics:
            if not any(key[3] == metric for key in reps):
                continue
            for a, b in comparisons:
                ra = reps[(*a, "xy", metric)][aggregate_how]
                rb = reps[(*b, "xy", metric)][aggregate_how]
                sa, sb = full[(a, metric)], full[(b, metric)]
                se = float(replicate_se(meth, ra - rb, n, size))
                low, high, p = normal_interval(sa - sb, se, level, len(sets) - 1)
                rows.append({"pair_a": a, "pair_b": b, "metric": metric,
                             "aggregate": aggregate_how, "score_a": sa, "score_b": sb,
                             "difference": sa - sb, "se": se, "low": low, "high": high,
                             "p_value": p, "method": meth, "n_resamples": len(sets)})
    return rows


def _full_scores(stats, pairs, metrics, how):
    out = {}
    for x, y in pairs:
        for metric, p in metrics.items():
            params = resolve_params(metric, dict(p or {}), n=stats[x].n)
            out[((x, y), metric)] = aggregate(sweep(stats[x], stats[y], metric, **params), how)
    return out


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


def competence_trend(stats: Mapping[str, ModelStats], models: Sequence[str],
                     competence: Sequence[float], partners: Sequence[str],
                     metrics: Mapping[str, Mapping[str, Any]], *, aggregate_how: str = "max",
                     method: str = "auto", n_resamples: int | None = None, seed: int = 0,
                     level: float = 0.95,
                     progress: Callable[[Iterable], Iterable] | None = None) -> list[dict[str, Any]]:
    """Does alignment rise with competence? Per partner and pooled, two statistics.

    ``models`` (one modality, M >= 3) with their ``competence`` are scored
    against each of ``partners`` (pairs (model, partner), x-y order). For each
    partner: the Spearman rank correlation of score with competence and the
    least-squares slope of score on competence; pooled over partners: the mean
    of the partners' statistics (for the slope, the fit with one intercept per
    partner). Every pair is re-scored on the same resamples, so the standard
    errors hold the covariance of scores that share samples and models.

    Each row: metric, aggregate, partner ("pooled" for all), statistic,
    estimate, se, low, high, p_value (two-sided normal, estimate = 0: the
    sample noise), p_models (exact permutation of the competence labels over
    the M! orderings, up to M = 8: could the models' order alone give this?),
    n_models, method, n_resamples. With few models a rank correlation can be
    the same on every resample: then se is 0 and only p_models is informative.
    """
    from itertools import permutations as orderings

    level = check_float(level, "level", low=0.0, high=1.0, low_open=True)
    _check_aggregates([aggregate_how])
    models, partners = list(models), list(partners)
    c = np.asarray(competence, dtype=np.float64)
    if len(models) < 3 or c.shape != (len(models),):
        raise ValueError(f"a trend needs >= 3 models with one competence each; got "
                         f"{len(models)} models and {c.size} competence values")
    if np.ptp(c) == 0:
        raise ValueError("competence is the same for every model; there is no trend to test")
    if not partners:
        raise ValueError("partners is empty; name at least one model of the other modality")
    pairs = [(m, p) for m in models for p in partners]
    n = next(iter(stats.values())).n
    grouped = _grouped_replicates(stats, pairs, metrics, method=method, n_resamples=n_resamples,
                                  seed=seed, aggregates=[aggregate_how], both_orders=False,
                                  progress=progress)
    full = _full_scores(stats, pairs, metrics, aggregate_how)
    perms = list(orderings(range(len(models)))) if len(models) <= 8 else []
    rows = []
    for (meth, _), (sets, reps) in grouped.items():
        size = len(sets[0])
        for metric in metrics:
            if not any(key[3] == metric for key in reps):
                continue
            # scores (partner, model) on the full sample and (replicate, partner, model)
            s = np.array([[full[((m, p), metric)] for m in models] for p in partners])
            r = np.stack([np.stack([reps[(m, p, "xy", metric)][aggregate_how] for m in models], -1)
                          for p in partners], 1)
            for name, fn in TREND_STATISTICS.items():
                est = fn(c, s)                        # (P,)
                rep = fn(c, r)                        # (R, P)
                null = np.array([fn(c[list(o)], s) for o in perms])  # (M!, P)
                cols = [(p, est[i], rep[:, i], null[:, i] if perms else None)
                        for i, p in enumerate(partners)]
                cols.append(("pooled", est.mean(), rep.mean(axis=1),
                             null.mean(axis=1) if perms else None))
                for partner, e, rv, nv in cols:
                    se = float(replicate_se(meth, rv, n, size))
                    low, high, p = normal_interval(float(e), se, level, len(sets) - 1)
                    p_models = (float(np.mean(np.abs(nv) >= abs(e) - 1e-12)) if nv is not None
                                else math.nan)
                    rows.append({"metric": metric, "aggregate": aggregate_how,
                                 "partner": partner, "statistic": name, "estimate": float(e),
                                 "se": se, "low": low, "high": high, "p_value": p,
                                 "p_models": p_models, "n_models": len(models),
                                 "method": meth, "n_resamples": len(sets)})
    return rows
