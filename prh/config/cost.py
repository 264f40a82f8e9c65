"""The jobs' cost model, as pure functions of numbers (samples, layers,
per-metric costs, permutations, resamples) giving seconds and MB, and the
cluster requests made of them (docs/cluster.md, "Cluster requests").
:class:`prh.config.resources.Resources` feeds them a config's numbers.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Iterable, Sequence

#: layers of a hub, file: or py: model without n_layers: LLaMA-65B has 81
#: hidden states, so this errs on the large side; also the layers that the
#: stats and sample-size jobs' requests allow for
DEFAULT_LAYERS = 100
#: per metric: (sweep seconds per layer pair at N=COST_N, one permutation's
#: cost and one resample's cost (the statistics job) as fractions of that sweep),
#: measured with benchmarks/bench_calibration.py (N=512, D=256, 4x4 layers,
#: K=20, B=20, 2 CPU threads shared with a running workflow: upper bounds;
#: the sweep's per-layer work is counted per layer pair), rounded up
COST_N = 512
METRIC_COST = {
    "mutual_knn": (0.035, 0.09, 0.6),
    "cycle_knn": (0.02, 0.03, 1.4),
    "lcs_knn": (0.035, 0.21, 1.5),
    "edit_distance_knn": (0.02, 0.92, 1.5),
    "cka": (0.18, 0.03, 1.2),
    # not measured yet: assumed like their nearest measured relatives
    "unbiased_cka": (0.18, 0.03, 1.2),
    "cknna": (0.035, 0.21, 1.5),
    "svcca": (0.18, 0.21, 1.5),
}
DEFAULT_METRIC_COST = (0.18, 0.92, 1.5)  # any other metric: the largest of each
START_S = 60  # interpreter, torch import, reading both stats files
SAFETY = 2  # requests are twice the estimate
MIN_RUNTIME_MIN = 10
BASE_MB = 1500  # interpreter and torch
MEM_COPIES = 6  # float64 N x N matrices per layer
KEPT_WIDTH = 8192  # floats per sample of a layer kept for SVCCA's resamples


def metric_cost(metric: str) -> tuple[float, float, float]:
    """(sweep seconds, permutation fraction, resample fraction) of a metric."""
    return METRIC_COST.get(metric, DEFAULT_METRIC_COST)


def resident_mb(n: int, layers: int, copies: int = MEM_COPIES, kept_width: int = 0) -> float:
    """MB for ``layers`` layers of ``n`` samples held at once: ``copies``
    float64 N x N matrices each (Gram matrix, kernel variants, kNN masks),
    plus the layer itself at ``kept_width`` float32 per sample (SVCCA's
    resamples; 0: not kept), plus BASE_MB."""
    mb = BASE_MB + layers * copies * n * n * 8 / 2**20
    if kept_width:
        mb += layers * n * kept_width * 4 / 2**20
    return mb


@lru_cache(maxsize=4096)
def pair_work_s(n: int, lx: int, ly: int, terms: tuple[tuple[int, float, float, int], ...]
                ) -> float:
    """A pair's estimated seconds beyond START_S: per layer pair (lx x ly),
    each metric's sweep at N=COST_N scaled by (n/COST_N)^2, times its orders
    (2 for an asymmetric metric: both directions), times 1 + K x one
    permutation's cost. ``terms``: (orders, sweep seconds, permutation
    fraction, K) per metric, K = 0 where not calibrated. Cached: a block of
    thousands of pairs has only a few distinct layer counts."""
    per_pair = 0.0
    for orders, sweep_s, perm, k in terms:
        per_pair += orders * sweep_s * (1 + k * perm)
    return lx * ly * (n / COST_N) ** 2 * per_pair


def statistics_s(n: int, layer_pairs: Iterable[tuple[int, int]],
                 terms: Sequence[tuple[int, float, float, int]]) -> float:
    """The statistics job's seconds: START_S plus, per pair (its models'
    layer counts), each metric's R resamples re-scoring the pair. ``terms``:
    (orders, sweep seconds, resample fraction, R) per metric."""
    seconds = START_S
    for lx, ly in layer_pairs:
        lxy = lx * ly * (n / COST_N) ** 2
        for orders, sweep_s, resample, reps in terms:
            seconds += lxy * orders * sweep_s * (1 + reps * resample)
    return seconds


def requests(seconds: float, mb: float) -> dict[str, int]:
    """What a job asks of the cluster for an estimate: SAFETY times it, and
    at least MIN_RUNTIME_MIN minutes."""
    return {"runtime": max(MIN_RUNTIME_MIN, math.ceil(SAFETY * seconds / 60)),
            "mem_mb": math.ceil(SAFETY * mb)}


def peak_loaded(pairs, layers: Callable[[str], int]) -> int:
    """The most layers (``layers(model)`` each) loaded at once when the pairs
    are scored in order, each model loaded at its first pair and dropped
    after its last (:func:`prh.steps.pair_scores.run_block`)."""
    last = {}
    for k, pair in enumerate(pairs):
        for m in pair:
            last[m] = k
    loaded: set[str] = set()
    held = peak = 0
    for k, pair in enumerate(pairs):
        for m in set(pair) - loaded:
            loaded.add(m)
            held += layers(m)
        peak = max(peak, held)
        for m in set(pair):
            if last[m] == k:
                loaded.discard(m)
                held -= layers(m)
    return peak
