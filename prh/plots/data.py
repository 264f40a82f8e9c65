"""What the figures read: alignment matrices, model attributes, competence.

Only small things are read from a features file: its root attributes
(``param_count``, ``modality``, ``weights`` and ``seed``), ``layer_names``
and, for causal language models, ``bpb`` (bits per byte of each caption);
never the features.

Untrained baselines (features files with ``weights = "random"``) are
labelled "(untrained)" in every figure (:attr:`ModelInfo.label`); competence
is :mod:`prh.competence`'s.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..formats.features import read_metadata

MODALITY_ORDER = ("vision", "language")


def load_alignment(path: str | os.PathLike) -> dict[str, Any]:
    """``alignment.h5`` (:func:`prh.formats.alignment.read_alignment`)."""
    from ..formats.alignment import read_alignment

    return read_alignment(path)


def metric_of(data: Mapping[str, Any], metric: str, source: str | os.PathLike) -> dict[str, Any]:
    if metric not in data["metrics"]:
        raise ValueError(f"{source} has no metric {metric!r}; it has: "
                         + ", ".join(data["metrics"]))
    return data["metrics"][metric]


def has_calibration(m: Mapping[str, Any]) -> bool:
    """True when a metric group holds calibrated scores with at least one value."""
    cal = m.get("calibrated")
    return cal is not None and bool(np.isfinite(np.asarray(cal, dtype=float)).any())


def p_values(m: Mapping[str, Any]) -> tuple[np.ndarray | None, str]:
    """The p-values to judge significance by: BH-adjusted when present."""
    for key, label in (("p_bh", "p_BH"), ("p_value", "p")):
        if m.get(key) is not None:
            return np.asarray(m[key], dtype=float), label
    return None, ""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    modality: str | None
    param_count: int | None
    #: None for the pretrained weights, "random" for an untrained baseline
    weights: str | None = None
    seed: int | None = None

    @property
    def untrained(self) -> bool:
        return self.weights == "random"

    def label(self, extra: Sequence[str] = ()) -> str:
        """The model's label in figures, "(untrained)" for random weights."""
        from .style import model_label
        return model_label(self.name, self.weights, self.seed, extra)


def labels_of(models: Sequence[str], info: Mapping[str, ModelInfo]) -> dict[str, str]:
    """Model -> figure label; models without info get their short name."""
    from .style import model_label
    return {m: info[m].label() if m in info else model_label(m) for m in models}


def model_info(name: str, features: str | os.PathLike | None,
               modality: str | None = None) -> ModelInfo:
    """A model's modality, size and weights from its features file's attributes."""
    count = weights = seed = None
    if features is not None:
        meta = read_metadata(features)
        modality = modality or meta.get("modality")
        if "param_count" in meta:
            try:
                count = int(meta["param_count"])
            except (TypeError, ValueError):
                raise ValueError(f"{features}: attribute param_count "
                                 f"{meta['param_count']!r} is not a number") from None
        if str(meta.get("weights", "")) not in ("", "pretrained"):
            weights = str(meta["weights"])
            seed = int(meta["seed"]) if "seed" in meta else None
    return ModelInfo(name, modality, count, weights, seed)


def order_models(models: Sequence[str], info: Mapping[str, ModelInfo]) -> list[int]:
    """Indices of ``models`` grouped by modality (vision, then language, then
    any other) and by size within a group (unknown sizes last), ties in the
    given order."""
    def key(i: int):
        mi = info.get(models[i])
        mod = mi.modality if mi else None
        group = MODALITY_ORDER.index(mod) if mod in MODALITY_ORDER else len(MODALITY_ORDER)
        size = mi.param_count if mi and mi.param_count is not None else math.inf
        return (group, size, i)

    return sorted(range(len(models)), key=key)


def layer_names(features: str | os.PathLike | None, n_layers: int) -> list[str]:
    """The layer names of a features file, or layer indices when there is no
    file or it does not match the score matrix."""
    if features is not None:
        names = read_metadata(features)["layer_names"]
        if names:
            if len(names) == n_layers:
                return names
            raise ValueError(f"{features} lists {len(names)} layers but the pair file's "
                             f"score matrix has {n_layers}; rerun the pair job")
    return [str(i) for i in range(n_layers)]


