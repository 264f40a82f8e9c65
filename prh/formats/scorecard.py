"""A model's scorecard (``scorecards/<model>.tsv``): its alignment with every
other configured model, per metric, ranked.

Columns :data:`COLUMNS`, one row per (metric, partner), metrics in config
order, partners by rank (1 = most aligned; ties keep the partner order):
``score`` is the best layer pair's score with the model as X (asymmetric
metrics: metric(model, partner)), ``layer``/``partner_layer`` where it is
reached (0-based, with the features files' layer names), then the
calibration of that max as in ``alignment.tsv``. ``p_bh`` adjusts the
p-values of this model's rows of one metric (the family a reader of one
scorecard scans), so it differs from ``alignment.tsv``'s run-wide ``p_bh``.
Calibration columns are empty for uncalibrated pairs.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from ..jobio import fmt, read_tsv, write_tsv

COLUMNS = ("dataset", "model", "metric", "rank", "partner", "partner_modality", "score",
           "layer", "partner_layer", "layer_name", "partner_layer_name", "p_value", "p_bh",
           "calibrated", "null_mean", "tau")


def write_scorecard(out: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> None:
    write_tsv(out, COLUMNS, ([fmt(r.get(c)) for c in COLUMNS] for r in rows))


def read_scorecard(path: str | os.PathLike) -> list[dict[str, str]]:
    return read_tsv(path, COLUMNS)
