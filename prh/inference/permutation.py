"""Calibrated alignment: permutation nulls, p-values, the threshold tau and the
calibrated score, and the sample-size curve.

A raw score means little alone: its chance level moves with N, k, the feature
dimension and the number of layer pairs an aggregate maximises over. Here the
null is built the honest way: permute the sample order of one model (the same
permutation for all of its layers), recompute the whole layer x layer matrix
and the same aggregate, K times. Permuting samples only relabels kNN lists and
permutes kernels, so nothing per layer is recomputed
(:func:`prh.sweep.dispatch.permuted_sweeps`).

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

from ..checks import check_float, check_int
from ..metrics import get_metric, resolve_params
from ..scoring import aggregate
from ..sweep.blocks import one_cpu_thread
from ..sweep.cache import LayerCache
from ..sweep.dispatch import permuted_sweep, sweep
from ..sweep.kernel import PERMUTATION_BATCH
from .pairs import check_aggregates, in_order, scored_orders

MIN_RESAMPLES = 20


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


def null_distributions(sx: LayerCache, sy: LayerCache, metrics: Mapping[str, Mapping[str, Any]], *,
                       n_permutations: int = 200, seed: int = 0,
                       aggregates: Iterable[str] = ("max",), both_orders: bool = False,
                       progress: Callable[[Iterable], Iterable] | None = None,
                       permutations: Permutations = None, return_matrices: bool = False,
                       ) -> Any:
    """Permutation nulls of several metrics at once: {(order, metric): {aggregate: (K,)}}.

    Each permutation reorders the second model's samples (Y for "xy", X for
    "yx": either way the pairing is broken the same way) and is shared by all
    metrics; permutations are scored in batches of
    :data:`prh.sweep.kernel.PERMUTATION_BATCH`.
    ``permutations`` replaces the K uniform draws: a (K, N) array (to
    reproduce another tool's null) or a function (n, k, seed) -> (K, N) such
    as :func:`block_permutations` (exchangeable blocks). With
    ``return_matrices`` the result is (that dict, {(order, metric): (K, Lx, Ly)
    null layer x layer matrices}).
    """
    hows = check_aggregates(aggregates)
    k = check_int(n_permutations, "n_permutations", low=MIN_RESAMPLES)
    todo = scored_orders(sx, metrics, both_orders)
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
                mats_batch = permuted_sweep(*in_order(sx, sy, order), metric, batch, p)
            for i, s in enumerate(mats_batch, start):
                if return_matrices:
                    if mats[(order, metric)] is None:
                        mats[(order, metric)] = np.empty((k, *s.shape))
                    mats[(order, metric)][i] = s
                for how in hows:
                    out[(order, metric)][how][i] = aggregate(s, how)
    return (out, mats) if return_matrices else out


def permutation_null(sx: LayerCache, sy: LayerCache, metric: str, *,
                     n_permutations: int = 200, seed: int = 0,
                     aggregates: Iterable[str] = ("max",), permutations: Permutations = None,
                     **params: Any) -> dict[str, np.ndarray]:
    """One metric's null: {aggregate: (K,) array}; ``permutations`` as in
    :func:`null_distributions`."""
    return null_distributions(sx, sy, {metric: params}, n_permutations=n_permutations,
                              seed=seed, aggregates=aggregates,
                              permutations=permutations)[("xy", metric)]


def calibrate_pair(sx: LayerCache, sy: LayerCache, metrics: Mapping[str, Mapping[str, Any]], *,
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
    hows = check_aggregates(aggregates)
    alpha = check_alpha(alpha)
    todo = scored_orders(sx, metrics, both_orders)
    nulls, null_mats = null_distributions(sx, sy, metrics, n_permutations=n_permutations,
                                          seed=seed, aggregates=hows, both_orders=both_orders,
                                          progress=progress, permutations=permutations,
                                          return_matrices=True)
    out = {}
    for order, metric, p in todo:
        S = sweep(*in_order(sx, sy, order), metric, **p)
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


def calibrated_scores(sx: LayerCache, sy: LayerCache, metric: str, *,
                      aggregates: Iterable[str] = ("max",), n_permutations: int = 200,
                      alpha: float = 0.05, seed: int = 0,
                      permutations: Permutations = None,
                      **params: Any) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
    """One metric in the X-Y order: (S, {aggregate: row}); see :func:`calibrate_pair`."""
    return calibrate_pair(sx, sy, {metric: params}, aggregates=aggregates,
                          n_permutations=n_permutations, alpha=alpha,
                          seed=seed, both_orders=False,
                          permutations=permutations)[("xy", metric)]


def sample_size_curve(sx: LayerCache, sy: LayerCache, metric: str, sizes: Iterable[int], *,
                      how: str = "max", n_permutations: int = 200, alpha: float = 0.05,
                      seed: int = 0, **params: Any) -> list[dict[str, float]]:
    """Aggregate score and its null on nested, seeded subsets of the samples.

    The subsets grow along one random order, so each contains the smaller
    ones, and a curve that still climbs at the largest size says more samples
    would move the score.
    """
    check_aggregates([how])
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
