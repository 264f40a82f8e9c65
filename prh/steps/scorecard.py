"""Step of rule ``scorecard``: one model's pair files -> its scorecard table
(:mod:`prh.formats.scorecard`) and figure (:mod:`prh.plots.scorecard`).

It reads only the pair files the model is in, never ``alignment.h5``, so
adding a model and asking for its scorecard runs that model's jobs alone.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence


def scorecard_rows(model: str, pair_paths: Sequence[str | os.PathLike], *, dataset: str,
                   metrics: Sequence[str], modalities: Mapping[str, str],
                   layer_names: Mapping[str, Sequence[str]] | None = None) -> list[dict[str, Any]]:
    """The scorecard's rows (:data:`prh.formats.scorecard.COLUMNS`)."""
    from ..metric_info import get_metric
    from ..scoring import benjamini_hochberg, best_layer_pair

    names = layer_names or {}
    by_metric: dict[str, list[dict[str, Any]]] = {m: [] for m in metrics}
    for path, pair in _model_pairs(model, pair_paths):
        x, y = pair["model_x"], pair["model_y"]
        partner = y if model == x else x
        for metric in metrics:
            if metric not in pair["xy"]:
                raise ValueError(f"{path}: no scores for metric {metric!r}; rerun its pair job")
            symmetric = get_metric(metric).symmetric
            order = "xy" if model == x or symmetric else "yx"
            S = pair[order][metric]
            if model == y and symmetric:
                S = S.T  # rows: the model's layers
            score, (i, j) = best_layer_pair(S)
            cal = pair["calibration"].get((order, metric), {}).get("max", {})
            by_metric[metric].append({
                "dataset": dataset, "model": model, "metric": metric, "partner": partner,
                "partner_modality": modalities.get(partner, ""), "score": score,
                "layer": i, "partner_layer": j,
                "layer_name": _name(names.get(model), i),
                "partner_layer_name": _name(names.get(partner), j),
                **{k: cal.get(k, math.nan) for k in ("p_value", "calibrated", "null_mean",
                                                      "tau")}})
    rows = []
    for metric, rs in by_metric.items():
        for r, p in zip(rs, benjamini_hochberg([r["p_value"] for r in rs])):
            r["p_bh"] = float(p)
        rs.sort(key=lambda r: -r["score"])
        for rank, r in enumerate(rs, 1):
            r["rank"] = rank
        rows += rs
    return rows


def _model_pairs(model: str, pair_paths: Sequence[str | os.PathLike]):
    """(file, pair) for every pair with ``model`` in the pair files (each
    one pair) or block files (the block's pairs with the model)."""
    from ..formats.pair import read_pairs

    for path in pair_paths:
        found = False
        for pair in read_pairs(path, model=model):
            found = True
            yield path, pair
        if not found:
            raise ValueError(f"{path}: holds no pair that includes {model}")


def _name(names: Sequence[str] | None, i: int) -> str:
    return str(names[i]) if names and 0 <= i < len(names) else ""


def run(model: str, pair_paths: Sequence[str | os.PathLike], *, dataset: str,
        features: Mapping[str, str | os.PathLike], metrics: Sequence[str],
        modalities: Mapping[str, str], alpha: float, out_tsv: str | os.PathLike,
        out_png: str | os.PathLike, dpi: int = 150,
        intervals: str | os.PathLike | None = None) -> None:
    """``intervals``: the run's ``statistics/intervals.tsv``; the figure draws
    this model's intervals from it when it exists (it is not an input: a
    scorecard never waits for the statistics of every model)."""
    from ..formats.features import read_metadata
    from ..formats.scorecard import write_scorecard
    from ..formats.statistics import read_intervals
    from ..plots.data import labels_of, model_info
    from ..plots.scorecard import scorecard_figure

    names = {m: read_metadata(p)["layer_names"] for m, p in features.items()}
    rows = scorecard_rows(model, pair_paths, dataset=dataset, metrics=metrics,
                          modalities=modalities, layer_names=names)
    write_scorecard(out_tsv, rows)
    have = intervals is not None and os.path.exists(intervals)
    info = {m: model_info(m, p, modalities.get(m)) for m, p in features.items()}
    scorecard_figure(rows, out_png, model=model, dataset=dataset, metrics=metrics, alpha=alpha,
                     dpi=dpi, labels=labels_of(list(features), info),
                     intervals=read_intervals(intervals) if have else None,
                     intervals_path=str(intervals) if have else None)
