"""The statistics tables (``statistics/<table>.tsv``), with their writers and
readers; computed by :mod:`prh.steps.statistics` from
:mod:`prh.calibration`'s resamples without replacement.

- ``intervals.tsv`` (:data:`INTERVAL_COLUMNS`): each calibrated pair's score
  with its standard error and interval ``low``..``high`` (``level``, e.g.
  0.95) per metric and aggregate. ``order`` "xy": metric(model_x, model_y);
  asymmetric metrics have a row per order, as in ``alignment.tsv``, and a
  row with ``order`` "mean", the mean of both orders (what the competence
  figure and the comparisons use). ``coverage`` says what the simulation
  measured for this metric's scheme: "calibrated" (nominal 95 % intervals
  covered 92-98 % at N = 256 and 1024), "conservative" (more: the interval
  is wider than the noise), "not measured" (a scheme chosen by hand). ``method`` and ``n_resamples`` say how the noise
  was estimated (README "Statistics": the measured coverage of each).
- ``comparisons.tsv`` (:data:`COMPARISON_COLUMNS`): paired differences
  score(a_x, a_y) - score(b_x, b_y) with interval, two-sided p-value
  (difference = 0) and ``p_bh``, Benjamini-Hochberg over the table's rows of
  one metric and aggregate. Asymmetric metrics: the mean of both orders.
- ``trend.tsv`` (:data:`TREND_COLUMNS`): per modality whose models have a
  competence, per partner model and pooled, the Spearman correlation and the
  least-squares slope of alignment on competence, with interval, p-value
  (sampling noise) and ``p_models`` (exact permutation of the models'
  competence labels).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from ..jobio import fmt, read_tsv, write_tsv

INTERVAL_COLUMNS = ("dataset", "model_x", "model_y", "metric", "order", "aggregate", "score",
                    "se", "low", "high", "level", "method", "n_resamples", "coverage")
COMPARISON_COLUMNS = ("dataset", "metric", "aggregate", "a_x", "a_y", "b_x", "b_y", "score_a",
                      "score_b", "difference", "se", "low", "high", "level", "p_value", "p_bh",
                      "method", "n_resamples")
TREND_COLUMNS = ("dataset", "modality", "metric", "aggregate", "partner", "statistic",
                 "estimate", "se", "low", "high", "level", "p_value", "p_models", "n_models",
                 "models", "competence", "method", "n_resamples")


def _write(out, columns, dataset, rows: Sequence[Mapping[str, Any]]) -> None:
    write_tsv(out, columns, ([fmt(dataset)] + [fmt(r.get(c)) for c in columns[1:]]
                             for r in rows))


def write_intervals(out: str | os.PathLike, *, dataset: str,
                    rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows of :func:`prh.calibration.interval_rows` plus ``level``; a row of
    order "yx" is written as "xy" with the roles swapped."""
    flat = [{**r, "model_x": r["y"], "model_y": r["x"], "order": "xy"} if r["order"] == "yx"
            else {**r, "model_x": r["x"], "model_y": r["y"]} for r in rows]
    _write(out, INTERVAL_COLUMNS, dataset, flat)


def write_comparisons(out: str | os.PathLike, *, dataset: str,
                      rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows of :func:`prh.calibration.comparison_rows` plus ``level`` and ``p_bh``."""
    flat = [{**r, "a_x": r["pair_a"][0], "a_y": r["pair_a"][1], "b_x": r["pair_b"][0],
             "b_y": r["pair_b"][1]} for r in rows]
    _write(out, COMPARISON_COLUMNS, dataset, flat)


def write_trend(out: str | os.PathLike, *, dataset: str,
                rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows of :func:`prh.calibration.trend_rows` plus ``modality``, ``level``,
    ``models`` and ``competence`` (comma-separated, in competence order)."""
    _write(out, TREND_COLUMNS, dataset, rows)


def read_intervals(path: str | os.PathLike) -> list[dict[str, str]]:
    return read_tsv(path, INTERVAL_COLUMNS)


def read_comparisons(path: str | os.PathLike) -> list[dict[str, str]]:
    return read_tsv(path, COMPARISON_COLUMNS)


def read_trend(path: str | os.PathLike) -> list[dict[str, str]]:
    return read_tsv(path, TREND_COLUMNS)
