"""The paper's headline figure: alignment against competence.

Competence is 1 - bits per byte for causal language models (measured by the
embedding stage) or a configured value per model (``models.<m>.competence``
with ``competence_source``); an untrained baseline (random weights) without
a configured value gets chance, :data:`prh.competence.CHANCE_COMPETENCE`.
The x axis is the competence of the modality with more models that have one
(language on a tie); one line per model of the other modality; y is the
alignment of the pair (best layer pair, the mean of both orders for an
asymmetric metric).

Readable at a glance whatever the zoo: each x model is named on top
(:func:`prh.naming.display_name`; never two names overlapping,
:func:`.axes.label_ticks`); the x axis is broken where the competence values
cluster far from the rest (an untrained model at chance, trained ones at
75-78; :func:`.axes.axis_break`) and the note says where.

:func:`alignment_vs_competence` draws raw scores; with ``calibrated=True``,
raw and calibrated side by side (same lines), non-significant points as
open markers. Given the statistics tables, raw points get their intervals
(``statistics/intervals.tsv``), the trend test's pooled result is noted
(``statistics/trend.tsv``), and a grey band spans the permutation nulls of the
plotted pairs (lowest null mean to highest threshold tau), never thinner than
:data:`MIN_BAND` of the y axis, with the y axis reaching down to it: the eye
sees the score against the scale of chance. Every sentence under the figure
is computed from what it draws.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from . import style as st
from ..competence import Competence, resolve_competence
from .axes import BrokenAxis, label_ticks
from .data import (has_calibration, labels_of, load_alignment, metric_of, model_info,
                   p_values, significance, significance_note)

#: the null band's least drawn height, as a fraction of the y axis
MIN_BAND = 0.03
#: horizontal offset between the lines' points where intervals are drawn, points
DODGE_PT = 5

NO_COMPETENCE = "no competence values configured"
HOW_TO = ("Set models.<name>.competence (a number) and models.<name>.competence_source "
          "(where it comes from) in the config, or embed a causal language model, whose "
          "bits per byte give 1 - bpb.")


@dataclass
class Curves:
    x_side: str                      # modality on the x axis
    line_side: str                   # modality of the lines
    x_models: list[str]              # sorted by competence
    x: np.ndarray                    # competence of x_models
    sources: dict[str, str]          # x model -> competence source
    line_models: list[str]
    raw: np.ndarray                  # (lines, x models)
    calibrated: np.ndarray | None
    not_significant: np.ndarray | None
    p_label: str = ""
    alpha: float = 0.05
    missing: list[str] = field(default_factory=list)   # x-side models without competence
    labels: dict[str, str] = field(default_factory=dict)  # model -> label (default short name)
    low: np.ndarray | None = None        # (lines, x models) interval of the raw score
    high: np.ndarray | None = None
    null_band: tuple[float, float] | None = None  # lowest null mean, highest tau
    level: float | None = None
    p: np.ndarray | None = None          # (lines, x models) p-values, NaN: not calibrated

    def label(self, model: str) -> str:
        return self.labels.get(model) or st.short_name(model)


def _pair_values(mat: np.ndarray, a: int, b: int, symmetric: bool) -> float:
    if symmetric:
        return float(mat[a, b])
    v = np.array([mat[a, b], mat[b, a]], dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def competence_curves(data: Mapping[str, Any], metric: str, *,
                      modalities: Mapping[str, str | None],
                      competence: Mapping[str, Competence],
                      source: str | os.PathLike = "alignment.h5",
                      labels: Mapping[str, str] | None = None,
                      intervals: Sequence[Mapping[str, str]] | None = None) -> Curves | str:
    """The curves to draw, or a sentence saying why there are none;
    ``labels``: model -> figure label (default: the short name); ``intervals``:
    rows of ``statistics/intervals.tsv`` (:mod:`prh.formats.statistics`)."""
    m = metric_of(data, metric, source)
    models = data["models"]
    unknown = [x for x in models if modalities.get(x) not in ("vision", "language")]
    if unknown:
        raise ValueError(f"{source}: modality of {', '.join(unknown)} unknown "
                         "(give it in the config or the features file)")
    by_side = {s: [x for x in models if modalities[x] == s] for s in ("language", "vision")}
    with_comp = {s: [x for x in by_side[s] if x in competence] for s in by_side}
    if not with_comp["language"] and not with_comp["vision"]:
        return NO_COMPETENCE
    x_side = ("language" if len(with_comp["language"]) >= len(with_comp["vision"])
              else "vision")
    line_side = "vision" if x_side == "language" else "language"
    if not by_side[line_side]:
        return f"no {line_side} models to align with the {x_side} models"
    x_models = sorted(with_comp[x_side], key=lambda x: (competence[x].value, x))
    idx = {x: i for i, x in enumerate(models)}
    sym = bool(m["symmetric"])

    def grid(mat):
        mat = np.asarray(mat, dtype=float)
        return np.array([[_pair_values(mat, idx[l], idx[x], sym) for x in x_models]
                         for l in by_side[line_side]])

    raw = grid(m["score"])
    if not np.isfinite(raw).any():
        return (f"no {metric} scores between {x_side} and {line_side} models in {source} "
                "(pairs not computed)")
    cal = grid(m["calibrated"]) if has_calibration(m) else None
    p, p_label = p_values(m)
    alpha = float(m.get("alpha", 0.05))
    p_grid = grid(p) if p is not None else None
    ns = significance(raw, p_grid, alpha).not_significant if p is not None else None
    band = None
    if m.get("tau") is not None and m.get("null_mean") is not None:
        tau, mean = grid(m["tau"]), grid(m["null_mean"])
        if np.isfinite(tau).any() and np.isfinite(mean).any():
            band = (float(np.nanmin(mean)), float(np.nanmax(tau)))
    low = high = level = None
    if intervals:
        want = "mean" if not sym else "xy"
        found = {}
        for r in intervals:
            if r["metric"] == metric and r["aggregate"] == "max" and r["order"] == want:
                found[(r["model_x"], r["model_y"])] = r
                if sym or want == "mean":
                    found[(r["model_y"], r["model_x"])] = r
        cells = [[found.get((lm, x)) for x in x_models] for lm in by_side[line_side]]
        if any(c for row in cells for c in row):
            def num(c, key):
                return float(c[key]) if c and c[key] != "" else np.nan
            low = np.array([[num(c, "low") for c in row] for row in cells])
            high = np.array([[num(c, "high") for c in row] for row in cells])
            level = next(float(c["level"]) for row in cells for c in row if c)
    return Curves(x_side, line_side, x_models, np.array([competence[x].value for x in x_models]),
                  {x: competence[x].source for x in x_models}, by_side[line_side], raw, cal,
                  ns, p_label, alpha, [x for x in by_side[x_side] if x not in competence],
                  dict(labels or {}), low, high, band, level, p_grid)


def _xlabel(c: Curves) -> str:
    sources = sorted(set(c.sources.values()))
    head = f"competence of the {c.x_side} model"
    if len(sources) == 1:
        return st.wrap(f"{head}\n({sources[0]})", 60)
    return f"{head} (sources in the note below)"


def _shown_band(band: tuple[float, float], ylim: tuple[float, float]) -> tuple[float, float]:
    """The null band as drawn: at least MIN_BAND of the y axis tall."""
    lo, hi = band
    least = MIN_BAND * (ylim[1] - ylim[0])
    if hi - lo >= least:
        return band
    mid = (lo + hi) / 2
    return mid - least / 2, mid + least / 2


def _draw(ax, c: Curves, xaxis: BrokenAxis, values: np.ndarray, ylabel: str, *,
          raw: bool = False) -> tuple[list, bool]:
    """One panel; returns the line handles and whether the null band had
    to be widened to stay visible."""
    from matplotlib.transforms import ScaledTranslation

    handles = []
    u = xaxis(c.x)
    n = len(c.line_models)
    dodged: dict[int, list] = {}
    for i, lm in enumerate(c.line_models):
        sty = st.line_style(i)
        y = values[i]
        ok = np.isfinite(y)
        artists = dodged[i] = []
        h, = ax.plot(u[ok], y[ok], label=c.label(lm), markersize=6, linewidth=1.8, **sty)
        artists.append(h)
        handles.append(h)
        if raw and c.low is not None:
            have = ok & np.isfinite(c.low[i]) & np.isfinite(c.high[i])
            yerr = [np.clip(y[have] - c.low[i][have], 0, None),
                    np.clip(c.high[i][have] - y[have], 0, None)]
            bars = ax.errorbar(u[have], y[have], yerr=yerr, fmt="none", ecolor=sty["color"],
                               elinewidth=1.2, capsize=3, zorder=2)
            artists += [a for part in bars.lines[1:] for a in part]
        if c.not_significant is not None:
            ns = ok & c.not_significant[i]
            artists += ax.plot(u[ns], y[ns], linestyle="none", marker=sty["marker"],
                               markersize=6, markerfacecolor="white",
                               markeredgecolor=sty["color"], zorder=3)
    widened = False
    if raw and c.null_band is not None:
        # the axis reaches down to the null, so steps between points are seen
        # against the scale of chance, not blown up by auto-scaling
        lo, hi = ax.get_ylim()
        bottom = min(lo, c.null_band[0])
        ylim = (bottom - 0.05 * (hi - bottom), max(hi, c.null_band[1]))
        ax.set_ylim(*ylim)
        band = _shown_band(c.null_band, ylim)
        widened = band != c.null_band
        ax.axhspan(*band, facecolor="#bdbdbd", edgecolor="#8c8c8c", alpha=0.7, linewidth=0.8,
                   zorder=0)
    ax.set_xlim(*xaxis.drawn_lim)
    if raw and c.low is not None and n > 1:
        # the lines' intervals at one x side by side, not on top of each other
        ax.set_ylim(ax.get_ylim())
        for i, artists in dodged.items():
            shift = ScaledTranslation((i - (n - 1) / 2) * DODGE_PT / 72, 0,
                                      ax.figure.dpi_scale_trans)
            for a in artists:
                a.set_transform(ax.transData + shift)
    ticks = xaxis.ticks()
    ax.set_xticks(xaxis(ticks), [f"{t:g}" for t in ticks])
    xaxis.draw_marks(ax)
    ax.set_ylabel(ylabel)
    ax.set_xlabel(_xlabel(c))
    ax.grid(True, color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    return handles, widened


def _notes(c: Curves, metric: str, xaxis: BrokenAxis, trend: Sequence[Mapping[str, str]] = (),
           widened: bool = False) -> str:
    lines = []
    if c.low is not None:
        lines.append(f"bars: {c.level:.0%} intervals of the score's sampling noise "
                     "(statistics/intervals.tsv)")
    if c.null_band is not None:
        lo, hi = c.null_band
        lines.append(f"grey band: permutation nulls of these pairs, from the lowest null mean "
                     f"({lo:.3g}) to the highest {1 - c.alpha:.0%} threshold τ ({hi:.3g})"
                     + (f"; drawn {MIN_BAND:.0%} of the axis tall to stay visible"
                        if widened else ""))
    if xaxis.broken:
        a, b = xaxis.values
        lines.append(f"x axis broken between {a:g} and {b:g} (the gap is not to scale)")
    for r in trend:
        if (r["modality"] == c.x_side and r["metric"] == metric and r["aggregate"] == "max"
                and r["partner"] == "pooled"):
            lines.append(f"trend, pooled over {c.line_side} models: {r['statistic']} = "
                         f"{float(r['estimate']):.3g} [{_num(r['low'])}, {_num(r['high'])}], "
                         f"p = {_num(r['p_value'])} (sample noise), p_models = "
                         f"{_num(r['p_models'])} (order of {r['n_models']} models)")
    if len(set(c.sources.values())) > 1:
        lines += [f"{c.label(x)}: {c.sources[x]}" for x in c.x_models]
    if c.missing:
        lines.append(f"not shown (no competence): {', '.join(c.label(x) for x in c.missing)}")
    if c.p is not None:
        lines.append(significance_note(significance(c.raw, c.p, c.alpha), c.p_label, c.alpha,
                                       "open markers"))
    return "\n".join(lines)


def _num(text: str) -> str:
    return f"{float(text):.3g}" if text != "" else "n/a"


def alignment_vs_competence(alignment_h5: str | os.PathLike, out: st.Outputs, *, metric: str,
                            modalities: Mapping[str, str] | None = None,
                            features: Mapping[str, str | os.PathLike] | None = None,
                            competence: Mapping[str, Mapping[str, Any]] | None = None,
                            calibrated: bool = False, dpi: int = 150,
                            intervals: str | os.PathLike | None = None,
                            trend: str | os.PathLike | None = None) -> list:
    """Alignment (``metric``) against competence; ``calibrated``: raw and
    calibrated side by side (the raw panel alone, with a note, when the file
    holds no calibrated score of ``metric``). ``competence``: per model
    ``{"competence", "competence_source"}`` from the config; ``features``:
    model -> features file (for bits per byte, the models' names and,
    without ``modalities``, the modality); ``intervals`` and ``trend``: the
    statistics tables."""
    with st.style():
        fig = competence_figure(alignment_h5, metric=metric, modalities=modalities,
                                features=features, competence=competence,
                                calibrated=calibrated, intervals=intervals, trend=trend)
        if isinstance(fig, tuple):
            return _message(out, *fig, calibrated=calibrated, dpi=dpi)
        return st.save(fig, out, dpi=dpi)


def competence_figure(alignment_h5: str | os.PathLike, *, metric: str,
                      modalities: Mapping[str, str] | None = None,
                      features: Mapping[str, str | os.PathLike] | None = None,
                      competence: Mapping[str, Mapping[str, Any]] | None = None,
                      calibrated: bool = False, intervals: str | os.PathLike | None = None,
                      trend: str | os.PathLike | None = None):
    """The figure of :func:`alignment_vs_competence`, laid out and not saved
    (call it inside :func:`.style.style`), or (title, short, message) when
    there is nothing to draw."""
    from ..formats.statistics import read_intervals, read_trend

    data = load_alignment(alignment_h5)
    models = data["models"]
    features = features or {}
    modalities = dict(modalities or {})
    info = {x: model_info(x, features.get(x), modalities.get(x) or None) for x in models}
    for x in models:
        if not modalities.get(x) and info[x].modality:
            modalities[x] = info[x].modality
    comp = resolve_competence(models, features=features, configured=competence)
    m = metric_of(data, metric, alignment_h5)
    params = ", ".join(f"{k}={v}" for k, v in m["params"].items())
    title = f"{data['dataset']}: alignment vs competence, {metric}" + (
        f" ({params})" if params else "")
    c = competence_curves(data, metric, modalities=modalities, competence=comp,
                          source=alignment_h5, labels=labels_of(models, info),
                          intervals=read_intervals(intervals) if intervals else None)
    if isinstance(c, str):
        msg = f"{c}.\n{HOW_TO}" if c == NO_COMPETENCE else c + "."
        return title, c, msg

    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    orders = "" if m["symmetric"] else ", mean of both orders"
    ylabel = f"alignment: {metric}\n(best layer pair{orders})"
    xaxis = BrokenAxis.for_values(c.x)
    both = calibrated and c.calibrated is not None
    # wide enough for every x model's name standing upright side by side
    panel_w = max(4.0, 0.2 * len(c.x_models) + 0.6)
    if not both:
        fig, ax = plt.subplots(figsize=(panel_w + 2.8, 4.8))
        axes = [ax]
        handles, widened = _draw(ax, c, xaxis, c.raw, ylabel, raw=True)
    else:
        fig, axes = plt.subplots(1, 2, figsize=(2 * panel_w + 3.5, 5.0))
        handles, widened = _draw(axes[0], c, xaxis, c.raw, ylabel, raw=True)
        _draw(axes[1], c, xaxis, c.calibrated,
              f"calibrated {metric}\n(0 = not above the permutation null)")
        vals = c.calibrated[np.isfinite(c.calibrated)]
        top = float(vals.max()) if vals.size else 1.0
        pad = 0.08 * max(top, 0.05)
        axes[1].set_ylim(-pad, top + pad)
        for ax, name in zip(axes, ("raw score", "calibrated score")):
            ax.set_title(name, loc="left", fontsize=10, fontweight="bold")
    if c.null_band is not None:
        handles = handles + [Patch(facecolor="#bdbdbd", edgecolor="#8c8c8c",
                                   label="permutation null")]
    fig.suptitle(title)
    fig.legend(handles=handles, title=f"{c.line_side} model", loc="upper left",
               bbox_to_anchor=(1.0, 0.85), frameon=False)
    # the tag on a line of its own keeps a name as narrow as the model's
    names = [c.label(x).replace(" (", "\n(", 1) for x in c.x_models]
    label_ticks(fig, [(ax, xaxis(c.x), names) for ax in axes], layout=fig.tight_layout)
    notes = _notes(c, metric, xaxis, read_trend(trend) if trend else (), widened)
    if calibrated and c.calibrated is None:
        notes += f"\n{alignment_h5} holds no calibrated score of {metric}: raw scores only"
    st.add_note(fig, notes, width=110)
    return fig


def _message(out, title, short, message, *, calibrated, dpi):
    """A figure with the axes' place taken by what is missing (the axes say
    "no competence values configured" when there are none)."""
    import matplotlib.pyplot as plt

    with st.style():
        n = 2 if calibrated else 1
        fig, axes = plt.subplots(1, n, figsize=(5.6 * n, 3.8), squeeze=False)
        for ax, name in zip(axes[0], ("raw score", "calibrated score")[:n]):
            ax.set_xlabel(f"competence: {short}")
            ax.set_ylabel("alignment")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.5, 0.5, st.wrap(message, 46), ha="center", va="center",
                    transform=ax.transAxes, fontsize=9.5, color="#333333")
            if calibrated:
                ax.set_title(name, loc="left", fontsize=10)
        fig.suptitle(title)
        fig.tight_layout()
        return st.save(fig, out, dpi=dpi)
