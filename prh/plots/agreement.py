"""Do the metrics agree? Spearman rank correlation between metrics over all
model pairs of a run, as a small annotated matrix.

Each metric contributes its score for every ordered model pair (row model as
X) where every metric has one; for symmetric metrics the two orders repeat
the same value, which leaves Spearman's rho unchanged. The metrics are
grouped by family (global, local, predictive: :func:`prh.metric_info.by_kind`),
each block of the matrix framed and named, so that agreement within a family
and between families reads apart. With fewer than :data:`MIN_PAIRS` model
pairs, or one metric, the figure says so.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from ..metric_info import by_kind
from . import style as st
from .data import load_alignment, metric_of

MIN_PAIRS = 3


def agreement_matrix(scores: Mapping[str, np.ndarray]) -> tuple[np.ndarray, int]:
    """Spearman rho between metrics (K x K; NaN where a metric is constant)
    and the number of unordered model pairs it is computed over."""
    from scipy.stats import spearmanr

    names = list(scores)
    mats = [np.asarray(scores[k], dtype=float) for k in names]
    n = mats[0].shape[0]
    off = ~np.eye(n, dtype=bool)
    ok = off & np.logical_and.reduce([np.isfinite(m) for m in mats])
    n_pairs = int((ok | ok.T)[np.triu_indices(n, 1)].sum())
    k = len(names)
    rho = np.full((k, k), np.nan)
    if n_pairs < MIN_PAIRS:
        return rho, n_pairs
    cols = [m[ok] for m in mats]
    for a in range(k):
        for b in range(k):
            if np.ptp(cols[a]) == 0 or np.ptp(cols[b]) == 0:
                continue
            rho[a, b] = 1.0 if a == b else float(spearmanr(cols[a], cols[b]).statistic)
    return rho, n_pairs


def family_blocks(metrics: Sequence[str]) -> list[tuple[str, int, int]]:
    """(kind, first, last index) of each family's run of ``metrics``, which
    :func:`metric_agreement` orders by family."""
    out: list[tuple[str, int, int]] = []
    for i, kind in enumerate(next(iter(by_kind([m]))) for m in metrics):
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1], i)
        else:
            out.append((kind, i, i))
    return out


def agreement_figure(rho: np.ndarray, metrics: Sequence[str], n_pairs: int, out: st.Outputs,
                     *, title: str, dpi: int = 150) -> list:
    import matplotlib.pyplot as plt

    k = len(metrics)
    with st.style():
        size = max(3.8, 0.62 * k + 2.2)
        fig, ax = plt.subplots(figsize=(size + 1.2, size))
        cm = st.colormap(st.CORRELATION_CMAP)
        im = ax.imshow(np.ma.masked_invalid(rho), cmap=cm, vmin=-1, vmax=1,
                       interpolation="nearest")
        ax.set_xticks(range(k), metrics, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(k), metrics)
        ax.tick_params(length=0)
        for side in ("top", "right"):
            ax.spines[side].set_visible(True)
        for a in range(k):
            for b in range(k):
                v = rho[a, b]
                text = "n/a" if not np.isfinite(v) else f"{v:.2f}"
                ax.text(b, a, text, ha="center", va="center", fontsize=8,
                        color="white" if np.isfinite(v) and abs(v) > 0.6 else "black")
        blocks = family_blocks(metrics)
        for kind, first, last in blocks:
            # each family's block framed; its name over its columns and beside its rows
            ax.add_patch(plt.Rectangle((first - 0.5, first - 0.5), last - first + 1,
                                       last - first + 1, fill=False, lw=1.6, color="black"))
            ax.text((first + last) / 2, 1.01, kind, transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=8, fontweight="bold")
            if first:
                ax.axhline(first - 0.5, color="#555555", lw=0.8)
                ax.axvline(first - 0.5, color="#555555", lw=0.8)
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        cb.set_label("Spearman ρ")
        ax.set_title(f"{title}\nover {n_pairs} model pairs; blocks: measure families",
                     fontsize=10, pad=16)
        if np.isnan(rho[~np.eye(k, dtype=bool)]).any():
            fig.text(0.01, 0.0, "n/a: a metric has the same score for every pair", fontsize=8,
                     color="#333333", ha="left", va="bottom")
        return st.save(fig, out, dpi=dpi)


def metric_agreement(alignment_h5: str | os.PathLike, out: st.Outputs, *,
                     metrics: Sequence[str] | None = None, dpi: int = 150) -> list:
    """Rank agreement of the metrics of an alignment file (all, or ``metrics``)."""
    data = load_alignment(alignment_h5)
    metrics = list(metrics) if metrics is not None else list(data["metrics"])
    metrics = [m for group in by_kind(metrics).values() for m in group]
    scores = {m: metric_of(data, m, alignment_h5)["score"] for m in metrics}
    title = f"{data['dataset']}: metric agreement (Spearman ρ)"
    if len(metrics) < 2:
        return st.message_figure(out, title, f"Only one metric ({', '.join(metrics)}): "
                                 "configure two or more metrics to compare them.", dpi=dpi)
    rho, n_pairs = agreement_matrix(scores)
    if n_pairs < MIN_PAIRS:
        return st.message_figure(out, title, f"Only {n_pairs} model pair(s) with scores for "
                                 f"every metric; rank correlation needs at least {MIN_PAIRS}. "
                                 "Configure more models.", dpi=dpi)
    return agreement_figure(rho, metrics, n_pairs, out, title=title, dpi=dpi)
