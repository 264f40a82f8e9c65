"""The jobs' cost model: CPU seconds and resident MB of each alignment-side
job, built from the work's structure, as pure functions of numbers (samples
N, layers L, widths D, metrics with their parameters, permutations K,
resamples R). :class:`prh.config.resources.Resources` feeds them a config's
numbers; docs/cluster.md ("Cluster requests") describes the model and shows
it against measurement.

Time, in CPU seconds on one core of the machine the constants were fitted on
(``speed`` 1.0; a machine twice as fast is ``speed`` 2.0):

- every job: ``start_s`` (interpreter, imports, torch); pair and statistics
  jobs ``fixed_s`` more (checks of the inputs, writing the outputs);
- layer cache job, per layer: Gram matrix (N^2 D), SVCCA basis (N D min(N, D)),
  kNN lists and the file (N^2), reading and preprocessing (N D); and
  ``file`` per job;
- reading a layer cache: ``file``, and per layer N^2 (Gram matrix) and N D
  (kept layers);
- per model loaded, per layer: the kNN masks (N^2, any kNN metric) and each
  metric's own terms (``layer`` x N^2: kernels, entry-major copies);
- per layer pair, each metric in each of its orders: the sweep
  (``sweep`` x its count: N k for the kNN metrics and CKNNA, N d^2 for
  SVCCA, N^2 for CKA, plus ``sweep_call`` per sweep), and per permutation
  of a calibrated metric ``null_pair`` x that count plus ``null_moved`` x
  N^2 per layer of the permuted model (the one with fewer layers) plus
  ``null_call`` (the permutation's aggregates and calls, whatever its size);
- per resample of the statistics job: each model's gathers (``resample``:
  N'^2 and N' D per layer), kNN search and masks when a kNN metric is in the
  scheme, each metric's terms (``resample_layer`` x N'^2, SVCCA's basis
  ``resample_svcca`` x N' D min(N', D) per layer), and every pair's sweeps.

Memory: what is resident at once (:func:`model_bytes`, :func:`pair_mb`,
:func:`statistics_mb`, :func:`layer_cache_mb`) plus a per-job base fitted with
the times. The constants are fitted by ``benchmarks/bench_cost.py fit
--write`` and stored in ``cost.yaml`` beside this module, their one home.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import yaml

from ..metric_info import METRICS

CONSTANTS_PATH = Path(__file__).with_name("cost.yaml")
#: layers of a hub, file: or py: model without n_layers: LLaMA-65B has 81
#: hidden states, so this errs on the large side
DEFAULT_LAYERS = 100
#: width of such a model's layers without ``width``: LLaMA-65B's
DEFAULT_WIDTH = 8192
#: requests are these multiples of the estimate: time twice (the estimates
#: stay within [0.5, 2]x of measured times, docs/cluster.md), memory 1.5x
#: (resident arrays are counted; what varies is the allocator's slack)
RUNTIME_SAFETY = 2.0
MEM_SAFETY = 1.5
MIN_RUNTIME_MIN = 10
MB = 2**20
#: temporaries of one block of a sweep (prh.sweep.blocks, PRH_SWEEP_BLOCK_BYTES),
#: counted twice: a block's result and the lookups it is made of
BLOCK_MB = 2 * 256
#: a Procrustes null's gather of Y's factors for a batch of permutations
#: (prh.sweep.procrustes._GATHER_BYTES), counted twice: the gather and the
#: products and Gram matrices made of it
GATHER_MB = 2 * 128

#: one metric as the model sees it: (name, permutations K (0: uncalibrated),
#: its parameters as sorted (key, value) items), hashable for the caches
MetricSpec = tuple[str, int, tuple[tuple[str, object], ...]]


@lru_cache(maxsize=1)
def constants() -> dict:
    """The fitted constants (cost.yaml)."""
    return yaml.safe_load(CONSTANTS_PATH.read_text())


def write_constants(c: Mapping, note: str) -> None:
    """Store fitted constants (benchmarks/bench_cost.py fit --write)."""
    head = ("# The cost model's constants (prh/config/cost.py), fitted on one machine by\n"
            f"# {note}.\n# CPU seconds per unit of work; MB of a job beyond its resident arrays.\n")
    CONSTANTS_PATH.write_text(head + yaml.safe_dump(_plain(c), sort_keys=True))
    constants.cache_clear()


def _plain(x):
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    return float(f"{float(x):.4g}")


# -- work counts ------------------------------------------------------------------


def params_of(metric: str, params: Mapping | None) -> dict:
    """A metric's parameters with its defaults filled in."""
    info = METRICS.get(metric)
    return {**(dict(info.defaults) if info else {}), **dict(params or {})}


def spec(metric: str, k: int, params: Mapping | None) -> MetricSpec:
    return (metric, int(k), tuple(sorted(params_of(metric, params).items())))


def metric_orders(metric: str) -> int:
    """Orders a pair is scored in: 2 for an asymmetric metric."""
    info = METRICS.get(metric)
    return 1 if info is not None and info.symmetric else 2


def sweep_count(metric: str, n: float, lx: int, ly: int, params: Mapping | None,
                widths: tuple[int, int] = (0, 0)) -> float:
    """The work of one order's layer sweep: Lx Ly times N k (kNN metrics,
    CKNNA: lookups of k neighbours), N d^2 (SVCCA, PWCCA: d x d products of
    bases), r_x r_y (N + 2 min(r_x, r_y)) (Procrustes: the product of two
    factors r = min(N, D) wide, its smaller Gram matrix and that matrix's
    eigenvalues, ~min(r_x, r_y)^3; ``widths`` the layers' D, 0 when not
    known: N) or N^2 (CKA, RSA, ridge regression, RV: products of flattened
    N x N matrices)."""
    p = params_of(metric, params)
    if "topk" in p:
        per = n * p["topk"]
    elif "cca_dim" in p or "pca_dim" in p:
        per = n * p.get("cca_dim", p.get("pca_dim")) ** 2
    elif METRICS.get(metric) is not None and METRICS[metric].family == "shape":
        rx, ry = (min(n, w) if w else n for w in widths)
        per = rx * ry * (n + 2 * min(rx, ry))
    else:
        per = n * n
    return lx * ly * per


def layer_cache_counts(n: int, layers: int, width: int) -> list[float]:
    """The layer cache job's work: [Gram matrices, SVCCA bases, kNN and file, reading]."""
    return [layers * n * n * width, layers * n * width * min(n, width), layers * n * n,
            layers * n * width]


def subset_size(n: int, method: str, count: int) -> int:
    """Samples in one resample: N less one of G groups (jackknife), N/2 (subsample)."""
    return n - n // count if method == "jackknife" else n // 2


def _metric(metric: str) -> dict:
    table = constants()["metrics"]
    if metric in table:
        return table[metric]
    return {k: max(t[k] for t in table.values()) for k in next(iter(table.values()))}


def _knn(metrics: Iterable[MetricSpec]) -> bool:
    return any(dict(p).get("topk") for _, _, p in metrics)


# -- time ---------------------------------------------------------------------------


def start_s() -> float:
    return constants()["start_s"]


def fixed_s(job: str) -> float:
    """A pair (or block) or statistics job's own fixed work beyond start-up."""
    return constants()["fixed_s"][job]


def layer_cache_s(n: int, layers: int, width: int) -> float:
    """A layer cache job: start-up and one model's per-layer work."""
    c = constants()["layer_cache"]
    work = layer_cache_counts(n, layers, width)
    return start_s() + c["file"] + sum(c[k] * w for k, w in zip(("gram", "svcca", "knn", "read"),
                                                                work))


def model_s(n: int, layers: int, width: int, metrics: Sequence[MetricSpec]) -> float:
    """One model in an alignment job: its layer cache read (with its kept
    layers, ``width`` per layer; 0: none kept), its kNN masks and each
    metric's own per-layer terms."""
    c = constants()
    s = c["load"]["file"] + layers * (c["load"]["gram"] * n * n + c["load"]["layers"] * n * width)
    if _knn(metrics):
        s += c["mask"] * layers * n * n
    return s + sum(_metric(m)["layer"] * layers * n * n for m, _, _ in metrics)


@lru_cache(maxsize=4096)
def pair_work_s(n: int, lx: int, ly: int, metrics: tuple[MetricSpec, ...],
                widths: tuple[int, int] = (0, 0)) -> float:
    """A pair's sweeps and nulls, beyond its models' per-layer work: per
    metric and order the sweep, and K permutations of it when calibrated
    (``widths``: the layers', for Procrustes; 0: not known).
    Cached: a block of thousands of pairs has few distinct layer counts."""
    out = 0.0
    for metric, k, p in metrics:
        c, o = _metric(metric), metric_orders(metric)
        w = sweep_count(metric, n, lx, ly, dict(p), widths)
        out += o * (c["sweep"] * w + c["sweep_call"])
        if k:
            out += k * o * (c["null_pair"] * w + c["null_moved"] * min(lx, ly) * n * n
                            + c["null_call"])
    return out


def pair_s(n: int, lx: int, ly: int, metrics: Sequence[MetricSpec],
           widths: tuple[int, int] = (0, 0)) -> float:
    """A pair job: start-up, both models (``widths``: their kept layers'),
    the pair's sweeps and nulls."""
    metrics = tuple(metrics)
    return (start_s() + fixed_s("pair") + model_s(n, lx, widths[0], metrics)
            + model_s(n, ly, widths[1], metrics) + pair_work_s(n, lx, ly, metrics, widths))


def statistics_s(n: int, models: Mapping[str, tuple[int, int]],
                 pairs: Sequence[tuple[str, str]], metrics: Mapping[str, Mapping],
                 schemes: Mapping[str, tuple[str, int]]) -> float:
    """The statistics job: start-up; every model read (``models``: name ->
    (layers, kept width)) and every pair swept on the full sample; then per
    interval scheme, R times: every model resampled (gathers, kNN search and
    masks, each metric's terms) and every pair re-scored."""
    full = tuple(spec(m, 0, p) for m, p in metrics.items())
    s = start_s() + fixed_s("statistics")
    s += sum(model_s(n, lay, wid, full) for lay, wid in models.values())
    s += sum(pair_work_s(n, models[x][0], models[y][0], full, (models[x][1], models[y][1]))
             for x, y in pairs)
    for (method, count), g in _by_scheme(metrics, schemes).items():
        sub = subset_size(n, method, count)
        per = sum(resample_model_s(sub, lay, wid, g) for lay, wid in models.values())
        per += sum(pair_work_s(sub, models[x][0], models[y][0], g, (models[x][1], models[y][1]))
                   for x, y in pairs)
        s += count * per
    return s


def resample_model_s(n: int, layers: int, width: int, metrics: Sequence[MetricSpec]) -> float:
    """One model on one resample of ``n`` samples: gathers of its Gram
    matrices and kept layers, kNN search and masks, each metric's terms."""
    c = constants()
    s = layers * (c["resample"]["gram"] * n * n + c["resample"]["layers"] * n * width)
    if _knn(metrics):
        s += (c["knn_search"] + c["mask"]) * layers * n * n
    for m, _, _ in metrics:
        t = _metric(m)
        s += layers * (t["resample_layer"] * n * n + t["resample_svcca"] * n * width * min(n, width))
    return s


# -- memory -------------------------------------------------------------------------

#: bytes per layer and N^2 that a model holds for each term: its Gram matrix;
#: kNN mask and its entry-major copy (kNN metrics, CKNNA); CKNNA's entry-major
#: Gram matrix; a CKA null's fixed side (the model with more layers: packed
#: upper triangle, per CKA variant) or moved side (entry-major kernels); the
#: N x N float32 matrices of RSA and ridge regression (and their nulls' sides
#: as CKA's)
TERM_BYTES = {"gram": 4, "mask": 2, "cknna": 4, "null_fixed": 2, "null_moved": 4,
              "pairwise": 4}


def model_bytes(n: int, layers: int, width: int, metrics: Sequence[MetricSpec],
                side: str = "") -> float:
    """Bytes one model holds in an alignment job: its layer cache (Gram matrices,
    offsets, kNN lists, SVCCA bases, kept layers at ``width`` floats) and
    the terms its metrics build; ``side`` "fixed" or "moved" for a null's
    sides (calibrated cka, unbiased_cka, rv, RSA, ridge regression)."""
    per = TERM_BYTES["gram"] * n * n
    if _knn(metrics):
        per += TERM_BYTES["mask"] * n * n
    names = {m for m, _, _ in metrics}
    if "cknna" in names:
        per += TERM_BYTES["cknna"] * n * n
    cka = sum(1 for m, k, _ in metrics if k and m in ("cka", "unbiased_cka", "rv"))
    if cka and side == "fixed":
        per += cka * TERM_BYTES["null_fixed"] * n * n
    elif cka and side == "moved":
        per += TERM_BYTES["null_moved"] * n * n
    small = 0
    for m, k, p in metrics:
        p = dict(p)
        small += 16 * n * p.get("topk", 0) + 8 * n * p.get("cca_dim", 0)
        family = METRICS[m].family if m in METRICS else ""
        if family in ("rsa", "regression"):
            # its N x N matrices (ridge: X's residual forms and Y's scaled
            # Gram matrices), and a null's fixed blocks or moved copy
            per += TERM_BYTES["pairwise"] * (2 if family == "regression" else 1) * n * n
            if k and side:
                per += TERM_BYTES["null_" + side] * n * n
        elif family == "shape":  # float64 factors min(N, D) wide
            small += 8 * n * min(n, width or n)
        elif "pca_dim" in p:  # float64 basis and neuron weights
            small += 8 * p["pca_dim"] * (n + (width or n))
    return layers * (per + small + 4 * n * width + 8 * n)


def _base_mb(job: str) -> float:
    return constants()["base_mb"][job]


def block_temp_mb(n: int, lx: int, ly: int, metrics: Sequence[MetricSpec]) -> float:
    """Temporaries of one block of a sweep: up to ~40 bytes per looked-up
    entry (CKNNA's dense sweep: Lx Ly N k of them), twice (a block's inputs
    and result), within the blocks' budget (BLOCK_MB); and a calibrated
    Procrustes measure's gathers (GATHER_MB)."""
    k = max([dict(p).get("topk", 0) for _, _, p in metrics] + [1])
    gather = any(c and METRICS.get(m) is not None and METRICS[m].family == "shape"
                 for m, c, _ in metrics)
    return min(BLOCK_MB, 2 * 40 * lx * ly * n * k / MB) + (GATHER_MB if gather else 0)


def pair_bytes(n: int, lx: int, ly: int, metrics: Sequence[MetricSpec],
               widths: tuple[int, int] = (0, 0)) -> float:
    """What a pair job holds: both models with their terms and the nulls'
    layer x layer matrices (K Lx Ly float64 per metric and order)."""
    fixed_x = lx >= ly
    b = (model_bytes(n, lx, widths[0], metrics, "fixed" if fixed_x else "moved")
         + model_bytes(n, ly, widths[1], metrics, "moved" if fixed_x else "fixed"))
    return b + sum(8 * k * metric_orders(m) * lx * ly for m, k, _ in metrics)


def pair_mb(n: int, lx: int, ly: int, metrics: Sequence[MetricSpec],
            widths: tuple[int, int] = (0, 0)) -> float:
    """A pair job's MB: its base, :func:`pair_bytes` and a sweep block's temporaries."""
    metrics = tuple(metrics)
    return (_base_mb("pair") + block_temp_mb(n, lx, ly, metrics)
            + pair_bytes(n, lx, ly, metrics, widths) / MB)


def block_mb(n: int, loaded_bytes: float, null_bytes: float, largest: tuple[int, int],
             metrics: Sequence[MetricSpec]) -> float:
    """A pair block job's MB: its base, the models held at once
    (``loaded_bytes``: :func:`model_bytes` summed), the null matrices of its
    pairs (``null_bytes``) and a sweep block's temporaries (``largest``:
    the layers of its largest pair)."""
    metrics = tuple(metrics)
    return (_base_mb("pair") + block_temp_mb(n, *largest, metrics)
            + (loaded_bytes + null_bytes) / MB)


def _by_scheme(metrics: Mapping[str, Mapping], schemes: Mapping[str, tuple[str, int]]
               ) -> dict[tuple[str, int], tuple[MetricSpec, ...]]:
    groups: dict[tuple[str, int], list[MetricSpec]] = {}
    for m, p in metrics.items():
        groups.setdefault(tuple(schemes[m]), []).append(spec(m, 0, p))
    return {g: tuple(v) for g, v in groups.items()}


def statistics_bytes(n: int, models: Mapping[str, tuple[int, int]],
                     metrics: Mapping[str, Mapping],
                     schemes: Mapping[str, tuple[str, int]]) -> float:
    """What the statistics job holds at its peak: every model's layer cache and two
    resamples of every model (the next one is gathered while the last is
    still held with its terms), or at the end every model with its terms."""
    full = tuple(spec(m, 0, p) for m, p in metrics.items())
    caches = sum(model_bytes(n, lay, wid, ()) for lay, wid in models.values())
    peak = sum(model_bytes(n, lay, wid, full) for lay, wid in models.values())
    for (method, count), group in _by_scheme(metrics, schemes).items():
        sub = subset_size(n, method, count)
        two = sum(model_bytes(sub, lay, wid, group) + model_bytes(sub, lay, wid, ())
                  for lay, wid in models.values())
        peak = max(peak, caches + two)
    return peak


def statistics_mb(n: int, models: Mapping[str, tuple[int, int]], metrics: Mapping[str, Mapping],
                  schemes: Mapping[str, tuple[str, int]],
                  pairs: Sequence[tuple[str, str]]) -> float:
    """The statistics job's MB: its base, :func:`statistics_bytes`, the
    temporaries of its largest pair's sweep."""
    full = tuple(spec(m, 0, p) for m, p in metrics.items())
    lx, ly = max(((models[x][0], models[y][0]) for x, y in pairs), key=lambda p: p[0] * p[1])
    return (_base_mb("statistics") + block_temp_mb(n, lx, ly, full)
            + statistics_bytes(n, models, metrics, schemes) / MB)


def layer_cache_bytes(n: int, layers: int, width: int) -> float:
    """What a layer cache job holds at its peak: the features read and stacked
    (two copies of N L D float32), or the prepared layers with their Gram
    matrices and a ranking copy of them."""
    f = 4 * n * layers * width
    g = 4 * layers * n * n
    return max(2 * f, f + 2 * g)


def layer_cache_mb(n: int, layers: int, width: int) -> float:
    return _base_mb("layer_cache") + layer_cache_bytes(n, layers, width) / MB


# -- requests -------------------------------------------------------------------


def requests(seconds: float, mb: float, speed: float = 1.0) -> dict[str, int]:
    """What a job asks of the cluster for an estimate: RUNTIME_SAFETY times
    its seconds at ``speed`` (at least MIN_RUNTIME_MIN minutes) and
    MEM_SAFETY times its MB."""
    return {"runtime": max(MIN_RUNTIME_MIN, math.ceil(RUNTIME_SAFETY * seconds / speed / 60)),
            "mem_mb": math.ceil(MEM_SAFETY * mb)}


def peak_loaded(pairs, layers: Callable[[str], int]) -> int:
    """The most layers (``layers(model)`` each) loaded at once when the pairs
    are scored in order, each model loaded at its first pair and dropped
    after its last (:func:`prh.steps.pair_scores.run_block`)."""
    return max_loaded(pairs, layers)


def max_loaded(pairs, size: Callable[[str], float]) -> float:
    """The largest sum of ``size(model)`` over the models held at once
    (:func:`peak_loaded`)."""
    last = {}
    for k, pair in enumerate(pairs):
        for m in pair:
            last[m] = k
    loaded: set[str] = set()
    held = peak = 0
    for k, pair in enumerate(pairs):
        for m in set(pair) - loaded:
            loaded.add(m)
            held += size(m)
        peak = max(peak, held)
        for m in set(pair):
            if last[m] == k:
                loaded.discard(m)
                held -= size(m)
    return peak
