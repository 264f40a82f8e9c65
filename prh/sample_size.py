"""The sample-size curve as a workflow step: is alignment still moving at this N?

For each model pair and metric, :func:`prh.calibration.sample_size_curve`
scores nested, seeded subsets of the samples (each contains the smaller ones)
and builds each subset's own permutation null. The table has one row per
(pair, metric, subset size), columns :data:`COLUMNS`. Subsets are taken from
the preprocessed features of the full set (the clamp threshold stays that of
all N samples), so only the pairing statistics change with N.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from typing import Any, Mapping, Sequence

from .jobio import atomic_output

log = logging.getLogger(__name__)

COLUMNS = ("dataset", "model_x", "model_y", "metric", "aggregate", "n", "score", "p_value",
           "tau", "calibrated", "null_mean", "null_std", "n_permutations", "alpha")


def sample_size_table(stats: Mapping[str, str | os.PathLike], pairs: Sequence[Sequence[str]],
                      out: str | os.PathLike, *, dataset: str, sizes: Sequence[int],
                      metrics: Mapping[str, Mapping[str, Any]], n_permutations: int = 100,
                      alpha: float = 0.05, seed: int = 0, how: str = "max",
                      device: str | None = None) -> None:
    """Write the sample-size curve of every pair and metric to a TSV.

    ``stats`` maps model names to their stats files; ``pairs`` are (x, y) names.
    """
    from tqdm import tqdm

    from .calibration import sample_size_curve
    from .stats_io import load_model_stats

    models = sorted({m for p in pairs for m in p})
    missing = [m for m in models if m not in stats]
    if missing:
        raise ValueError(f"no stats file given for model(s) {', '.join(missing)}")
    loaded = {m: load_model_stats(stats[m], device=device) for m in models}
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
    with atomic_output(out) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(COLUMNS)
            for r in rows:
                w.writerow([_fmt(r[c]) for c in COLUMNS])


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return str(v)
