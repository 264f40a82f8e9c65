"""Figures of alignment results (matplotlib, no display needed).

``heatmap`` draws one metric's model x model matrix from ``alignment.h5``
(see :mod:`prh.workflow_steps` for the file layout).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def heatmap(score: np.ndarray, models: Sequence[str], out: str | os.PathLike, *,
            title: str, vmax: float | None = None, dpi: int = 150,
            modalities: Sequence[str] | None = None) -> None:
    """Model x model heatmap, rows = model X, columns = model Y, values annotated.

    NaN cells (the diagonal, pairs not computed) are left blank. Written
    atomically to ``out``; the format follows its suffix.
    """
    from .jobio import atomic_output

    score = np.asarray(score, dtype=np.float64)
    if score.shape != (len(models), len(models)):
        raise ValueError(f"score must be {len(models)} x {len(models)}, got {score.shape}")
    plt = _pyplot()
    size = max(3.5, 0.55 * len(models) + 2.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    finite = score[np.isfinite(score)]
    vmin = min(0.0, float(finite.min())) if finite.size else 0.0
    top = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    im = ax.imshow(np.ma.masked_invalid(score), cmap="viridis", vmin=vmin, vmax=top)
    labels = list(models)
    if modalities is not None:
        labels = [f"{m} ({mod[0].upper()})" for m, mod in zip(models, modalities)]
    ax.set_xticks(range(len(models)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(models)), labels, fontsize=8)
    ax.set_xlabel("model Y")
    ax.set_ylabel("model X")
    ax.set_title(title, fontsize=10)
    if len(models) <= 20:
        for i in range(len(models)):
            for j in range(len(models)):
                if np.isfinite(score[i, j]):
                    frac = (score[i, j] - vmin) / (top - vmin) if top > vmin else 0.0
                    ax.text(j, i, f"{score[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="black" if frac > 0.6 else "white")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    out = Path(out)
    with atomic_output(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format=out.suffix.lstrip(".") or "png")
    plt.close(fig)


def alignment_heatmaps(alignment_h5: str | os.PathLike, outputs: Sequence[str | os.PathLike],
                       metrics: Sequence[str], *, dpi: int = 150,
                       modalities: Sequence[str] | None = None) -> None:
    """One heatmap per metric of an alignment file, ``outputs[i]`` for ``metrics[i]``."""

    from .pairs import read_alignment

    if len(outputs) != len(metrics):
        raise ValueError(f"{len(outputs)} output paths for {len(metrics)} metrics")
    data = read_alignment(alignment_h5)
    for metric, out in zip(metrics, outputs):
        if metric not in data["metrics"]:
            raise ValueError(f"{alignment_h5} has no metric {metric!r}")
        m = data["metrics"][metric]
        params = ", ".join(f"{k}={v}" for k, v in m["params"].items())
        title = f"{data['dataset']}: {metric}" + (f" ({params})" if params else "")
        title += "\nbest layer pair, row model as X" if not m["symmetric"] else "\nbest layer pair"
        heatmap(m["score"], data["models"], out, title=title, dpi=dpi, modalities=modalities)
