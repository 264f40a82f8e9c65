"""A model's scorecard figure: one panel per metric, a bar per partner model
(the best layer pair's score), partners grouped by modality (in the same order in every panel, so a partner stays in
one column); bars whose BH-adjusted p is above
alpha are hatched and marked "n.s.". Rows as :mod:`prh.steps.scorecard`
builds them."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from . import style as st
from .data import MODALITY_ORDER


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


def scorecard_figure(rows: Sequence[Mapping[str, Any]], out: st.Outputs, *, model: str,
                     dataset: str, metrics: Sequence[str], alpha: float = 0.05,
                     dpi: int = 150) -> None:
    import matplotlib.pyplot as plt

    with st.style():
        partners = partner_order(rows)
        fig, axes = plt.subplots(len(metrics), 1, squeeze=False, sharex=True,
                                 figsize=(max(6.0, 1.5 + 0.6 * len(partners)),
                                          1.2 + 1.8 * len(metrics)))
        colours = {m: st.OKABE_ITO[i] for i, m in enumerate(MODALITY_ORDER)}
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
            for bar, r in zip(bars, rs):
                p = r["p_bh"]
                if p is not None and not math.isnan(p) and p > alpha:
                    bar.set_hatch("///")
                    bar.set_alpha(0.6)
                    ax.annotate("n.s.", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                                ha="center", va="bottom", fontsize=7)
            ax.set_ylabel(metric)
        axes[-1, 0].set_xticks(np.arange(len(partners)), [st.short_name(p) for p in partners],
                               rotation=30, ha="right")
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
        axes[0, 0].legend(handles, list(colours), title="partner", loc="upper right",
                          frameon=False)
        fig.suptitle(f"{st.short_name(model)} on {dataset}: alignment with each model")
        st.add_note(fig, f"Best layer pair per partner; hatched, n.s.: BH-adjusted p > "
                         f"{alpha:g} (the model's calibrated pairs; intervals: "
                         f"results/<dataset>/statistics/intervals.tsv).",
                    below=[axes[-1, 0]])
        st.save(fig, out, dpi=dpi)
