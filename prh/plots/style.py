"""One look for every prh figure: fonts, colour-blind-safe palettes, saving.

Matrices use ``viridis`` (raw scores, perceptually uniform and readable in
grey), ``cividis`` (calibrated scores, 0 = chance level) and ``RdBu_r`` for
correlations (-1..1, ColorBrewer's colour-blind-safe diverging map). Lines use
the Okabe-Ito palette with a marker per line, so lines stay apart in grey and
for every common colour-vision deficiency.

Every figure is written through :func:`save`: one file per requested path
(the format follows the suffix: ``.png``, ``.pdf``, ``.svg``), each atomically
(:func:`prh.jobio.atomic_output`), with no timestamps in the PDF so reruns
give identical files. :func:`message_figure` draws a figure that says what is
missing instead of an empty axis.
"""

from __future__ import annotations

import contextlib
import os
import textwrap
from pathlib import Path
from typing import Iterator, Sequence, Union

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from cycler import cycler  # noqa: E402

from ..jobio import atomic_output  # noqa: E402
from ..naming import display_name, short_name, weights_tag  # noqa: E402,F401

PathLike = Union[str, os.PathLike]
Outputs = Union[PathLike, Sequence[PathLike]]

#: Okabe & Ito (2008), ordered so the first lines contrast most on white
#: (the yellow, faint on white, comes last).
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
             "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
LINESTYLES = ("-", "--", "-.", ":")
RAW_CMAP = "viridis"
CALIBRATED_CMAP = "cividis"
LAYER_CMAP = "viridis"
CORRELATION_CMAP = "RdBu_r"
MISSING_COLOR = "#d9d9d9"   # NaN cells: pairs not computed
FORMATS = ("png", "pdf", "svg")

RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "axes.prop_cycle": cycler(color=OKABE_ITO),
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.08,
    "pdf.fonttype": 42,
    "svg.fonttype": "none",
    "svg.hashsalt": "prh",
    "image.cmap": RAW_CMAP,
}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The prh look, for the figures made and saved inside the block."""
    with plt.rc_context(RC):
        yield


def line_style(i: int) -> dict:
    """Colour, marker and line style of the i-th line: distinct in colour and
    in shape, so 8+ lines stay apart."""
    return {"color": OKABE_ITO[i % len(OKABE_ITO)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[(i // len(OKABE_ITO)) % len(LINESTYLES)]}


def as_paths(out: Outputs) -> list[Path]:
    """One path or several (one per format) as a list; checks the formats."""
    paths = [Path(out)] if isinstance(out, (str, os.PathLike)) else [Path(p) for p in out]
    if not paths:
        raise ValueError("no output path given for the figure")
    for p in paths:
        fmt = p.suffix.lstrip(".").lower()
        if fmt not in FORMATS:
            raise ValueError(f"{p}: unknown figure format {fmt!r}; use one of {', '.join(FORMATS)}")
    return paths


def save(fig, out: Outputs, *, dpi: int = 150) -> list[Path]:
    """Write ``fig`` to every path of ``out`` (format from the suffix), each
    atomically, then close it."""
    paths = as_paths(out)
    try:
        for p in paths:
            fmt = p.suffix.lstrip(".").lower()
            meta = {"pdf": {"CreationDate": None, "ModDate": None}, "svg": {"Date": None},
                    "png": {"Software": None}}[fmt]
            with atomic_output(p) as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, metadata=meta)
    finally:
        plt.close(fig)
    return paths


def wrap(text: str, width: int = 70) -> str:
    return "\n".join(textwrap.fill(line, width) if line else "" for line in text.split("\n"))


def message_figure(out: Outputs, title: str, message: str, *, dpi: int = 150,
                   size: tuple[float, float] = (6.4, 3.2)) -> list[Path]:
    """A figure whose only content is ``title`` and ``message``: what is missing
    and how to get it, rather than an empty axis."""
    with style():
        fig = plt.figure(figsize=size)
        fig.text(0.5, 0.72, wrap(title, 60), ha="center", va="center", fontsize=12,
                 fontweight="bold")
        fig.text(0.5, 0.38, wrap(message, 72), ha="center", va="center", fontsize=10,
                 color="#333333")
        return save(fig, out, dpi=dpi)


def axes_message(ax, message: str) -> None:
    """Say in an axis why it has no data."""
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.text(0.5, 0.5, wrap(message, 40), ha="center", va="center", transform=ax.transAxes,
            fontsize=10, color="#333333")


def model_label(model: str, weights: str | None = None, seed: int | None = None,
                extra: Sequence[str] = (), source: str | None = None) -> str:
    """A model's label in every figure: :func:`prh.naming.display_name` of its
    key, source and weights, with ``extra`` tags (e.g. the size):
    "EffNet-Lite0 (untrained, 4.7M)"."""
    return display_name(model, {"source": source, "weights": weights, "seed": seed}, extra)


def format_count(n: float | None) -> str:
    """Parameter counts as 4.7M, 1.1B."""
    if n is None or not n > 0:
        return "?"
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            v = n / div
            digits = ".0f" if v >= 100 else ".1f" if v >= 10 else ".2g"
            return f"{v:{digits}}{unit}"
    return str(int(n))


def format_value(v: float) -> str:
    """A cell annotation: two decimals, one for values of 10 and more (lcs_knn)."""
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def add_note(fig, text: str, *, width: int = 100, below=None) -> None:
    """A small note under everything already drawn (tick labels, axis labels,
    legends), left-aligned; the saved figure grows to hold it."""
    if not text:
        return
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    artists = below if below is not None else fig.axes
    boxes = [a.get_tightbbox(renderer) for a in artists]
    boxes = [b for b in boxes if b is not None]
    inv = fig.transFigure.inverted()
    y0 = min(inv.transform((0, b.y0))[1] for b in boxes) if boxes else 0.0
    x0 = min(inv.transform((b.x0, 0))[0] for b in boxes) if boxes else 0.0
    fig.text(max(x0, 0.0), y0 - 0.015, wrap(text, width), ha="left", va="top", fontsize=8,
             color="#333333")


def outlined(color: str) -> list:
    """Path effects that keep a text readable on any background (a thin halo
    of the opposite colour)."""
    from matplotlib import patheffects

    halo = "black" if color == "white" else "white"
    return [patheffects.withStroke(linewidth=1.6, foreground=halo, alpha=0.7)]


def colormap(name: str):
    """A named colormap with NaN cells in :data:`MISSING_COLOR`."""
    return plt.get_cmap(name).with_extremes(bad=MISSING_COLOR)
