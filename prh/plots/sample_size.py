"""Is alignment still moving at this N? The sample-size curve.

Reads ``sample_size.tsv`` (one row per dataset, pair, metric, aggregate and
subset size n: score, null mean and std, tau, p, ...); one panel per metric,
one line per model pair (and aggregate, when there are several): the score
as a solid line, the permutation null's mean +- std as a band and its
threshold tau dotted, in the same colour.
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

import numpy as np

from . import style as st
from ..naming import display_name

NUMERIC = ("n", "score", "p_value", "tau", "calibrated", "null_mean", "null_std")


def read_sample_size(path: str | os.PathLike) -> list[dict]:
    """``sample_size.tsv`` rows with the numeric columns as floats."""
    from ..formats.sample_size import read_sample_size_tsv

    rows = read_sample_size_tsv(path)
    for line, r in enumerate(rows, start=2):
        for c in NUMERIC:
            try:
                r[c] = float(r[c]) if r[c] not in ("", "nan", "NaN") else math.nan
            except ValueError:
                raise ValueError(f"{path}, line {line}: {c} = {r[c]!r} "
                                 "is not a number") from None
    return rows


def sample_size_curve(tsv: str | os.PathLike, out: st.Outputs, *,
                      metrics: Sequence[str] | None = None, dpi: int = 150,
                      labels: Mapping[str, str] | None = None) -> list:
    """The curve figure of a ``sample_size.tsv``; ``labels``: model -> name
    (:meth:`prh.config.Config.display_names`; default: named by key)."""
    import matplotlib.pyplot as plt

    labels = dict(labels or {})

    def name(m):
        return labels.get(m) or display_name(m)

    rows = read_sample_size(tsv)
    datasets = sorted({r["dataset"] for r in rows})
    title = f"{', '.join(datasets) or 'sample size'}: alignment vs sample size"
    if not rows:
        return st.message_figure(out, title, f"{tsv} has no rows: no sample sizes were "
                                 "computed (calibration.sample_sizes is empty?).", dpi=dpi)
    if metrics is None:
        metrics = list(dict.fromkeys(r["metric"] for r in rows))
    metrics = list(metrics)
    absent = [m for m in metrics if not any(r["metric"] == m for r in rows)]
    if absent:
        raise ValueError(f"{tsv} has no rows for metric(s) {', '.join(absent)}")
    aggregates = list(dict.fromkeys(r["aggregate"] for r in rows))
    lines = list(dict.fromkeys((r["model_x"], r["model_y"], r["aggregate"]) for r in rows))
    k = len(metrics)
    ncols = min(3, k)
    nrows = math.ceil(k / ncols)
    ns = sorted({r["n"] for r in rows if np.isfinite(r["n"])})
    with st.style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols + 1.8, 3.6 * nrows),
                                 squeeze=False)
        handles = {}
        for a, metric in enumerate(metrics):
            ax = axes.flat[a]
            for i, (x, y, agg) in enumerate(lines):
                pts = sorted((r for r in rows if r["metric"] == metric and r["model_x"] == x
                              and r["model_y"] == y and r["aggregate"] == agg),
                             key=lambda r: r["n"])
                if not pts:
                    continue
                sty = st.line_style(i)
                n = np.array([r["n"] for r in pts])
                s = np.array([r["score"] for r in pts])
                mu = np.array([r["null_mean"] for r in pts])
                sd = np.array([r["null_std"] for r in pts])
                tau = np.array([r["tau"] for r in pts])
                label = f"{name(x)} × {name(y)}"
                if len(aggregates) > 1:
                    label += f" ({agg})"
                h, = ax.plot(n, s, label=label, markersize=5, linewidth=1.8, **sty)
                handles.setdefault(label, h)
                ax.fill_between(n, mu - sd, mu + sd, color=sty["color"], alpha=0.15,
                                linewidth=0)
                ax.plot(n, tau, color=sty["color"], linestyle=":", linewidth=1.2)
            ax.set_title(metric, loc="left", fontsize=10)
            ax.set_xlabel("samples n")
            ax.set_ylabel("score")
            if ns and ns[0] > 0 and ns[-1] / ns[0] >= 4:
                ax.set_xscale("log", base=2)
            ax.set_xticks(ns, [f"{v:g}" for v in ns])
            ax.minorticks_off()
            ax.grid(True, color="#e5e5e5", linewidth=0.8)
            ax.set_axisbelow(True)
        for ax in list(axes.flat)[k:]:
            ax.set_visible(False)
        fig.suptitle(title)
        fig.legend(handles=list(handles.values()), title="model pair", loc="upper left",
                   bbox_to_anchor=(1.0, 0.92), frameon=False)
        fig.text(0.01, -0.01, "solid: score (aggregate over layer pairs); band: permutation "
                 "null mean ± std; dotted: threshold τ (null's 1 - α quantile)", fontsize=8,
                 color="#333333", ha="left", va="top")
        fig.tight_layout()
        return st.save(fig, out, dpi=dpi)
