"""A model's scorecard figure: one panel per metric, a bar per partner model
(the best layer pair's score), partners grouped by modality in the same
order in every panel (so a partner stays in one column). Bars whose
BH-adjusted p is above alpha are hatched and marked "n.s."; a black tick
across a bar marks its chance threshold tau (the permutation null's
1 - alpha quantile) where the pair is calibrated; error bars give the
pair's interval where ``statistics/intervals.tsv`` has it. The footer says
only what the figure shows. Rows as :mod:`prh.steps.scorecard` builds them.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from . import style as st
from .data import MODALITY_ORDER

#: an interval row belongs to a bar when their scores agree to the TSV's
#: 6 significant digits (else intervals.tsv is older than the pair files)
SCORE_RTOL = 1e-4


def partner_order(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Partners grouped by modality (vision first), each group by the first
    metric's rank."""
    first: dict[str, Mapping[str, Any]] = {}
    for r in rows:
        first.setdefault(r["partner"], r)

    def key(p):
        mod = first[p]["partner_modality"]
        return (MODALITY_ORDER.index(mod) if mod in MODALITY_ORDER else len(MODALITY_ORDER),
                first[p]["rank"])

    return sorted(first, key=key)


def _finite(v) -> bool:
    return v is not None and v != "" and not math.isnan(float(v))


def model_intervals(rows: Sequence[Mapping[str, Any]], intervals: Sequence[Mapping[str, str]],
                    model: str, symmetric: Mapping[str, bool]) -> tuple[dict, int]:
    """(metric, partner) -> (low, high, level) of the scorecard's rows from
    ``statistics/intervals.tsv`` rows (aggregate max; the model as X for an
    asymmetric metric), and how many were left out because their score
    differs from the row's."""
    found = {}
    for r in intervals:
        if r["aggregate"] != "max" or r["order"] != "xy" or not _finite(r["low"]):
            continue
        x, y, metric = r["model_x"], r["model_y"], r["metric"]
        if x == model:
            found[(metric, y)] = r
        elif y == model and symmetric.get(metric, False):
            found[(metric, x)] = r
    out, stale = {}, 0
    for row in rows:
        r = found.get((row["metric"], row["partner"]))
        if r is None:
            continue
        s, t = float(row["score"]), float(r["score"])
        if abs(s - t) > SCORE_RTOL * max(abs(s), abs(t)) + 1e-9:
            stale += 1
            continue
        out[(row["metric"], row["partner"])] = (float(r["low"]), float(r["high"]),
                                                float(r["level"]))
    return out, stale


def scorecard_figure(rows: Sequence[Mapping[str, Any]], out: st.Outputs, *, dpi: int = 150,
                     **kwargs: Any) -> None:
    """Draw (:func:`draw_scorecard`'s arguments) and save the scorecard figure."""
    with st.style():
        st.save(draw_scorecard(rows, **kwargs), out, dpi=dpi)


def draw_scorecard(rows: Sequence[Mapping[str, Any]], *, model: str, dataset: str,
                   metrics: Sequence[str], alpha: float = 0.05,
                   labels: Mapping[str, str] | None = None,
                   intervals: Sequence[Mapping[str, str]] | None = None,
                   intervals_path: str | os.PathLike | None = None,
                   symmetric: Mapping[str, bool] | None = None):
    """The scorecard figure, laid out and not saved (call it inside
    :func:`.style.style`). ``labels``: model -> name (default
    :func:`prh.naming.display_name` of the key); ``intervals``: rows of
    ``statistics/intervals.tsv`` (read from ``intervals_path``, which the
    footer names); ``symmetric``: metric -> whether it is symmetric (default:
    :mod:`prh.metric_info`)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from ..naming import display_name

    labels = dict(labels or {})

    def name(m):
        return labels.get(m) or display_name(m)

    if symmetric is None:
        from ..metric_info import get_metric
        symmetric = {m: get_metric(m).symmetric for m in metrics}
    bars_ci, stale = model_intervals(rows, intervals or (), model, symmetric)
    partners = partner_order(rows)
    fig, axes = plt.subplots(len(metrics), 1, squeeze=False, sharex=True,
                             figsize=(max(6.0, 1.5 + 0.75 * len(partners)),
                                      0.9 + 1.8 * len(metrics)))
    colours = {m: st.OKABE_ITO[i] for i, m in enumerate(MODALITY_ORDER)}
    shown = {"ns": 0, "calibrated": 0, "tau": 0, "bars": 0, "level": None}
    for ax, metric in zip(axes[:, 0], metrics):
        by_partner = {r["partner"]: r for r in rows if r["metric"] == metric}
        rs = [by_partner[p] for p in partners if p in by_partner]
        if not rs:
            st.axes_message(ax, f"{metric}: no partner models")
            continue
        pos = np.array([partners.index(r["partner"]) for r in rs])
        score = np.array([r["score"] for r in rs], dtype=float)
        bars = ax.bar(pos, score, color=[colours.get(r["partner_modality"], "#777777")
                                         for r in rs], width=0.7)
        for x, bar, r in zip(pos, bars, rs):
            top = bar.get_height()
            ci = bars_ci.get((metric, r["partner"]))
            if ci is not None:
                ax.errorbar([x], [top], yerr=[[max(top - ci[0], 0)], [max(ci[1] - top, 0)]],
                            fmt="none", ecolor="#222222", elinewidth=1.1, capsize=3,
                            zorder=4)
                shown["bars"] += 1
                shown["level"] = ci[2]
                top = max(top, ci[1])
            if _finite(r.get("tau")):
                ax.hlines(float(r["tau"]), x - 0.42, x + 0.42, color="black",
                          linewidth=1.6, zorder=5)
                shown["tau"] += 1
            p = r["p_bh"]
            if _finite(p):
                shown["calibrated"] += 1
                if float(p) > alpha:
                    shown["ns"] += 1
                    bar.set_hatch("///")
                    bar.set_alpha(0.6)
                    ax.annotate("n.s.", (x, top), xytext=(0, 2),
                                textcoords="offset points", ha="center", va="bottom",
                                fontsize=7)
        if not any(_finite(r["p_bh"]) for r in rs):
            ax.set_title(f"{metric} is not calibrated: not compared with chance",
                         loc="right", fontsize=8, color="#555555")
        ax.set_ylabel(metric)
        ax.margins(y=0.15)
    axes[-1, 0].set_xticks(np.arange(len(partners)),
                           [name(p) for p in partners],
                           rotation=30, ha="right", rotation_mode="anchor")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, label=m) for m, c in colours.items()]
    if shown["tau"]:
        handles.append(Line2D([], [], color="black", linewidth=1.6,
                              label="chance threshold τ"))
    axes[0, 0].legend(handles=handles, title="partner", loc="upper left",
                      bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle(f"{name(model)} on {dataset}: alignment with each model")
    fig.tight_layout()
    st.add_note(fig, _footer(shown, alpha, intervals_path, stale), below=[axes[-1, 0]])
    return fig


def _footer(shown: Mapping[str, Any], alpha: float, intervals_path, stale: int) -> str:
    """What the figure shows, sentence by sentence."""
    lines = ["Bars: the best layer pair's score per partner."]
    if shown["calibrated"] == 0:
        lines.append("No pair of this model is calibrated: no permutation null, the scores "
                     "are not compared with chance.")
    else:
        lines.append(f"Black tick: chance threshold τ, the permutation null's {1 - alpha:.0%} "
                     "quantile, of each calibrated pair.")
        if shown["ns"]:
            lines.append(f"Hatched, n.s.: not above chance, BH-adjusted p > {alpha:g} "
                         f"({shown['ns']} of the {shown['calibrated']} calibrated bars; BH over "
                         "this model's pairs of each metric).")
        else:
            lines.append(f"Each of the {shown['calibrated']} calibrated bars is above chance "
                         f"(BH-adjusted p ≤ {alpha:g} over this model's pairs of each metric).")
    if shown["bars"]:
        lines.append(f"Error bars: {shown['level']:.0%} intervals of the sampling noise"
                     + (f" ({intervals_path})." if intervals_path else "."))
    if stale:
        lines.append(f"{stale} interval(s) of {intervals_path or 'the intervals table'} left "
                     "out: their score differs from the pair files' (the statistics are "
                     "older; rerun them).")
    return " ".join(lines)
