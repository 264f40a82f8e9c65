"""The cost model of the features representation (docs/large-n.md): CPU
seconds and resident MB of the alignment-side jobs when a dataset's layer
caches hold rows and kNN lists instead of N x N Gram matrices
(:mod:`prh.sweep.representation`). No term grows as N^2 except the kNN
search, which is O(N^2 D) work in O(N) memory. Pure functions of numbers, as
:mod:`.cost`; :class:`prh.config.resources.Resources` chooses this model for
a dataset in the features representation.

Time, in CPU seconds of one core (constants ``features`` in ``cost.yaml``,
fitted by ``benchmarks/bench_large_n.py --fit``):

- layer cache job, per layer: reading and preprocessing (``prepare`` x N D),
  the exact search of the widest k (``product`` x N^2 D, the blocked
  products, and ``rank`` x N^2, the ranking values and their ``topk``), the
  narrower lists read from it (``derive`` x N K'), the file (``file``);
- reading a layer cache (``load`` per byte: rows, offsets, lists);
- per model loaded, per layer: what each metric builds once (``layer``: the
  kNN values or CKNNA's mutual-neighbour terms, N k; the CKAs' kernel terms,
  ``kernel`` x N D^2 + ``kernel_rows`` x N D, once for all of them);
- per layer pair, each metric and order: a kNN metric's or CKNNA's sweep
  reads Y's lists for each of X's neighbours (``sweep`` x N k^2), per
  permutation the same (``null`` x N k^2); the CKAs' cross-covariance (``cov``
  x N D_x D_y + ``cov_rows`` x N (D_x + D_y) / 2, shared by cka, unbiased_cka
  and rv), per permutation of each calibrated one the same again (the fit's
  ``cov_rows`` includes the gather of the permuted rows);
- per resample of N' samples (statistics job, sample-size curve): the rows
  gathered (``prepare`` x N' D) and each k's lists read from the wide ones
  (``derive`` x N' K'), with the rows that cannot be read from them (a share
  :func:`reread_share` of N') ranked again against the subset (``product`` x
  N' D and ``rank`` x N' per such row; a whole search when most must be);
  the CKAs' kernel terms; the pairs' sweeps and nulls at N'.

Metrics without a measured feature-space cost (SVCCA, PWCCA, Procrustes)
are counted with the dense model's sweep terms, which do not grow as N^2
for them, and their per-layer bases as the dense model's resamples count
them (N D min(N, D)).

Memory: the base of each job (:func:`prh.config.cost._base_mb`), each model's
rows and lists with their metric terms (:func:`model_bytes`), and the
temporaries of a search block (:data:`SEARCH_MB`) or of a sweep's reads of
kNN lists and of a cross-covariance's chunks (:data:`SWEEP_MB`).
"""

from __future__ import annotations

from functools import lru_cache
from math import comb
from typing import Mapping, Sequence

from . import cost
from .cost import MB, MetricSpec

#: a search block's temporaries (prh.sweep.search, PRH_SEARCH_BLOCK_BYTES:
#: 256 MiB of float32 products and ranking values) and its topk
SEARCH_MB = 288
#: a sweep's temporaries: chunks of kNN list reads (64 MiB,
#: prh.sweep.representation._READ_BYTES) and their comparisons, float64
#: chunks of a cross-covariance (2 x 32 MiB)
SWEEP_MB = 256

KERNEL_METRICS = ("cka", "unbiased_cka", "rv")


def constants() -> dict:
    return cost.constants()["features"]


def _topk(params) -> int:
    return int(dict(params).get("topk") or 0)


def _is_knn(metric: str, params) -> bool:
    return bool(_topk(params))


def _is_kernel(metric: str) -> bool:
    return metric in KERNEL_METRICS


def _metric(metric: str) -> dict:
    table = constants()["metrics"]
    if metric in table:
        return table[metric]
    return {k: max(t[k] for t in table.values()) for k in next(iter(table.values()))}


def list_bytes(n: int, ks: Sequence[int]) -> float:
    """Bytes of one layer's kNN lists for every stored k: int64 indices and
    float32 products and ranking values."""
    return 16.0 * n * sum(ks)


# -- the layer cache job ------------------------------------------------------------


def layer_cache_s(n: int, layers: int, width: int, ks: Sequence[int]) -> float:
    """One model's features layer cache: start-up, per layer its preprocessing,
    one search of the widest k, the narrower lists read from it, the file."""
    c = constants()
    per = c["prepare"] * n * width
    if ks:
        wide = max(ks)
        per += c["product"] * n * n * width + c["rank"] * n * n
        per += sum(c["derive"] * n * wide for k in ks if k != wide)
    return cost.start_s() + c["file"] + layers * per


def layer_cache_mb(n: int, layers: int, width: int, ks: Sequence[int]) -> float:
    """Peak of a features layer cache job: the features read and stacked (two
    copies of N L D float32), or the prepared rows with one float64 layer in
    preparation, or the rows with the lists and a search block."""
    rows = 4.0 * n * layers * width
    read = 2 * rows
    prepare = 2 * rows + 8.0 * n * width + 24.0 * n * layers
    search = rows + layers * list_bytes(n, ks) + SEARCH_MB * MB
    return cost._base_mb("layer_cache") + max(read, prepare, search) / MB


# -- a model in an alignment job ----------------------------------------------------


def load_s(n: int, layers: int, width: int, ks: Sequence[int]) -> float:
    """Reading a features layer cache: its rows, offsets and lists."""
    c = constants()
    return c["load"] * layers * (4.0 * n * width + 24.0 * n + list_bytes(n, ks))


def terms_s(n: int, layers: int, width: int, metrics: Sequence[MetricSpec]) -> float:
    """What the metrics build once per model: kNN values and CKNNA's terms
    (per k and metric), the CKAs' kernel terms (once), SVCCA/PWCCA bases."""
    c = constants()
    s = 0.0
    if any(_is_kernel(m) for m, _, _ in metrics):
        s += layers * (c["kernel"] * n * width * width + c["kernel_rows"] * n * width)
    for m, _, p in metrics:
        if _is_knn(m, p):
            s += _metric(m)["layer"] * layers * n * _topk(p)
        elif not _is_kernel(m):
            s += cost._metric(m)["resample_svcca"] * layers * n * width * min(n, width)
    return s


def model_s(n: int, layers: int, width: int, metrics: Sequence[MetricSpec],
            ks: Sequence[int]) -> float:
    return load_s(n, layers, width, ks) + terms_s(n, layers, width, metrics)


@lru_cache(maxsize=4096)
def pair_work_s(n: int, lx: int, ly: int, metrics: tuple[MetricSpec, ...],
                widths: tuple[int, int]) -> float:
    """A pair's sweeps and nulls: per metric and order the sweep, and K
    permutations of it when calibrated. Cached: a block of thousands of
    pairs has few distinct shapes."""
    c = constants()
    dx, dy = widths
    s = 0.0
    # a cross-covariance: N D_x D_y products, N (D_x + D_y) rows converted (and
    # a null's permuted rows gathered)
    cov = c["cov"] * lx * ly * n * dx * dy + c["cov_rows"] * n * (ly * dx + lx * dy) / 2
    if any(_is_kernel(m) for m, _, _ in metrics):
        s += cov  # one for all of them
    for m, k, p in metrics:
        o = cost.metric_orders(m)
        if _is_knn(m, p):
            t, work = _metric(m), lx * ly * n * _topk(p) ** 2
            s += o * (t["sweep"] * work + t["call"]) + k * o * (t["null"] * work + t["call"])
        elif _is_kernel(m):
            s += k * cov
        else:
            d = cost._metric(m)
            w = cost.sweep_count(m, n, lx, ly, dict(p), widths)
            s += o * (d["sweep"] * w + d["sweep_call"]) + k * o * (d["null_pair"] * w
                                                                + d["null_call"])
    return s


def pair_s(n: int, lx: int, ly: int, metrics: Sequence[MetricSpec],
           widths: tuple[int, int], ks: Sequence[int]) -> float:
    return (cost.start_s() + cost.fixed_s("pair") + model_s(n, lx, widths[0], metrics, ks)
            + model_s(n, ly, widths[1], metrics, ks) + pair_work_s(n, lx, ly, tuple(metrics), widths))


def model_bytes(n: int, layers: int, width: int, metrics: Sequence[MetricSpec],
                ks: Sequence[int]) -> float:
    """One model's rows (float32), offsets and row norms, stored lists, and
    per layer what its metrics build: kNN values (float64 and the
    indices' copies), CKNNA's mutual-neighbour flags, kernel terms."""
    per = 4.0 * n * width + 24.0 * n + list_bytes(n, ks)
    for m, _, p in metrics:
        k = _topk(p)
        per += 16.0 * n * k + (n * k if m == "cknna" else 0)
    if any(_is_kernel(m) for m, _, _ in metrics):
        per += 16.0 * n
    return layers * per


def pair_mb(n: int, lx: int, ly: int, metrics: Sequence[MetricSpec],
            widths: tuple[int, int], ks: Sequence[int]) -> float:
    nulls = sum(8 * k * cost.metric_orders(m) * lx * ly for m, k, _ in metrics)
    return (cost._base_mb("pair") + SWEEP_MB + (model_bytes(n, lx, widths[0], metrics, ks)
                                                + model_bytes(n, ly, widths[1], metrics, ks)
                                                + nulls) / MB)


# -- resamples -----------------------------------------------------------------------


def reread_share(kept: float, k: int, wide: int | None) -> float:
    """The share of a subset's rows whose k-list cannot be read from a K' =
    ``wide`` list when a share ``kept`` of the samples is kept: the binomial
    chance that at most k of a row's K' neighbours are kept (ties, rarer,
    are left out); 1 without a wide list."""
    if not wide or wide <= k:
        return 1.0
    kept = min(max(kept, 0.0), 1.0)
    return sum(comb(wide, j) * kept**j * (1 - kept) ** (wide - j) for j in range(k + 1))


def resample_model_s(sub: int, n: int, layers: int, width: int,
                     metrics: Sequence[MetricSpec], wide: Mapping[int, int]) -> float:
    """One model on a subset of ``sub`` of its ``n`` samples: rows gathered,
    each k's lists read from the wide ones (``wide``: k -> K' stored) or the
    rows that cannot be ranked again, and the metrics' per-layer terms."""
    c = constants()
    s = c["prepare"] * layers * sub * width
    for k in sorted({_topk(p) for m, _, p in metrics if _is_knn(m, p)}):
        share = reread_share(sub / n, k, wide.get(k))
        rows = sub if share > 0.5 else share * sub
        s += layers * (c["derive"] * sub * (wide.get(k) or 0)
                       + rows * (c["product"] * sub * width + c["rank"] * sub))
    return s + terms_s(sub, layers, width, metrics)


def statistics_s(n: int, models: Mapping[str, tuple[int, int]],
                 pairs: Sequence[tuple[str, str]], metrics: Mapping[str, Mapping],
                 schemes: Mapping[str, tuple[str, int]], ks: Sequence[int]) -> float:
    """The statistics job: every model read and every pair swept on the full
    sample, then per interval scheme, R times, every model resampled and
    every pair re-scored."""
    full = tuple(cost.spec(m, 0, p) for m, p in metrics.items())
    wide = wide_lists(ks)
    s = cost.start_s() + cost.fixed_s("statistics")
    s += sum(model_s(n, lay, wid, full, ks) for lay, wid in models.values())
    s += sum(pair_work_s(n, models[x][0], models[y][0], full, (models[x][1], models[y][1]))
             for x, y in pairs)
    for (method, count), g in cost._by_scheme(metrics, schemes).items():
        sub = cost.subset_size(n, method, count)
        per = sum(resample_model_s(sub, n, lay, wid, g, wide) for lay, wid in models.values())
        per += sum(pair_work_s(sub, models[x][0], models[y][0], g, (models[x][1], models[y][1]))
                   for x, y in pairs)
        s += count * per
    return s


def statistics_mb(n: int, models: Mapping[str, tuple[int, int]], metrics: Mapping[str, Mapping],
                  schemes: Mapping[str, tuple[str, int]], ks: Sequence[int]) -> float:
    """All models with their terms, and two resamples of each (the next
    gathered while the last is held)."""
    full = tuple(cost.spec(m, 0, p) for m, p in metrics.items())
    held = sum(model_bytes(n, lay, wid, full, ks) for lay, wid in models.values())
    peak = held
    for (method, count), group in cost._by_scheme(metrics, schemes).items():
        sub = cost.subset_size(n, method, count)
        kk = [_topk(p) for _, _, p in group if _topk(p)]
        two = sum(2 * model_bytes(sub, lay, wid, group, kk) for lay, wid in models.values())
        peak = max(peak, held + two)
    return cost._base_mb("statistics") + SWEEP_MB + peak / MB


def wide_lists(ks: Sequence[int]) -> dict[int, int]:
    """k -> the widest stored list K' > k, for each stored k."""
    out = {}
    for k in ks:
        wider = [w for w in ks if w > k]
        if wider:
            out[k] = max(wider)
    return out


def sample_size_s(n: int, lx: int, ly: int, widths: tuple[int, int],
                  metrics: Sequence[MetricSpec], sizes: Sequence[int],
                  ks: Sequence[int]) -> float:
    """One pair's curve: both models resampled once per size for all metrics,
    each metric swept and its null built at that size (the models' reads
    counted by the caller)."""
    wide = wide_lists(ks)
    s = 0.0
    for size in sizes:
        s += (resample_model_s(size, n, lx, widths[0], metrics, wide)
              + resample_model_s(size, n, ly, widths[1], metrics, wide)
              + pair_work_s(size, lx, ly, metrics, widths))
    return s


def knn_ks(metrics: Sequence[MetricSpec]) -> list[int]:
    return sorted({_topk(p) for _, _, p in metrics if _topk(p)})


