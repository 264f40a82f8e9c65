"""Axis helpers that keep a figure readable whatever the numbers: an x axis
broken where the values cluster far from the rest (:func:`axis_break`,
:class:`BrokenAxis`) and tick labels that never overlap
(:func:`spread_labels`, :func:`label_ticks`).

The decisions are plain functions of numbers, so they are tested on numbers;
the drawing helpers measure the rendered text, never guess its size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: break the x axis when the values split into two groups, one of at least two
#: values, whose wider group would fill less than this fraction of an
#: unbroken axis (e.g. an untrained model at 0.1 and trained ones at 75-78)
BREAK_FRACTION = 0.2
#: padding around each group and width of the gap, as fractions of the wider
#: group's spread
GROUP_PAD = 0.12
GAP_WIDTH = 0.15
#: space between neighbouring labels, inches
LABEL_PAD_IN = 0.06
#: horizontal names may reach this far past the axis ends, and move this far
#: from their position (tied to it by a line); else they stand upright
OVERHANG_IN = 0.4
MAX_SHIFT_IN = 0.45


def axis_break(values: Sequence[float]) -> int | None:
    """Where to break an axis of ``values``: the index k (in sorted order)
    of the first value right of the break, or None when one axis shows
    them well. The break goes in the widest gap, and only when the wider
    of the two groups it leaves has a spread of less than
    :data:`BREAK_FRACTION` of the whole range and more than zero."""
    x = np.sort(np.asarray([v for v in values if np.isfinite(v)], dtype=float))
    if x.size < 3:
        return None
    span = float(x[-1] - x[0])
    if span <= 0:
        return None
    k = int(np.argmax(np.diff(x))) + 1
    spread = max(float(x[k - 1] - x[0]), float(x[-1] - x[k]))
    return k if 0 < spread < BREAK_FRACTION * span else None


@dataclass(frozen=True)
class BrokenAxis:
    """A piecewise-linear map from data x to drawn x: the same scale on both
    sides of the break, the gap between ``left_end`` and ``right_start``
    drawn ``gap`` wide. Without a break it is the identity."""

    lim: tuple[float, float]             # data limits
    left_end: float | None = None        # last data value left of the break, plus padding
    right_start: float | None = None     # first data value right of it, minus padding
    gap: float = 0.0
    values: tuple[float, float] | None = None  # the two data values on either side

    @classmethod
    def for_values(cls, values: Sequence[float]) -> "BrokenAxis":
        x = np.sort(np.asarray([v for v in values if np.isfinite(v)], dtype=float))
        if x.size == 0:
            return cls((0.0, 1.0))
        k = axis_break(x)
        if k is None:
            span = float(x[-1] - x[0])
            pad = 0.06 * span if span > 0 else max(abs(float(x[0])) * 0.05, 0.5)
            return cls((float(x[0]) - pad, float(x[-1]) + pad))
        spread = max(float(x[k - 1] - x[0]), float(x[-1] - x[k]))
        pad = GROUP_PAD * spread
        return cls((float(x[0]) - pad, float(x[-1]) + pad), float(x[k - 1]) + pad,
                   float(x[k]) - pad, GAP_WIDTH * spread, (float(x[k - 1]), float(x[k])))

    @property
    def broken(self) -> bool:
        return self.left_end is not None

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if not self.broken:
            return x
        a, b, g = self.left_end, self.right_start, self.gap
        mid = a + (x - a) / (b - a) * g
        return np.where(x <= a, x, np.where(x >= b, a + g + (x - b), mid))

    @property
    def drawn_lim(self) -> tuple[float, float]:
        lo, hi = self(np.array(self.lim))
        return float(lo), float(hi)

    def ticks(self, n: int = 5) -> list[float]:
        """Data values to tick: nice numbers within each side."""
        from matplotlib.ticker import MaxNLocator

        def nice(lo, hi, bins):
            t = MaxNLocator(bins).tick_values(lo, hi)
            return [float(v) for v in t if lo - 1e-9 <= v <= hi + 1e-9]

        if not self.broken:
            return nice(*self.lim, n)
        # a side holding one value (its padding is the other side's) ticks that value
        one_left = self.values[0] - self.lim[0] <= self.left_end - self.values[0] + 1e-12
        one_right = self.lim[1] - self.values[1] <= self.values[1] - self.right_start + 1e-12
        left = [self.values[0]] if one_left else nice(self.lim[0], self.left_end, 3)
        right = [self.values[1]] if one_right else nice(self.right_start, self.lim[1], n - 1)
        return left + right

    def draw_marks(self, ax, size: float = 0.012) -> None:
        """The break's marks: a pair of slashes on the bottom spine, with the
        spine cut between them."""
        if not self.broken:
            return
        from matplotlib.transforms import blended_transform_factory

        a = self.left_end
        b = a + self.gap
        tr = blended_transform_factory(ax.transData, ax.transAxes)
        ax.plot([a, b], [0, 0], transform=tr, color="white", linewidth=2.5, clip_on=False,
                zorder=5, solid_capstyle="butt")
        lo, hi = ax.get_xlim()
        dx = size * (hi - lo) * 0.6
        for x in (a, b):
            ax.plot([x - dx, x + dx], [-2 * size, 2 * size], transform=tr, color="black",
                    linewidth=1.0, clip_on=False, zorder=6)


def spread_labels(positions: Sequence[float], sizes: Sequence[float], lo: float,
                  hi: float) -> np.ndarray:
    """Centres for labels of ``sizes`` (extent along the axis) wanted at
    ``positions`` (sorted), as close to them as possible (least squares)
    with no two overlapping and all within ``lo``..``hi`` where they fit
    (else centred on it): isotonic regression of the positions minus the
    cumulative spacing."""
    p = np.asarray(positions, dtype=float)
    w = np.asarray(sizes, dtype=float)
    if p.size == 0:
        return p
    need = (w[:-1] + w[1:]) / 2 + LABEL_PAD_IN
    offset = np.concatenate([[0.0], np.cumsum(need)])
    r = _isotonic(p - offset)
    first, last = lo + w[0] / 2, hi - w[-1] / 2 - offset[-1]
    r = np.clip(r, first, last) if first <= last else np.full_like(r, (first + last) / 2)
    return r + offset


def _isotonic(t: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence closest to ``t`` (pool adjacent violators)."""
    blocks: list[list[float]] = []
    for v in t:
        blocks.append([float(v), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, c2 = blocks.pop()
            m1, c1 = blocks.pop()
            blocks.append([(m1 * c1 + m2 * c2) / (c1 + c2), c1 + c2])
    return np.concatenate([np.full(int(c), m) for m, c in blocks])


def label_ticks(fig, axes_labels: Sequence[tuple], *, fontsize: float = 8,
                pad_pt: float = 10, layout=None) -> str:
    """Name the x positions of each axis on a secondary axis on top, no two
    names overlapping: horizontal where the names fit side by side within
    :data:`MAX_SHIFT_IN` of their positions, else upright; spread apart
    where they would touch, each tied to its position by a short line.
    ``axes_labels``: (axes, positions in drawn x, names); ``layout`` (e.g.
    ``fig.tight_layout``) is rerun as the names move. Returns the
    orientation used ("horizontal" or "vertical")."""
    from matplotlib.transforms import blended_transform_factory

    layout = layout or (lambda: None)
    tops = []
    for ax, pos, names in axes_labels:
        order = np.argsort(pos, kind="stable")
        top = ax.secondary_xaxis("top")
        top.tick_params(length=0, pad=pad_pt)
        top.spines["top"].set_visible(False)
        tops.append((ax, top, np.asarray(pos, dtype=float)[order], [names[i] for i in order]))

    def width_in(ax):
        bb = ax.get_window_extent()
        return bb.width / fig.dpi, bb.x0 / fig.dpi

    def to_in(ax, x):
        lo, hi = ax.get_xlim()
        return (np.asarray(x) - lo) / (hi - lo) * width_in(ax)[0]

    def from_in(ax, x):
        lo, hi = ax.get_xlim()
        return lo + np.asarray(x) / width_in(ax)[0] * (hi - lo)

    # measure the names as they will be drawn
    renderer = fig.canvas.get_renderer()
    sizes = []
    for ax, top, pos, names in tops:
        texts = [fig.text(0, 0, n, fontsize=fontsize) for n in names]
        ext = [t.get_window_extent(renderer) for t in texts]
        sizes.append((np.array([e.width for e in ext]) / fig.dpi,
                      np.array([e.height for e in ext]) / fig.dpi))
        for t in texts:
            t.remove()
    layout()

    def place(ax, pos, w, h, horizontal):
        x = to_in(ax, pos)
        if horizontal:
            return x, spread_labels(x, w, -OVERHANG_IN, width_in(ax)[0] + OVERHANG_IN)
        return x, spread_labels(x, h, 0.0, width_in(ax)[0])

    horizontal = True
    for (ax, top, pos, names), (w, h) in zip(tops, sizes):
        x, q = place(ax, pos, w, h, True)
        width = width_in(ax)[0] + 2 * OVERHANG_IN
        fits = w.sum() + LABEL_PAD_IN * (len(w) - 1) <= width
        horizontal &= bool(fits and np.max(np.abs(q - x), initial=0) <= MAX_SHIFT_IN)
    kind = "horizontal" if horizontal else "vertical"
    style = (dict(rotation=0, ha="center", va="bottom", multialignment="center") if horizontal
             else dict(rotation=90, ha="left", va="center", rotation_mode="anchor"))
    placed = [None] * len(tops)
    for _ in range(4):  # the layout moves the axes a little as the names move
        moved = 0.0
        for k, ((ax, top, pos, names), (w, h)) in enumerate(zip(tops, sizes)):
            x, q = place(ax, pos, w, h, horizontal)
            if placed[k] is not None:
                moved = max(moved, float(np.max(np.abs(q - to_in(ax, placed[k])), initial=0)))
            placed[k] = from_in(ax, q)
            top.set_xticks(placed[k], names, fontsize=fontsize, **style)
        layout()
        if moved < 0.005:
            break
    for (ax, top, pos, names), q in zip(tops, placed):
        height = ax.get_window_extent().height / fig.dpi
        y1 = 1 + (pad_pt - 2) / 72 / height
        tr = blended_transform_factory(ax.transData, ax.transAxes)
        for p, x in zip(pos, q):
            ax.plot([p, p, x], [1, 1 + 0.35 * (y1 - 1), y1], transform=tr, color="#777777",
                    linewidth=0.7, clip_on=False, zorder=1)
    return kind
