"""The findings' building blocks: statements with their sources, the run's
settings, and how numbers are printed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..report_html import LINE

MIN_LAYERS = 3
#: metrics whose rankings of the model pairs correlate less than this disagree
AGREEMENT = 0.5
#: fewer shared model pairs than this make a rank correlation too coarse to read
#: (with 3 pairs Spearman can only be +-1 or +-0.5)
MIN_RANKED = 5
#: statements listed one by one per block before the rest is counted
MAX_LISTED = 40
#: rows cited one by one in a statement about many rows
MAX_CITED = 6

ALIGNMENT = "alignment.tsv"
AGGREGATES = "aggregates.tsv"
INTERVALS = "statistics/intervals.tsv"
COMPARISONS = "statistics/comparisons.tsv"
TREND = "statistics/trend.tsv"

Row = Mapping[str, Any]
SATURATED = "; the metric is saturated (Warnings), so its pairs are not listed"


@dataclass(frozen=True)
class Source:
    """A table (path under ``results/<dataset>/``) and a 1-based line of it
    (None: the table as a whole), with the row's cells for a tooltip."""

    table: str
    line: int | None = None
    cells: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return self.table if self.line is None else f"{self.table}:{self.line}"

    @property
    def href(self) -> str:
        return self.table if self.line is None else f"{self.table}#L{self.line}"


@dataclass(frozen=True)
class Statement:
    text: str
    sources: tuple[Source, ...] = ()


@dataclass
class Section:
    title: str
    statements: list[Statement] = field(default_factory=list)
    subsections: list["Section"] = field(default_factory=list)


@dataclass(frozen=True)
class RunInfo:
    """What the tables do not hold: the run's settings and its models."""

    dataset: str
    alpha: float
    n_samples: int | None = None
    n_permutations: int | None = None
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    modalities: Mapping[str, str] = field(default_factory=dict)
    layers: Mapping[str, int] = field(default_factory=dict)
    calibrated: bool = True


# ---------------------------------------------------------------------------
# numbers as the page prints them


def num(v: Any) -> str:
    """A score, difference or interval end: 3 decimals in 0.01..1, 4
    significant digits from 1, 2 below 0.01."""
    v = float(v)
    a = abs(v)
    if a < 1e-12:  # rounding noise of a difference of equal scores
        return "0"
    if a >= 1:
        return f"{v:.4g}"
    return f"{v:.3f}" if a >= 0.01 else f"{v:.2g}"


def pv(v: Any) -> str:
    """A p-value, 2 significant digits."""
    return f"{float(v):.2g}"


def ival(row: Row) -> str:
    return f"[{num(row['low'])}, {num(row['high'])}]"


def _f(row: Row, key: str) -> float:
    v = row.get(key, "")
    return float(v) if v not in ("", None) else math.nan


def src(table: str, row: Row | None = None) -> Source:
    if row is None:
        return Source(table)
    return Source(table, int(row[LINE]),
                  tuple((k, str(v)) for k, v in row.items() if k != LINE))


def cite(table: str, rows: Sequence[Row]) -> tuple[Source, ...]:
    """The rows one by one, or the table when there are many."""
    if len(rows) > MAX_CITED:
        return (src(table),)
    return tuple(src(table, r) for r in rows)


def pair(x: str, y: str) -> str:
    return f"{x} × {y}"


def _listed(statements: list[Statement], what: str, table: str) -> list[Statement]:
    if len(statements) <= MAX_LISTED:
        return statements
    rest = len(statements) - MAX_LISTED
    return statements[:MAX_LISTED] + [Statement(f"... and {rest} more {what}.", (src(table),))]
