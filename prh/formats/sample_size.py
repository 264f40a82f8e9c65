"""``sample_size.tsv``: the sample-size curve, one row per (pair, metric,
aggregate, subset size n): score, the subset's permutation null (mean, std,
threshold tau), p-value and calibrated score."""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from ..jobio import fmt, read_tsv, write_tsv

SAMPLE_SIZE_COLUMNS = ("dataset", "model_x", "model_y", "metric", "aggregate", "n", "score",
                       "p_value", "tau", "calibrated", "null_mean", "null_std",
                       "n_permutations", "alpha")


def write_sample_size_tsv(out: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
    write_tsv(out, SAMPLE_SIZE_COLUMNS, ([fmt(r[c]) for c in SAMPLE_SIZE_COLUMNS] for r in rows))


def read_sample_size_tsv(path: str | os.PathLike) -> list[dict[str, str]]:
    return read_tsv(path, SAMPLE_SIZE_COLUMNS)
