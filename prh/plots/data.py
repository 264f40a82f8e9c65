"""What the figures read: alignment matrices, model attributes, competence.

Only small things are read from a features file: its root attributes
(``param_count``, ``modality``, ``weights`` and ``seed``), ``layer_names``
and, for causal language models, ``bpb`` (bits per byte of each caption);
never the features.

Untrained baselines (features files with ``weights = "random"``) are
labelled "(untrained)" in every figure (:attr:`ModelInfo.label`) and, unless
the config gives a competence, get chance competence: :data:`CHANCE_COMPETENCE`
(ImageNet top-1 % of a 1000-class guess, the unit of the configured values).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..formats.features import read_bpb, read_metadata

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


def bpb_competence(features: str | os.PathLike) -> float | None:
    """1 - mean bits per byte of a causal language model's features file, or
    None when the file has no (finite) ``bpb``."""
    bpb = read_bpb(features)
    if bpb is None:
        return None
    bpb = np.asarray(bpb, dtype=np.float64)
    bpb = bpb[np.isfinite(bpb)]
    return float(1.0 - bpb.mean()) if bpb.size else None


BPB_SOURCE = "1 - bits per byte of the captions (embedding stage)"
#: competence of an untrained (random-weight) model unless configured:
#: ImageNet top-1 in %, like the configured values, of guessing 1 of 1000 classes
CHANCE_COMPETENCE = 100.0 / 1000
CHANCE_SOURCE = "untrained: chance, ImageNet top-1 % of 1 in 1000 classes"


@dataclass(frozen=True)
class Competence:
    value: float
    source: str


def resolve_competence(models: Sequence[str], *, features: Mapping[str, Any] | None = None,
                       configured: Mapping[str, Mapping[str, Any]] | None = None
                       ) -> dict[str, Competence]:
    """Competence per model: 1 - bits per byte where the features file has
    ``bpb`` (causal language models), else the configured value
    (``{"competence": float, "competence_source": str}``), else, for an
    untrained model (features file with ``weights = "random"``), chance:
    :data:`CHANCE_COMPETENCE`. Other models are left out."""
    features = features or {}
    configured = configured or {}
    out: dict[str, Competence] = {}
    for m in models:
        if features.get(m) is not None:
            v = bpb_competence(features[m])
            if v is not None:
                out[m] = Competence(v, BPB_SOURCE)
                continue
        entry = configured.get(m)
        if entry is None or entry.get("competence") is None:
            if features.get(m) is not None and model_info(m, features[m]).untrained:
                out[m] = Competence(CHANCE_COMPETENCE, CHANCE_SOURCE)
            continue
        value = entry["competence"]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise ValueError(f"models.{m}.competence: {value!r} is not a finite number")
        source = entry.get("competence_source")
        if not source:
            raise ValueError(f"models.{m}.competence_source: say where the competence "
                             f"value {value} comes from")
        out[m] = Competence(float(value), str(source))
    return out
