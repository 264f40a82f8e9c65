"""Model x model heatmaps of ``alignment.h5``: raw and calibrated scores.

Rows are model X, columns model Y (as in the file). Models are grouped by
modality (vision first, then language) and ordered by size within a group
(``param_count`` of each features file). Values are annotated up to
:data:`ANNOTATE_MAX` models. Cells whose (BH-adjusted) p-value is above alpha
are hatched and marked "n.s."; the note under the matrix says how many
pairs are calibrated and above their null, or that the metric is not
calibrated at all (:func:`.data.significance_note`). NaN cells (the
diagonal, pairs not computed) are grey. Models are named by
:func:`prh.naming.display_names`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from . import style as st
from .data import (has_calibration, labels_of, load_alignment, metric_of, model_info,
                   order_models, p_values, significance, significance_note)

ANNOTATE_MAX = 20


def _tick_labels(models, sizes, labels=None):
    if labels is not None:
        return [str(lab) for lab in labels]
    if sizes is not None and any(s is not None for s in sizes):
        return [st.model_label(m, extra=[st.format_count(s)]) for m, s in zip(models, sizes)]
    return [st.model_label(m) for m in models]


def heatmap(score: np.ndarray, models: Sequence[str], out: st.Outputs, *, title: str,
            vmax: float | None = None, vmin: float | None = None, dpi: int = 150,
            modalities: Sequence[str] | None = None,
            sizes: Sequence[int | None] | None = None, cmap: str = st.RAW_CMAP,
            not_significant: np.ndarray | None = None, note: str | None = None,
            colorbar_label: str = "score", annotate: bool | None = None,
            labels: Sequence[str] | None = None) -> list:
    """One model x model heatmap, in the given model order.

    ``labels``: the tick labels as they are (then ``sizes`` is not used);
    without them, each model's short name with its size when ``sizes`` is
    given.
    ``not_significant``: boolean (M, M) mask of cells to hatch and mark
    "n.s."; ``note``: a line under the matrix (e.g. what the hatching means).
    One model, or no finite value at all, gives a figure that says so.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    models = [str(m) for m in models]
    n = len(models)
    score = np.asarray(score, dtype=np.float64)
    if score.shape != (n, n):
        raise ValueError(f"{title}: score must be {n} x {n} for {n} models, got {score.shape}")
    if modalities is not None and len(modalities) != n:
        raise ValueError(f"{title}: {len(modalities)} modalities for {n} models")
    if labels is not None and len(labels) != n:
        raise ValueError(f"{title}: {len(labels)} labels for {n} models")
    if np.isinf(score).any():
        raise ValueError(f"{title}: {int(np.isinf(score).sum())} infinite score(s)")
    if n == 0:
        raise ValueError(f"{title}: no models")
    if n == 1:
        return st.message_figure(out, title, f"Only one model ({models[0]}): no pair to "
                                 "compare. Configure at least two models.", dpi=dpi)
    finite = score[np.isfinite(score)]
    if finite.size == 0:
        return st.message_figure(out, title, "No scores: every cell is NaN (no pair was "
                                 "computed for these models).", dpi=dpi)
    lo = vmin if vmin is not None else min(0.0, float(finite.min()))
    hi = vmax if vmax is not None else float(finite.max())
    if hi <= lo:
        hi = lo + 1.0
    norm = Normalize(lo, hi)
    annotate = n <= ANNOTATE_MAX if annotate is None else annotate
    ns = (np.zeros_like(score, dtype=bool) if not_significant is None
          else np.asarray(not_significant, dtype=bool) & np.isfinite(score))

    labels = _tick_labels(models, sizes, labels)
    longest = max(len(s) for s in labels)
    cell = 0.62 if annotate else max(0.22, min(0.45, 8.0 / n))
    side = max(3.2, cell * n)
    margin = 0.075 * longest + 0.6
    with st.style():
        fig, ax = plt.subplots(figsize=(side + margin + 1.3, side + margin + 0.9))
        cm = st.colormap(cmap)
        im = ax.imshow(np.ma.masked_invalid(score), cmap=cm, norm=norm, aspect="equal",
                       interpolation="nearest")
        fs = 9 if n <= 8 else 8 if n <= 14 else 7
        ax.set_xticks(range(n), labels, rotation=45, ha="right", rotation_mode="anchor",
                      fontsize=fs)
        ax.set_yticks(range(n), labels, fontsize=fs)
        ax.set_xlabel("model Y")
        ax.set_ylabel("model X")
        for side_ in ("top", "right"):
            ax.spines[side_].set_visible(True)
        ax.tick_params(length=0)
        if modalities is not None:
            _group_separators(ax, list(modalities))
        for i in range(n):
            for j in range(n):
                if ns[i, j]:
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="//",
                                           edgecolor=(1, 1, 1, 0.45), linewidth=0))
                if not annotate or not np.isfinite(score[i, j]):
                    continue
                r, g, b, _ = cm(norm(score[i, j]))
                dark = 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5
                text = st.format_value(score[i, j]) + ("\nn.s." if ns[i, j] else "")
                color = "white" if dark else "black"
                ax.text(j, i, text, ha="center", va="center",
                        fontsize=8 if n <= 10 else 7, linespacing=0.9, color=color,
                        path_effects=st.outlined(color) if ns[i, j] else None)
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        cb.set_label(colorbar_label)
        ax.set_title(title, pad=18 if modalities is not None else 8)
        st.add_note(fig, note, width=90)
        return st.save(fig, out, dpi=dpi)


def _group_separators(ax, modalities: list[str]) -> None:
    """Lines between modality groups and the group names above the matrix."""
    n = len(modalities)
    start = 0
    for i in range(1, n + 1):
        if i == n or modalities[i] != modalities[start]:
            if i < n:
                ax.axhline(i - 0.5, color="white", linewidth=2.5)
                ax.axvline(i - 0.5, color="white", linewidth=2.5)
            ax.text((start + i - 1) / 2, 1.01, modalities[start], ha="center", va="bottom",
                    transform=ax.get_xaxis_transform(), fontsize=9, fontstyle="italic",
                    color="#333333")
            start = i


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _as_modalities(modalities, models) -> dict[str, str | None]:
    if modalities is None:
        return {}
    if isinstance(modalities, Mapping):
        return {m: modalities.get(m) for m in models}
    modalities = list(modalities)
    if len(modalities) != len(models):
        raise ValueError(f"{len(modalities)} modalities for {len(models)} models")
    return dict(zip(models, modalities))


def alignment_heatmaps(alignment_h5: str | os.PathLike, outputs: Sequence[st.Outputs],
                       metrics: Sequence[str], *, dpi: int = 150,
                       modalities: Sequence[str] | Mapping[str, str] | None = None,
                       features: Mapping[str, str | os.PathLike] | None = None,
                       calibrated_outputs: Sequence[st.Outputs | None] | None = None,
                       mark_not_significant: bool = True) -> None:
    """One heatmap per metric of an alignment file: ``outputs[i]`` (a path or
    one path per format) for ``metrics[i]``; with ``calibrated_outputs``
    (None for a metric without one), the calibrated scores too. A metric the
    file holds no calibrated score of gets its raw scores there, with a note
    saying so, never an empty placeholder.

    ``modalities`` (per model, or a list in the file's model order) and
    ``features`` (model -> features file, for ``param_count`` and the
    models' names) set the order: vision then language, small to large.
    Cells with p above the file's alpha are marked when p-values are present.
    """
    if len(outputs) != len(metrics):
        raise ValueError(f"{len(outputs)} outputs for {len(metrics)} metrics")
    if calibrated_outputs is not None and len(calibrated_outputs) != len(metrics):
        raise ValueError(f"{len(calibrated_outputs)} calibrated outputs for {len(metrics)} metrics")
    data = load_alignment(alignment_h5)
    models = data["models"]
    mods = _as_modalities(modalities, models)
    features = features or {}
    info = {m: model_info(m, features.get(m), mods.get(m)) for m in models}
    order = order_models(models, info)
    ordered = [models[i] for i in order]
    ordered_mods = [info[m].modality or "?" for m in ordered]
    ix = np.ix_(order, order)
    sizes = [info[m].param_count for m in ordered]
    show_sizes = any(s is not None for s in sizes)
    names = labels_of(ordered, info, {m: [st.format_count(info[m].param_count)]
                                      for m in ordered} if show_sizes else None)
    labels = [names[m] for m in ordered]
    show_mods = ordered_mods if (modalities is not None or features) else None
    for k, metric in enumerate(metrics):
        m = metric_of(data, metric, alignment_h5)
        params = _params_text(m["params"])
        head = f"{data['dataset']}: {metric}" + (f" ({params})" if params else "")
        which = "best layer pair" + ("" if m["symmetric"] else "; row model is X")
        p, p_label = p_values(m)
        alpha = float(m.get("alpha", 0.05))
        score = np.asarray(m["score"], dtype=float)[ix]
        ns = note = None
        if mark_not_significant:
            sig = significance(score, None if p is None else p[ix], alpha,
                               symmetric=m["symmetric"])
            ns = sig.not_significant
            note = significance_note(sig, p_label, alpha, "hatched, n.s.")
        heatmap(score, ordered, outputs[k], title=f"{head}\nraw score, {which}",
                dpi=dpi, modalities=show_mods, labels=labels, not_significant=ns, note=note,
                colorbar_label=f"{metric} (max {m['max_score']:g})")
        if calibrated_outputs is None or calibrated_outputs[k] is None:
            continue
        if not has_calibration(m):
            heatmap(score, ordered, calibrated_outputs[k], dpi=dpi, modalities=show_mods,
                    labels=labels, title=f"{head}\nraw score (no calibrated scores), {which}",
                    note=f"{alignment_h5} holds no calibrated score of {metric}: the raw "
                         "scores are shown, not compared with chance",
                    colorbar_label=f"{metric} (max {m['max_score']:g})")
            continue
        note_c = ("calibrated = clip((s - τ) / (s_max - τ), 0, 1); τ = the (1 - α) quantile "
                  "of the permutation null; 0 = not above chance; grey: not calibrated or not "
                  "computed")
        if note:
            note_c = note + "\n" + note_c
        heatmap(np.asarray(m["calibrated"], dtype=float)[ix], ordered, calibrated_outputs[k],
                title=f"{head}\ncalibrated score, {which}", dpi=dpi, modalities=show_mods,
                labels=labels, vmin=0.0, vmax=1.0, cmap=st.CALIBRATED_CMAP, not_significant=ns,
                note=note_c, colorbar_label="calibrated score")
