"""The tidy TSV tables, with their writers and readers.

- ``alignment.tsv``: columns :data:`ALIGNMENT_COLUMNS` (calibration columns
  empty when calibration is off); symmetric metrics have one row per unordered
  pair, asymmetric ones one row per ordered pair. ``layer_x``/``layer_y`` are
  0-based positions in each features file's ``layer_names``,
  ``layer_x_name``/``layer_y_name`` those names (empty when the file has none).
- ``aggregates.tsv``: the same with an ``aggregate`` column, one row per
  aggregate (:data:`AGGREGATE_COLUMNS`); the layer columns are filled for
  ``max``, the one aggregate reached at a single layer pair, and empty for
  the aggregates over many layer pairs.

``p_bh`` are Benjamini-Hochberg adjusted p-values over every row of one metric
and aggregate in the run (all model pairs, both orders for asymmetric
metrics): the family a reader scans for "which pairs align beyond chance".
Numbers are written with 6 significant digits; NaN is an empty cell
(:func:`prh.jobio.write_tsv`).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from ..jobio import fmt, read_tsv, write_tsv

LAYER_COLUMNS = ("layer_x", "layer_y", "layer_x_name", "layer_y_name")
CALIBRATION_COLUMNS = ("p_value", "calibrated", "null_mean", "null_std", "tau", "p_bh")
BASE_COLUMNS = ("dataset", "model_x", "model_y", "metric", "score") + LAYER_COLUMNS
ALIGNMENT_COLUMNS = BASE_COLUMNS + CALIBRATION_COLUMNS
AGGREGATE_COLUMNS = (("dataset", "model_x", "model_y", "metric", "aggregate", "score")
                     + LAYER_COLUMNS + CALIBRATION_COLUMNS)
LayerNames = Mapping[str, Sequence[str]]


def layer_name(names: LayerNames | None, model: str, i: int) -> str:
    """Layer ``i`` of ``model`` by name ("" when unnamed or no layer)."""
    own = (names or {}).get(model) or ()
    return str(own[i]) if 0 <= i < len(own) else ""


def _layers(r: Mapping[str, Any], names: LayerNames | None) -> tuple:
    return (r["layer_x"], r["layer_y"], layer_name(names, r["x"], r["layer_x"]),
            layer_name(names, r["y"], r["layer_y"]))


def write_alignment_tsv(out: str | os.PathLike, *, dataset: str,
                        rows: Mapping[str, Sequence[Mapping[str, Any]]],
                        layer_names: LayerNames | None = None) -> None:
    """``alignment.tsv`` from the aggregate step's rows (the ``max`` aggregate's
    calibration, as in the paper); ``layer_names``: model -> its features
    file's layer names."""
    def lines():
        for metric, rs in rows.items():
            for r in rs:
                c = r["cal"].get("max", {})
                yield (dataset, r["x"], r["y"], metric, f"{r['score']:.6g}",
                       *_layers(r, layer_names), *(fmt(c.get(k)) for k in CALIBRATION_COLUMNS))

    write_tsv(out, ALIGNMENT_COLUMNS, lines())


def write_aggregates_tsv(out: str | os.PathLike, *, dataset: str,
                         rows: Mapping[str, Sequence[Mapping[str, Any]]],
                         aggregates: Sequence[str], layer_names: LayerNames | None = None) -> None:
    """``aggregates.tsv``: every aggregate's score and calibration; without
    calibration, the raw max."""
    def lines():
        for metric, rs in rows.items():
            for how in aggregates or ["max"]:
                for r in rs:
                    c = r["cal"].get(how, {"score": r["score"]})
                    layers = _layers(r, layer_names) if how == "max" else ("",) * 4
                    yield (dataset, r["x"], r["y"], metric, how, fmt(c.get("score")), *layers,
                           *(fmt(c.get(k)) for k in CALIBRATION_COLUMNS))

    write_tsv(out, AGGREGATE_COLUMNS, lines())


def read_alignment_tsv(path: str | os.PathLike) -> list[dict[str, str]]:
    return read_tsv(path, ALIGNMENT_COLUMNS)


def read_aggregates_tsv(path: str | os.PathLike) -> list[dict[str, str]]:
    return read_tsv(path, AGGREGATE_COLUMNS)
