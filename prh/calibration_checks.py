"""What calibration settings need of the samples: the fewest permutations
whose p-values can reach alpha, and the blocks a ``calibration.blocks``
manifest column must give for the block null and for the intervals'
resamples.

The pair and statistics steps run the block checks first thing, before any
scoring, since the blocks are known only from the manifest; each refusal is
one line naming ``calibration.blocks``, the column, the blocks found and the
blocks needed. Imports neither torch (until a resample check draws its
index sets) nor the workflow config: the jobs that import it do not rerun
when the config code changes, and the config imports it at plan time.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Mapping, Sequence

from .metric_info import get_metric, interval_scheme, units_needed


def min_permutations(alpha: float) -> int:
    """The fewest permutations K whose smallest p-value, 1 / (K + 1), is at
    most ``alpha`` (p <= alpha is significant)."""
    k = max(1, math.ceil(1 / alpha) - 1)
    while 1 / (k + 1) > alpha:  # 1 / alpha rounded down in floating point
        k += 1
    return k


def check_null_blocks(labels: Sequence[Any], column: str, alpha: float) -> None:
    """The block permutation null (:func:`prh.calibration.block_permutations`)
    exchanges whole blocks with blocks of the same size only, so it has
    prod over sizes of (blocks of that size)! distinct orders, the identity
    among them: an exact test's p-value is at least one over that count,
    which must reach ``alpha``."""
    counts = Counter(Counter(labels).values())  # block size -> blocks of that size
    need = min_permutations(alpha) + 1
    orders = 1
    for c in counts.values():
        for i in range(2, c + 1):
            orders *= i
            if orders >= need:
                return
    raise ValueError(
        f"calibration.blocks: manifest column {column!r} gives {len(set(labels))} "
        f"block(s) of {len(counts)} size(s); the permutation null exchanges only blocks of "
        f"equal size, which allows {orders} distinct order(s), and p <= calibration.alpha="
        f"{alpha:g} needs at least {need}; choose a column with more blocks of equal size, or "
        "set calibration.blocks: null")


def check_resample_blocks(labels: Sequence[Any], column: str,
                          metrics: Mapping[str, Mapping[str, Any] | None], method: str,
                          seed: int) -> None:
    """Each metric's interval scheme can resample the blocks of ``labels``:
    enough blocks for its groups, and each resample (drawn as the statistics
    job draws it) keeps enough samples for the metric."""
    from .inference.resampling import resample_indices

    blocks = len(set(labels))
    for metric, params in metrics.items():
        scheme, count = interval_scheme(metric, method)
        need = units_needed(scheme, count)
        if blocks < need:
            other = ", calibration.interval_method: subsample" if scheme == "jackknife" else ""
            raise ValueError(
                f"calibration.blocks: manifest column {column!r} gives {blocks} "
                f"block(s), fewer than the {need} that {metric}'s {scheme} needs "
                f"(calibration.interval_method: {method}); choose a column with more blocks"
                f"{other}, or set calibration.blocks: null")
        kept = min(len(s) for s in resample_indices(len(labels), scheme, count, seed=seed,
                                                    blocks=labels))
        resolved = {**get_metric(metric).defaults, **dict(params or {})}
        for key, floor in get_metric(metric).fewest_samples(**resolved).items():
            if kept < floor:
                what = f"{key}={resolved[key]}" if key != "N" else "it"
                raise ValueError(
                    f"calibration.blocks: manifest column {column!r} gives {blocks} "
                    f"blocks so uneven that a {scheme} resample of them keeps only {kept} "
                    f"samples, and {metric} ({what}) needs {floor}; choose a column with "
                    "more, evener blocks, or set calibration.blocks: null")
