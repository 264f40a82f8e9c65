"""The tidy TSV tables, with their writers and readers.

- ``alignment.tsv``: columns :data:`ALIGNMENT_COLUMNS` (calibration columns
  empty when calibration is off); symmetric metrics have one row per unordered
  pair, asymmetric ones one row per ordered pair.
- ``aggregates.tsv``: the same with an ``aggregate`` column, one row per
  aggregate (:data:`AGGREGATE_COLUMNS`).

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

BASE_COLUMNS = ("dataset", "model_x", "model_y", "metric", "score", "layer_x", "layer_y")
ALIGNMENT_COLUMNS = BASE_COLUMNS + ("p_value", "calibrated", "null_mean", "null_std", "tau",
                                    "p_bh")
AGGREGATE_COLUMNS = ("dataset", "model_x", "model_y", "metric", "aggregate", "score",
                     "p_value", "calibrated", "null_mean", "null_std", "tau", "p_bh")


def write_alignment_tsv(out: str | os.PathLike, *, dataset: str,
                        rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    """``alignment.tsv`` from the aggregate step's rows (the ``max`` aggregate's
    calibration, as in the paper)."""
    calibration_columns = ALIGNMENT_COLUMNS[len(BASE_COLUMNS):]

    def lines():
        for metric, rs in rows.items():
            for r in rs:
                c = r["cal"].get("max", {})
                yield (dataset, r["x"], r["y"], metric, f"{r['score']:.6g}", r["layer_x"],
                       r["layer_y"], *(fmt(c.get(k)) for k in calibration_columns))

    write_tsv(out, ALIGNMENT_COLUMNS, lines())


def write_aggregates_tsv(out: str | os.PathLike, *, dataset: str,
                         rows: Mapping[str, Sequence[Mapping[str, Any]]],
                         aggregates: Sequence[str]) -> None:
    """``aggregates.tsv``: every aggregate's score and calibration; without
    calibration, the raw max."""
    def lines():
        for metric, rs in rows.items():
            for how in aggregates or ["max"]:
                for r in rs:
                    c = r["cal"].get(how, {"score": r["score"]})
                    yield (dataset, r["x"], r["y"], metric, how,
                           *(fmt(c.get(k)) for k in AGGREGATE_COLUMNS[5:]))

    write_tsv(out, AGGREGATE_COLUMNS, lines())


def read_alignment_tsv(path: str | os.PathLike) -> list[dict[str, str]]:
    return read_tsv(path, ALIGNMENT_COLUMNS)


def read_aggregates_tsv(path: str | os.PathLike) -> list[dict[str, str]]:
    return read_tsv(path, AGGREGATE_COLUMNS)
