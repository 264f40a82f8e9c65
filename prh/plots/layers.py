"""Where in depth two models align: one pair's layer x layer score matrix.

Read from a pair file (:func:`prh.formats.pair.read_pair`): ``xy/<metric>`` is
(Lx, Ly) with rows the layers of the file's ``model_x``. Asked for the pair
the other way round, the matrix is transposed (symmetric metrics) or taken
from ``yx/<metric>``. Layer 0 is at the bottom left; the best layer pair is
marked with a star and its score and layer names are in the title. Models
with random weights (features file attribute ``weights``) are labelled
"(untrained)".
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from . import style as st
from .data import layer_names, model_info

MAX_TICKS = 24


def _ticks(names: Sequence[str]) -> tuple[list[int], list[str]]:
    n = len(names)
    step = max(1, int(np.ceil(n / MAX_TICKS)))
    idx = list(range(0, n, step))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return idx, [f"{i}: {names[i]}" if names[i] != str(i) else str(i) for i in idx]


def layer_heatmap(scores: np.ndarray, out: st.Outputs, *, model_x: str, model_y: str,
                  metric: str, names_x: Sequence[str] | None = None,
                  names_y: Sequence[str] | None = None, dataset: str = "",
                  vmax: float | None = None, dpi: int = 150, label_x: str | None = None,
                  label_y: str | None = None) -> list:
    """The layer x layer heatmap of one metric, rows = layers of ``model_x``;
    ``label_x``, ``label_y``: the models' labels (default: short names)."""
    import matplotlib.pyplot as plt

    s = np.asarray(scores, dtype=np.float64)
    label_x = label_x or st.short_name(model_x)
    label_y = label_y or st.short_name(model_y)
    head = f"{dataset + ': ' if dataset else ''}{label_x} × {label_y}, {metric}"
    if s.ndim != 2 or 0 in s.shape:
        raise ValueError(f"{head}: layer scores must be a non-empty 2-D matrix, "
                         f"got shape {s.shape}")
    names_x = list(names_x) if names_x is not None else [str(i) for i in range(s.shape[0])]
    names_y = list(names_y) if names_y is not None else [str(i) for i in range(s.shape[1])]
    if (len(names_x), len(names_y)) != s.shape:
        raise ValueError(f"{head}: {len(names_x)} x {len(names_y)} layer names for a "
                         f"{s.shape[0]} x {s.shape[1]} matrix")
    finite = np.isfinite(s)
    if not finite.any():
        return st.message_figure(out, head, "Every layer pair's score is NaN: nothing to "
                                 "show. Check the pair job's log.", dpi=dpi)
    i, j = np.unravel_index(np.argmax(np.where(finite, s, -np.inf)), s.shape)
    lx, ly = s.shape
    w = min(9.0, max(4.2, 0.28 * ly + 2.6))
    h = min(8.0, max(3.6, 0.28 * lx + 1.8))
    with st.style():
        fig, ax = plt.subplots(figsize=(w + 1.2, h))
        cm = st.colormap(st.LAYER_CMAP)
        im = ax.imshow(np.ma.masked_invalid(s), cmap=cm, origin="lower", aspect="auto",
                       interpolation="nearest", vmin=min(0.0, float(s[finite].min())),
                       vmax=vmax if vmax is not None else float(s[finite].max()))
        ax.plot([j], [i], marker="*", markersize=16, markerfacecolor="white",
                markeredgecolor="black", markeredgewidth=1.2, linestyle="none",
                label="best layer pair", zorder=3)
        for side in ("top", "right"):
            ax.spines[side].set_visible(True)
        xt, xl = _ticks(names_y)
        yt, yl = _ticks(names_x)
        ax.set_xticks(xt, xl, rotation=60 if max(map(len, xl)) > 3 else 0, ha="right"
                      if max(map(len, xl)) > 3 else "center", fontsize=7 if ly > 16 else 8)
        ax.set_yticks(yt, yl, fontsize=7 if lx > 16 else 8)
        ax.set_xlabel(f"layer of {label_y} (model Y)")
        ax.set_ylabel(f"layer of {label_x} (model X)")
        cb = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.03)
        cb.set_label(metric)
        nan_note = f"; {int((~finite).sum())} NaN cell(s) in grey" if not finite.all() else ""
        ax.set_title(f"{head}\nbest {st.format_value(s[i, j])} at X layer {i} ({names_x[i]}), "
                     f"Y layer {j} ({names_y[j]}){nan_note}", fontsize=10)
        st.add_note(fig, "☆ the best layer pair: its score is the pair's "
                    "max-over-layer-pairs alignment", width=80)
        return st.save(fig, out, dpi=dpi)


def pair_matrix(pair: Mapping, metric: str, model_x: str, model_y: str,
                source: str | os.PathLike) -> np.ndarray:
    """Layer scores with rows = layers of ``model_x``, from a read pair file."""
    fx, fy = pair["model_x"], pair["model_y"]
    if metric not in pair["xy"]:
        raise ValueError(f"{source} has no scores for metric {metric!r}; it has: "
                         + ", ".join(pair["xy"]))
    if (model_x, model_y) == (fx, fy):
        return pair["xy"][metric]
    if (model_x, model_y) == (fy, fx):
        return pair["yx"][metric] if metric in pair["yx"] else pair["xy"][metric].T
    raise ValueError(f"{source} holds {fx} x {fy}, not {model_x} x {model_y}")


def pair_layer_heatmaps(pair_h5: str | os.PathLike, outputs: Mapping[str, st.Outputs], *,
                        model_x: str, model_y: str,
                        features_x: str | os.PathLike | None = None,
                        features_y: str | os.PathLike | None = None,
                        dataset: str = "", dpi: int = 150) -> None:
    """One layer x layer heatmap per metric of ``outputs`` (metric -> path(s))
    for the pair (model_x, model_y); layer names from the features files."""
    from ..formats.pair import read_pair

    pair = read_pair(pair_h5, (model_x, model_y))  # a block file holds many pairs
    label_x = model_info(model_x, features_x).label()
    label_y = model_info(model_y, features_y).label()
    for metric, out in outputs.items():
        s = pair_matrix(pair, metric, model_x, model_y, pair_h5)
        layer_heatmap(s, out, model_x=model_x, model_y=model_y, metric=metric,
                      names_x=layer_names(features_x, s.shape[0]),
                      names_y=layer_names(features_y, s.shape[1]), dataset=dataset, dpi=dpi,
                      label_x=label_x, label_y=label_y)
