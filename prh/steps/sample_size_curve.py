"""Step of rule ``sample_size_curve``: is alignment still moving at this N?

For each model pair and metric, :func:`prh.calibration.sample_size_curve`
scores nested, seeded subsets of the samples (each contains the smaller ones)
and builds each subset's own permutation null; the rows go to
``sample_size.tsv`` (:mod:`prh.formats.sample_size`). Subsets are taken from the
preprocessed features of the full set (the clamp threshold stays that of all
N samples), so only the pairing statistics change with N.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Mapping, Sequence

log = logging.getLogger(__name__)


def run(caches: Mapping[str, str | os.PathLike], pairs: Sequence[Sequence[str]],
        out: str | os.PathLike, *, dataset: str, sizes: Sequence[int],
        metrics: Mapping[str, Mapping[str, Any]], n_permutations: int, alpha: float,
        seed: int, device: str, how: str = "max") -> None:
    """Write the sample-size curve of every pair and metric to a TSV.

    ``caches`` maps model names to their layer caches; ``pairs`` are (x, y) names.
    """
    from tqdm import tqdm

    from ..inference.permutation import sample_size_curve
    from ..formats.layer_cache import load_layer_cache
    from ..formats.sample_size import write_sample_size_tsv

    models = sorted({m for p in pairs for m in p})
    missing = [m for m in models if m not in caches]
    if missing:
        raise ValueError(f"no layer cache given for model(s) {', '.join(missing)}")
    loaded = {m: load_layer_cache(caches[m], device=device) for m in models}
    too_big = [n for n in sizes if any(n > s.n for s in loaded.values())]
    if too_big:
        n = min(s.n for s in loaded.values())
        raise ValueError(f"sample sizes {too_big} exceed the {n} samples of dataset {dataset!r}")
    rows = []
    todo = [(x, y, m) for x, y in pairs for m in metrics]
    for x, y, metric in tqdm(todo, desc="sample-size curves", mininterval=15):
        t0 = time.perf_counter()
        curve = sample_size_curve(loaded[x], loaded[y], metric, sizes, how=how,
                                  n_permutations=n_permutations, alpha=alpha, seed=seed,
                                  **dict(metrics[metric] or {}))
        log.info("%s vs %s, %s: %d sizes in %.1f s", x, y, metric, len(curve),
                 time.perf_counter() - t0)
        rows += [{"dataset": dataset, "model_x": x, "model_y": y, "metric": metric,
                  "aggregate": how, **r} for r in curve]
    write_sample_size_tsv(out, rows)
