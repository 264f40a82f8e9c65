"""Self-contained HTML pages for the Snakemake report: the findings page and
tables a reader can sort and filter.

The report shows an HTML item in a frame and offers any other file (TSV,
Markdown) only as a download, so what a reader should see there is HTML.
Each page carries its own style and a small script, and loads nothing.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

#: rows a table page shows; the TSV (download) has them all
MAX_ROWS = 5000
#: the key :func:`numbered` adds to each row: its line in the file (header: line 1)
LINE = "_line"


def numbered(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A TSV reader's rows with their line in the file (:data:`LINE`): the
    first column of a table page, the line the findings cite."""
    return [{**r, LINE: i + 2} for i, r in enumerate(rows)]

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1em 1.5em; color: #1a1a1a; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 1.4em; } h3 { font-size: 1.05em; }
li { margin: .25em 0; }
.src { color: #555; font-size: .85em; white-space: nowrap; border-bottom: 1px dotted #888;
       cursor: help; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
th { background: #f0f0f0; cursor: pointer; position: sticky; top: 0; user-select: none; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
input { margin: .5em 0; padding: 2px 4px; width: 20em; }
"""

# Click a header: sort by that column (numbers as numbers, empty cells last),
# again: reverse. Typing in the box keeps the rows that contain the text.
_SCRIPT = """
(function () {
  var table = document.getElementById("t"), body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  function key(cell) {
    var s = cell.textContent.trim();
    if (s === "") return null;
    var v = Number(s);
    return isNaN(v) ? s.toLowerCase() : v;
  }
  function compare(a, b) {
    if (a === null) return b === null ? 0 : 1;
    if (b === null) return -1;
    if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
    return typeof a === "number" ? -1 : 1;
  }
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var down = th.getAttribute("aria-sort") === "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", down ? "descending" : "ascending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (r, s) {
        var a = key(r.cells[col]), b = key(s.cells[col]);
        var c = compare(a, b);
        return down && a !== null && b !== null ? -c : c;  // empty cells stay last
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  document.getElementById("filter").addEventListener("input", function (ev) {
    var q = ev.target.value.toLowerCase();
    Array.prototype.forEach.call(body.rows, function (r) {
      r.hidden = q !== "" && r.textContent.toLowerCase().indexOf(q) < 0;
    });
  });
})();
"""


def write_page(out: str | os.PathLike, text: str) -> None:
    """Write a page (or the findings' Markdown) whole or not at all."""
    from .jobio import atomic_output

    with atomic_output(out) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def _page(title: str, body: str, script: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n"
            f"<body>\n{body}\n" + (f"<script>{script}</script>\n" if script else "")
            + "</body></html>\n")


def _source(s: Any) -> str:
    tip = "\n".join(f"{k}: {v}" for k, v in s.cells) or s.table
    return f'<span class="src" title="{html.escape(tip)}">{html.escape(s.label)}</span>'


def _statement(s: Any) -> str:
    refs = "; ".join(_source(x) for x in s.sources)
    return f"<li>{html.escape(s.text)}" + (f" ({refs})" if refs else "") + "</li>"


def findings_page(sections: Sequence[Any], *, title: str, intro_text: str) -> str:
    """The findings (:class:`prh.findings.Section` s) as HTML; hovering a
    cited row shows its cells."""
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(intro_text)}</p>"]

    def section(sec: Any, depth: int) -> None:
        parts.append(f"<h{depth}>{html.escape(sec.title)}</h{depth}>")
        if sec.statements:
            parts.append("<ul>" + "".join(_statement(s) for s in sec.statements) + "</ul>")
        for sub in sec.subsections:
            section(sub, min(depth + 1, 6))

    for sec in sections:
        section(sec, 2)
    return _page(title, "\n".join(parts))


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def table_page(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], *, title: str,
               note: str = "") -> str:
    """A sortable, filterable table of TSV rows; the first column is each
    row's line in its TSV (:data:`LINE` when the rows have it, else their
    position; the header is line 1), the line the findings cite."""
    shown = list(rows)[:MAX_ROWS]
    cut = (f" Showing the first {MAX_ROWS} of {len(rows)} rows; the TSV has them all."
           if len(rows) > MAX_ROWS else "")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("line", *columns))

    def cell(v: Any) -> str:
        v = "" if v is None else str(v)
        cls = ' class="n"' if v and _is_number(v) else ""
        return f"<td{cls}>{html.escape(v)}</td>"

    body = "\n".join("<tr>" + cell(r.get(LINE, i + 2)) + "".join(cell(r.get(c)) for c in columns)
                     + "</tr>" for i, r in enumerate(shown))
    text = (f"<h1>{html.escape(title)}</h1><p>{html.escape(note + cut)} Click a column "
            "header to sort by it (again to reverse); type to keep the rows that contain "
            "the text.</p>"
            '<input id="filter" type="search" placeholder="filter rows" aria-label="filter rows">'
            f'<table id="t"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>')
    return _page(title, text, _SCRIPT)
