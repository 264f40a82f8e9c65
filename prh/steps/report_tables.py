"""Step of rule ``report_tables``: the run's tables -> the report's sortable
pages (``report/<table>.html``, :mod:`prh.report_html`)."""

from __future__ import annotations

import os
from typing import Callable, Mapping, Sequence

Paths = Mapping[str, str | os.PathLike]


def _readers() -> dict[str, tuple[Sequence[str], Callable, str]]:
    from ..formats import scorecard, statistics, tables

    return {
        "alignment": (tables.ALIGNMENT_COLUMNS, tables.read_alignment_tsv,
                      "Every alignment score: best layer pair, its layers and calibration."),
        "aggregates": (tables.AGGREGATE_COLUMNS, tables.read_aggregates_tsv,
                       "Every aggregate of the layer x layer matrices, each calibrated."),
        "intervals": (statistics.INTERVAL_COLUMNS, statistics.read_intervals,
                      "Each calibrated score with its standard error and interval."),
        "comparisons": (statistics.COMPARISON_COLUMNS, statistics.read_comparisons,
                        "Paired differences of two pairs' scores on the same samples."),
        "trend": (statistics.TREND_COLUMNS, statistics.read_trend,
                  "Does alignment rise with competence? Per partner and pooled."),
        "scorecards": (scorecard.COLUMNS, scorecard.read_scorecard,
                       "Each model's alignment with every partner, ranked, per metric; "
                       "p_bh adjusts over one model's rows of one metric."),
    }


def run(tables: Mapping[str, str | os.PathLike | Sequence[str | os.PathLike]],
        outputs: Paths, *, dataset: str) -> None:
    """``tables``: table name (:func:`_readers`' keys) -> its TSV, or for
    ``scorecards`` the list of every model's; ``outputs``: name -> page."""
    from ..report_html import numbered, table_page, write_page

    readers = _readers()
    for name, out in outputs.items():
        columns, read, note = readers[name]
        files = tables[name]
        files = [files] if isinstance(files, (str, os.PathLike)) else list(files)
        rows = [r for f in files for r in numbered(read(f))]
        where = str(files[0]) if len(files) == 1 else f"the {len(files)} files {name}/*.tsv"
        write_page(out, table_page(columns, rows, title=f"{name}: {dataset}",
                                   note=f"{note} From {where}."))
