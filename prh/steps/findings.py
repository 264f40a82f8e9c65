"""Step of rule ``findings``: a run's tables -> the findings page
(``findings.md`` and the report's ``report/findings.html``, :mod:`prh.findings`)."""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping

log = logging.getLogger(__name__)

Paths = Mapping[str, str | os.PathLike]


def run(*, dataset: str, alignment: str | os.PathLike, aggregates: str | os.PathLike,
        out_md: str | os.PathLike, out_html: str | os.PathLike, alpha: float,
        calibrated: bool, params: Mapping[str, Mapping[str, Any]],
        modalities: Mapping[str, str], statistics: Paths | None = None,
        manifest: str | os.PathLike | None = None, features: Paths | None = None,
        n_permutations: int | None = None) -> None:
    """Write the findings of one dataset. ``statistics``: table name
    (intervals, comparisons, trend) -> file, when calibration is on;
    ``features``: model -> features file (the models' layer counts)."""
    from ..datasets import load_manifest
    from ..findings import RunInfo, findings, intro, to_markdown
    from ..formats.features import read_metadata
    from ..formats.statistics import read_comparisons, read_intervals, read_trend
    from ..formats.tables import read_aggregates_tsv, read_alignment_tsv
    from ..report_html import findings_page, numbered, write_page

    files = statistics or {}
    readers = {"intervals": read_intervals, "comparisons": read_comparisons,
               "trend": read_trend}
    tables = {name: numbered(readers[name](files[name])) for name in readers if name in files}
    info = RunInfo(dataset=dataset, alpha=alpha, calibrated=calibrated,
                   n_samples=load_manifest(manifest).n if manifest else None,
                   n_permutations=n_permutations, params=params, modalities=modalities,
                   layers={m: len(read_metadata(p)["widths"]) for m, p in (features or {}).items()})
    rows = numbered(read_alignment_tsv(alignment))
    sections = findings(info, alignment=rows, aggregates=numbered(read_aggregates_tsv(aggregates)),
                        **tables)
    title = f"Findings: {dataset}"
    text = intro(info, rows, tables.get("intervals", []))
    write_page(out_md, to_markdown(sections, title=title, intro_text=text))
    write_page(out_html, findings_page(sections, title=title, intro_text=text))
    for s in sections[0].statements:  # the warnings
        log.info("%s: %s", sections[0].title, s.text)
