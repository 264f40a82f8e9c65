"""What a run found, in words: statements computed from its tables.

:func:`findings` turns the tables of one dataset (``alignment.tsv``,
``aggregates.tsv``, ``statistics/intervals.tsv``, ``comparisons.tsv``,
``trend.tsv``, as their :mod:`prh.formats` readers give them, with
:func:`prh.report_html.numbered`'s line numbers) into sections of
:class:`Statement`, each citing the table rows it comes from;
:func:`to_markdown` writes ``findings.md`` and :mod:`prh.report_html` the
report's page. Pure: no files, no Snakemake.

What is called what: a pair is "above chance" when its ``p_bh`` is at most
alpha; a difference "significant" when its ``p_bh`` is; a trend "can be
claimed" when both its sample-noise ``p_value`` and its models-order
``p_models`` are. Every number is quoted from the cited row.
"""

from __future__ import annotations

from typing import Sequence

from .chance import above_chance, saturations, warnings
from .common import Row, RunInfo, Section, Source, Statement, num, pv
from .disagreement import disagreements
from .families import family_agreement
from .significance import differences, orderings_floor, trends

__all__ = ["RunInfo", "Section", "Source", "Statement", "findings", "intro", "num",
           "orderings_floor", "pv", "to_markdown"]


def findings(info: RunInfo, *, alignment: Sequence[Row], aggregates: Sequence[Row] = (),
             intervals: Sequence[Row] = (), comparisons: Sequence[Row] = (),
             trend: Sequence[Row] = ()) -> list[Section]:
    """The findings page's sections; rows with their line numbers
    (:func:`prh.report_html.numbered`)."""
    metrics = list(dict.fromkeys(r["metric"] for r in alignment))
    # metrics with most pairs at their maximum: their scores say nothing
    full = [m for m, s in saturations(info, alignment).items() if s.kind == "ceiling"]
    return [
        warnings(info, alignment, intervals, metrics),
        above_chance(info, alignment, aggregates, intervals, metrics, full),
        differences(info, comparisons, full),
        trends(info, trend),
        disagreements(info, alignment, comparisons, [m for m in metrics if m not in full], full),
        family_agreement(info, alignment, [m for m in metrics if m not in full], full),
    ]


# ---------------------------------------------------------------------------
# the page


def intro(info: RunInfo, alignment: Sequence[Row], intervals: Sequence[Row]) -> str:
    models = sorted({r[k] for r in alignment for k in ("model_x", "model_y")})
    metrics = list(dict.fromkeys(r["metric"] for r in alignment))
    level = {r["level"] for r in intervals}
    parts = [f"N = {info.n_samples} samples" if info.n_samples else None,
             f"{len(models)} models", f"metrics {', '.join(metrics)}",
             f"alpha = {pv(info.alpha)}" if info.calibrated else "calibration off",
             f"{float(level.pop()):.0%} intervals" if len(level) == 1 else None]
    return (f"What the tables of this run say ({'; '.join(p for p in parts if p)}). "
            "Each statement cites the table rows it comes from as table:line (the header "
            f"is line 1), under results/{info.dataset}/.")


def to_markdown(sections: Sequence[Section], *, title: str, intro_text: str) -> str:
    lines = [f"# {title}", "", intro_text, ""]

    def statement(s: Statement) -> str:
        refs = "; ".join(f"[{x.label}]({x.href})" for x in s.sources)
        return f"- {s.text}" + (f" ({refs})" if refs else "")

    def section(sec: Section, depth: int) -> None:
        lines.extend([f"{'#' * depth} {sec.title}", ""])
        lines.extend(statement(s) for s in sec.statements)
        if sec.statements:
            lines.append("")
        for sub in sec.subsections:
            section(sub, depth + 1)

    for sec in sections:
        section(sec, 2)
    return "\n".join(lines).rstrip() + "\n"
