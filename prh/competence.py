"""A model's competence, the x axis of the paper's headline trend.

1 - bits per byte for causal language models (measured by the embedding
stage, stored in the features file), else the configured value
(``models.<m>.competence`` with its ``competence_source``), else chance for an
untrained baseline (random weights): :data:`CHANCE_COMPETENCE`. Read by the
competence figure and the statistics step's trend test; torch- and
matplotlib-free.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .formats.features import read_bpb, read_metadata


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
            if features.get(m) is not None and _untrained(features[m]):
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


def _untrained(features: str | os.PathLike) -> bool:
    return str(read_metadata(features).get("weights", "")) == "random"
