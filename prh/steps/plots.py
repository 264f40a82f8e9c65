"""Steps of the figure rules. Each takes the rule's figures as
``{output name: what the drawing needs}`` (:meth:`prh.config.Config.figure_params`)
and its named outputs as ``{output name: files}``, so no step rebuilds an
output name or pairs files with models by position."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

Figures = Mapping[str, Mapping[str, Any]]
Outputs = Mapping[str, Sequence[str]]
Paths = Mapping[str, str | os.PathLike]


def heatmaps(alignment: str | os.PathLike, figures: Figures, outputs: Outputs, *,
             modalities: Mapping[str, str], features: Paths, dpi: int) -> None:
    from ..plots import alignment_heatmaps

    raw = {f["metric"]: outputs[name] for name, f in figures.items() if not f["calibrated"]}
    calibrated = {f["metric"]: outputs[name] for name, f in figures.items() if f["calibrated"]}
    metrics = list(raw)
    alignment_heatmaps(alignment, [raw[m] for m in metrics], metrics, dpi=dpi,
                       modalities=modalities, features=features,
                       calibrated_outputs=[calibrated.get(m) for m in metrics])


def competence(alignment: str | os.PathLike, figures: Figures, outputs: Outputs, *,
               modalities: Mapping[str, str], features: Paths,
               competence: Mapping[str, Mapping[str, Any]], dpi: int,
               intervals: str | os.PathLike | None = None,
               trend: str | os.PathLike | None = None) -> None:
    """The competence figures; ``intervals``/``trend``: the statistics tables
    (when calibration is on)."""
    from ..plots import alignment_vs_competence

    for name, f in figures.items():
        alignment_vs_competence(alignment, outputs[name], metric=f["metric"],
                                modalities=modalities, features=features,
                                competence=competence, calibrated=f["calibrated"], dpi=dpi,
                                intervals=intervals, trend=trend)


def layer_heatmaps(pairs: Paths, figures: Figures, outputs: Outputs, *, features: Paths,
                   dataset: str, dpi: int) -> None:
    """``pairs``: "<x>__<y>" -> that pair's file (stored in sorted order)."""
    from ..plots import pair_layer_heatmaps

    by_pair: dict[tuple[str, str], dict[str, Sequence[str]]] = {}
    for name, f in figures.items():
        by_pair.setdefault((f["x"], f["y"]), {})[f["metric"]] = outputs[name]
    for (x, y), outs in by_pair.items():
        pair_layer_heatmaps(pairs["__".join(sorted((x, y)))], outs, model_x=x, model_y=y,
                            features_x=features[x], features_y=features[y], dataset=dataset,
                            dpi=dpi)


def metric_agreement(alignment: str | os.PathLike, figures: Figures, outputs: Outputs, *,
                     dpi: int) -> None:
    from ..plots import metric_agreement as draw

    for name, f in figures.items():
        draw(alignment, outputs[name], metrics=f["metrics"], dpi=dpi)


def sample_size(table: str | os.PathLike, figures: Figures, outputs: Outputs, *,
                dpi: int, labels: Mapping[str, str] | None = None) -> None:
    """``labels``: model -> name (:meth:`prh.config.Config.display_names`)."""
    from ..plots import sample_size_curve

    for name in figures:
        sample_size_curve(table, outputs[name], dpi=dpi, labels=labels)
